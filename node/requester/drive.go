package requester

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// linger is how long a finished placement still runs, for late offers and
// leases, which it declines or cancels.
const linger = 10 * time.Second

// start drives a placement in the background.
func (r *Requester) start(j *job, p *scheduler.Placement) {
	j.heartbeat = p.Heartbeat()
	j.need = p.Job()
	r.spawn(func() { r.drive(j, p) })
	j.events <- scheduler.Start{}
}

// drive is the only goroutine that touches a placement: it steps it with each
// event and carries out the actions.
func (r *Requester) drive(j *job, p *scheduler.Placement) {
	defer close(j.ended)
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	var done <-chan time.Time
	for {
		var ev scheduler.Event
		select {
		case ev = <-j.events:
		case <-done:
			return
		case <-ctx.Done():
			return
		}
		acts := p.Step(r.clock.Now(), ev)
		if slices.ContainsFunc(acts, isLease) {
			r.saveLeases(j, p.Status())
		}
		for _, a := range acts {
			r.act(ctx, j, a)
		}
		if p.State().Final() && done == nil {
			done = r.clock.After(linger)
		}
	}
}

func isLease(a scheduler.Action) bool {
	_, ok := a.(scheduler.SendLease)
	return ok
}

// act carries out one action; whatever talks to the network runs in its own
// goroutine and answers with an event.
func (r *Requester) act(ctx context.Context, j *job, a scheduler.Action) {
	send := func(ev scheduler.Event) {
		select {
		case j.events <- ev:
		case <-ctx.Done():
		}
	}
	switch a := a.(type) {
	case scheduler.Silent:
		r.dead.mark(a.Provider, r.clock.Now())
	case scheduler.Lookup:
		r.lookup(ctx, a, send)
	case scheduler.RequestOffer:
		r.spawn(func() {
			octx, cancel := context.WithDeadline(ctx, a.Request.ExpiresAt)
			defer cancel()
			o, err := r.askOffer(octx, j, a.Provider, a.Request)
			r.heard(a.Provider, err)
			if err != nil {
				send(scheduler.OfferRefused{Provider: a.Provider, RequestNonce: a.Request.Nonce, Code: answerCode(err), Reason: err.Error(),
					RetryAfter: protocol.RetryAfterOf(err)})
				return
			}
			send(scheduler.OfferReceived{Offer: o})
		})
	case scheduler.SendLease:
		r.spawn(func() { r.lease(ctx, j, a, send) })
	case scheduler.DeclineOffer:
		j.update(func() { delete(j.offers, a.OfferNonce) })
		r.spawn(func() {
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			Decline(dctx, r.t, a.Provider, a.OfferNonce, j.cid)
		})
	case scheduler.CancelLease:
		r.spawn(func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			CancelLease(cctx, r.t, a.Provider, a.LeaseID, a.Epoch)
		})
	case scheduler.SetTimer:
		fire := func() { send(scheduler.TimerFired{ID: a.ID}) }
		if a.Wait {
			r.queue.backoff(j, a, fire)
			return
		}
		r.clock.AfterFunc(max(0, a.At.Sub(r.clock.Now())), fire)
	case scheduler.Report:
		r.report(j, a.Status)
	}
}

// maxOfferNonces bounds the offer nonces a requester holds (SPEC 3.4): those
// of the offers it took in the last offer TTL.
const maxOfferNonces = 1 << 16

// askOffer asks a provider for an offer for job j and checks it (SPEC 6.1,
// the requester's checks 2 to 5; the placement makes the others). An offer
// refused here is declined at once, and the error says why, for the job's
// explanation. An offer taken is kept in j (when j is not nil) until it is
// declined, so that its lease's receipt can be checked against it.
func (r *Requester) askOffer(ctx context.Context, j *job, to string, req scheduler.Request) (scheduler.Offer, error) {
	o, _, err := RequestOffer(ctx, r.t, to, req, r.clock.Now)
	if err == nil {
		// This requester never asks twice under one request nonce, so an
		// offer nonce it holds is a replay, never a retried request's
		// answer (SPEC 6.1).
		if cerr := r.offerNonces.Check([]byte(o.Nonce), protocol.UnixMs(o.ExpiresAt), r.clock.Now()); cerr != nil {
			err = fmt.Errorf("offer from %s refused here: %w", short(to), cerr)
		}
	}
	if err != nil {
		if o.Nonce != "" {
			r.spawn(func() {
				dctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
				defer cancel()
				Decline(dctx, r.t, to, o.Nonce, req.JobCID)
			})
		}
		return scheduler.Offer{}, err
	}
	if j != nil {
		j.update(func() {
			if j.offers == nil {
				j.offers = map[string]scheduler.Offer{}
			}
			j.offers[o.Nonce] = o
		})
	}
	return o, nil
}

// heard records whether a provider answered an exchange: one that did
// not (no answer, CODE_UNSPECIFIED) is left out of every placement's
// candidates for deadFor.
func (r *Requester) heard(provider string, err error) {
	if err != nil && answerCode(err) == pb.Code_CODE_UNSPECIFIED {
		r.dead.mark(provider, r.clock.Now())
		return
	}
	r.dead.alive(provider)
}

// answerCode is the code a placement is given for a failed exchange: the
// provider's, or CODE_UNSPECIFIED ("no answer") when it was unreachable or
// silent.
func answerCode(err error) pb.Code {
	code := protocol.CodeOf(err)
	if code == pb.Code_CODE_INTERNAL {
		return pb.Code_CODE_UNSPECIFIED
	}
	return code
}

// lease seals and sends a lease, then watches it until its result.
func (r *Requester) lease(ctx context.Context, j *job, a scheduler.SendLease, send func(scheduler.Event)) {
	nonce := make([]byte, protocol.NonceSize)
	rand.Read(nonce)
	l := a.Lease
	// The provider fetches the job's inputs from here while its lease
	// lives, and only then (SPEC 6.6).
	for _, in := range j.inputs {
		r.cfg.Data.Grant(a.Provider, in)
		defer r.cfg.Data.Revoke(a.Provider, in)
	}
	env, err := record.Seal(r.cfg.Key, conv.LeaseToPB(l, string(nonce), j.env, j.heartbeat))
	if err == nil {
		lctx, cancel := context.WithTimeout(ctx, scheduler.LeaseAnswerWait)
		err = SendLease(lctx, r.t, a.Provider, env)
		cancel()
		r.heard(a.Provider, err)
	}
	if err != nil {
		send(scheduler.LeaseRejected{Provider: a.Provider, LeaseID: l.ID, Epoch: l.Epoch, Code: answerCode(err), Reason: err.Error()})
		return
	}
	send(scheduler.LeaseAccepted{Provider: a.Provider, LeaseID: l.ID, Epoch: l.Epoch})
	j.mu.Lock()
	o, ok := j.offers[l.OfferNonce]
	j.mu.Unlock()
	terms := Terms{JobCID: j.cid}
	if ok {
		terms.Price, terms.Total = conv.PriceToPB(o.Price), &pb.Amount{Currency: o.Total.Currency, Nanos: o.Total.Nanos}
	}
	r.watchLease(ctx, j, a.Provider, l.ID, l.Epoch, terms, send)
}

// maxLog caps what a job keeps of each of its streams: what a provider
// keeps of one run's.
const maxLog = protocol.MaxLog

// watchLease follows a lease until its result, turning statuses into
// heartbeats and log chunks into the job's output.
func (r *Requester) watchLease(ctx context.Context, j *job, provider, leaseID string, epoch uint64, terms Terms, send func(scheduler.Event)) {
	var out, errOff uint64
	var outBuf, errBuf bytes.Buffer // this lease's own streams, kept by CID at the end
	var note string                 // the final Status's message: why a run the guest ended failed
	for ctx.Err() == nil {
		res, err := Watch(ctx, r.t, provider, &pb.WatchRequest{LeaseId: []byte(leaseID), Epoch: epoch, StdoutOffset: out, StderrOffset: errOff},
			func(ev *pb.WatchEvent) {
				switch x := ev.Event.(type) {
				case *pb.WatchEvent_Status:
					if protocol.Final(x.Status.State) {
						note = x.Status.Message
					} else {
						j.runState(leaseID, epoch, x.Status.State)
					}
					send(scheduler.Heartbeat{Provider: provider, LeaseID: leaseID, Epoch: epoch, State: x.Status.State})
				case *pb.WatchEvent_Log:
					j.update(func() {
						buf, own, off := &j.stdout, &outBuf, &out
						if x.Log.Stream == pb.LogStream_LOG_STREAM_STDERR {
							buf, own, off = &j.stderr, &errBuf, &errOff
						}
						if x.Log.Offset == *off && buf.Len() < maxLog {
							buf.Write(x.Log.Data)
							own.Write(x.Log.Data)
							*off += uint64(len(x.Log.Data))
						}
					})
				}
			})
		if err == nil {
			r.keepLog(outBuf.Bytes(), res.StdoutCid)
			r.keepLog(errBuf.Bytes(), res.StderrCid)
			j.update(func() {
				if j.results == nil {
					j.results = map[runKey]*pb.Result{}
				}
				j.results[runKey{leaseID, epoch}] = res
			})
			send(scheduler.ResultReceived{Provider: provider, LeaseID: leaseID, Epoch: epoch, State: res.State, ExitCode: res.ExitCode,
				OutputCID: string(res.OutputCid), Detail: cmp.Or(res.GetError().GetMessage(), note), Code: res.GetError().GetCode()})
			// The receipt is settled behind the result, not before it: the
			// customer need not wait for two fsyncs and a round trip that
			// only bill the run (a receipt that does not open is logged,
			// and changes nothing of the result either way).
			r.settle(j, provider, res, terms)
			r.bringOutput(j, provider, res)
			return
		}
		if errors.Is(err, protocol.ErrStaleEpoch) || protocol.CodeOf(err) == pb.Code_CODE_UNKNOWN_LEASE {
			return
		}
		// The stream broke: the placement's heartbeat deadline decides
		// whether the lease is lost; meanwhile try to follow it again.
		select {
		case <-r.clock.After(j.heartbeat):
		case <-ctx.Done():
		}
	}
}
