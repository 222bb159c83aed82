package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// Lease answers /cuivre/lease: a lease, a decline or a cancel (SPEC 6.2). A
// lease's run starts in then, once the transport has sent the answer: a
// goroutine started before it would take the core the answer's packet waits
// for, and the requester would wait for the module's instantiation.
func (p *Provider) Lease(ctx context.Context, from string, req *pb.LeaseRequest) (*pb.LeaseAnswer, func()) {
	now := p.clock.Now()
	switch k := req.Kind.(type) {
	case *pb.LeaseRequest_Lease:
		l, start, err := p.acceptLease(from, k.Lease, now)
		if err != nil {
			p.metrics.refusals.WithLabelValues("lease", reason(err)).Inc()
			p.log.Info("lease refused", "from", short(from), "err", err)
			var id []byte
			var epoch uint64
			if l != nil {
				id, epoch = l.LeaseId, l.Epoch
			}
			return answer(id, epoch, err), nil
		}
		return &pb.LeaseAnswer{LeaseId: l.LeaseId, Epoch: l.Epoch, Accepted: true}, start
	case *pb.LeaseRequest_Decline:
		p.mu.Lock()
		err := p.market.DeclineFrom(now, string(k.Decline.OfferNonce), from, string(k.Decline.JobCid))
		p.mu.Unlock()
		return answer(nil, 0, err), nil
	case *pb.LeaseRequest_Cancel:
		return answer(k.Cancel.LeaseId, k.Cancel.Epoch, p.cancelLease(ctx, from, k.Cancel)), nil
	}
	return answer(nil, 0, protocol.Errorf(protocol.CodeMalformed, "empty lease request")), nil
}

// cancelLease stops the run of a lease epoch of from's (SPEC 6.2, Cancel):
// a lease this provider never committed for from is CODE_UNKNOWN_LEASE, an
// epoch older than the highest it committed is CODE_STALE_EPOCH (an old
// cancel never stops a newer run), and a lease already final is left as it
// is. The store is the authority on epochs: a run forgotten from memory, or
// one at another epoch, is still found there. The answer waits for the run's
// end to be recorded, as SPEC 6.2 says, within ctx.
func (p *Provider) cancelLease(ctx context.Context, from string, c *pb.Cancel) error {
	if _, err := p.fenced(c.LeaseId, c.Epoch, from); err != nil {
		return err
	}
	if r := p.findRun(string(c.LeaseId), c.Epoch); r != nil {
		r.cancel()
		return r.ended(ctx)
	}
	return nil
}

// fenced is the epoch check of a cancel or a watch of lease id at epoch, by
// from (SPEC 6.2): it returns the lease as committed here, or
// CODE_UNKNOWN_LEASE for a lease from never committed, or at no epoch as high,
// and CODE_STALE_EPOCH for an epoch older than the highest committed. The
// store is the authority: a run forgotten from memory, or one stopped by a
// higher epoch but lingering, is judged there.
func (p *Provider) fenced(id []byte, epoch uint64, from string) (store.Lease, error) {
	if p.store == nil {
		return store.Lease{}, protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no such lease")
	}
	l, err := p.store.LatestLease(string(id))
	switch {
	case err != nil || l.Requester != from:
		return l, protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no lease %x of yours here", id)
	case epoch < l.Epoch:
		return l, protocol.Errorf(pb.Code_CODE_STALE_EPOCH, "lease %x is at epoch %d here, not %d", id, l.Epoch, epoch)
	case epoch > l.Epoch:
		return l, protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no lease %x epoch %d here: the highest committed is %d", id, epoch, l.Epoch)
	}
	return l, nil
}

func answer(id []byte, epoch uint64, err error) *pb.LeaseAnswer {
	return &pb.LeaseAnswer{LeaseId: id, Epoch: epoch, Accepted: err == nil, Error: protocol.ToPB(err)}
}

// acceptLease checks a sealed lease, commits it in the market and the store
// (synced), registers its run so that a watch following the answer finds it,
// and returns the function that starts the run, for the caller to call once
// it has answered (nil for a lease committed already). The lease is
// acknowledged only after the store's commit returned: a kill -9 then loses
// nothing a requester was told.
func (p *Provider) acceptLease(from string, env []byte, now time.Time) (*pb.Lease, func(), error) {
	if p.store == nil || p.exec == nil && p.cfg.Remote == nil {
		return nil, nil, protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "this node runs no executor")
	}
	l, err := record.OpenLease(env, now)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case string(l.Requester) != from:
		return l, nil, protocol.Errorf(protocol.CodeWrongSigner, "lease signed by %s, sent by %s", short(string(l.Requester)), short(from))
	case string(l.Provider) != p.id:
		return l, nil, protocol.Errorf(protocol.CodeMalformed, "lease addressed to another provider")
	case !protocol.HeartbeatInRange(l.HeartbeatMs):
		return l, nil, protocol.Errorf(protocol.CodeMalformed, "lease asks a heartbeat every %d ms: the interval must be %v to %v", l.HeartbeatMs, protocol.MinHeartbeat, protocol.MaxHeartbeat)
	}
	// A retried lease already committed is accepted again (SPEC 6.2), to the
	// requester that committed it only: another peer who learnt its offer
	// nonce is no retry.
	if old, err := p.store.Lease(string(l.LeaseId), l.Epoch); err == nil && old.OfferNonce == string(l.OfferNonce) && old.Requester == from {
		return l, nil, nil
	}
	// An epoch older than the highest committed is stale, even once that
	// one has ended and left the market (SPEC 6.2).
	if latest, err := p.store.LatestLease(string(l.LeaseId)); err == nil && latest.Requester == from && l.Epoch < latest.Epoch {
		return l, nil, protocol.Errorf(pb.Code_CODE_STALE_EPOCH, "lease %x epoch %d: epoch %d was committed here", l.LeaseId, l.Epoch, latest.Epoch)
	}
	if err := p.replay.Check(l.Nonce, l.ExpiresAtMs, now); err != nil {
		return l, nil, err
	}
	committed := false
	defer func() {
		if !committed { // a refused lease keeps no nonce (SPEC 3.4)
			p.replay.Forget(l.Nonce)
		}
	}()
	job, err := record.OpenJob(l.Job)
	if err != nil {
		return l, nil, fmt.Errorf("lease job: %w", err)
	}
	if string(job.CID.Bytes()) != string(l.JobCid) {
		return l, nil, protocol.Errorf(protocol.CodeMalformed, "lease names job %x, carries %s", l.JobCid, job.CID)
	}
	if l.Instance >= job.Job.Count {
		return l, nil, protocol.Errorf(protocol.CodeMalformed, "lease names instance %d of a job of %d", l.Instance, job.Job.Count)
	}
	t := job.Job.GetTask()
	sl := scheduler.Lease{
		ID: string(l.LeaseId), Provider: p.id, Requester: from, OfferNonce: string(l.OfferNonce),
		JobCID: string(l.JobCid), Epoch: l.Epoch, ExpiresAt: protocol.FromUnixMs(l.ExpiresAtMs),
		Resources: conv.ResourcesFromPB(t.GetResources()), Timeout: time.Duration(t.GetTimeoutMs()) * time.Millisecond,
		Instance: l.Instance,
	}
	p.mu.Lock()
	prev, replaces := p.market.Held(sl.ID)
	err = p.market.Commit(now, sl)
	held, _ := p.market.Held(sl.ID)
	p.mu.Unlock()
	if err != nil {
		return l, nil, err
	}
	if replaces && prev.Epoch < sl.Epoch {
		// A higher epoch replaces the held one (SPEC 6.2): the market
		// freed its resources; its run stops and ends unbilled
		// (finishRun seals no receipt for a lease the market no longer
		// holds).
		if r := p.findRun(sl.ID, prev.Epoch); r != nil {
			r.cancel()
		}
	}
	rec := store.Lease{
		ID: sl.ID, Epoch: sl.Epoch, Requester: sl.Requester, JobCID: sl.JobCID, Instance: sl.Instance, OfferNonce: sl.OfferNonce,
		ExpiresAt: sl.ExpiresAt, Envelope: env, Job: l.Job, State: pb.LeaseState_LEASE_STATE_ACCEPTED,
		Reserved: sl.Resources, Timeout: sl.Timeout, Price: held.Price,
		Total: scheduler.Amount{Currency: held.Price.Currency, Nanos: held.Total}, Committed: held.Committed,
	}
	// The lease and its nonce commit together: one fsync before the answer.
	err = p.store.Update(func(tx *store.Tx) error {
		if err := tx.AddNonce(l.Nonce, l.ExpiresAtMs); err != nil {
			return err
		}
		return tx.PutLease(rec)
	})
	if err != nil {
		p.release(now, sl.ID, sl.Epoch)
		return l, nil, fmt.Errorf("store lease: %w", err)
	}
	committed = true
	p.metrics.leases.WithLabelValues("committed").Inc()
	p.cfg.Loaded()
	return l, p.startRun(rec, job, time.Duration(l.HeartbeatMs)*time.Millisecond), nil
}

// release frees a lease's resources in the market and wakes Drain.
func (p *Provider) release(now time.Time, id string, epoch uint64) (scheduler.Usage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, err := p.market.Release(now, id, epoch)
	close(p.released)
	p.released = make(chan struct{})
	return u, err
}
