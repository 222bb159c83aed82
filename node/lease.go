package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// run is one lease epoch executing here. Watchers wait on changed, which is
// closed and replaced at every change.
type run struct {
	lease  store.Lease
	job    *record.SignedJob
	beat   time.Duration
	cancel context.CancelFunc
	// marks are the states setState moved the run through, in order, to be
	// written with its final state; only the run's goroutine touches them.
	marks []mark

	mu      sync.Mutex
	state   pb.LeaseState
	seq     uint64
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	result  *pb.Result
	changed chan struct{}
}

func (r *run) set(f func()) {
	r.mu.Lock()
	f()
	r.seq++
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// logWriter appends a run's output to one of its buffers, capped, and wakes
// the watchers.
type logWriter struct {
	r   *run
	buf *bytes.Buffer
}

// runLinger is how long an ended run stays in memory for late watchers.
const runLinger = 2 * time.Minute

// maxLog caps what a run's stdout or stderr keeps for watchers.
const maxLog = 4 << 20

func (w logWriter) Write(p []byte) (int, error) {
	w.r.set(func() {
		if room := maxLog - w.buf.Len(); room > 0 {
			w.buf.Write(p[:min(len(p), room)])
		}
	})
	return len(p), nil
}

type runKey struct {
	id    string
	epoch uint64
}

// handleLease serves /cuivre/lease: a lease, a decline or a cancel (SPEC 6.2).
func (n *Node) handleLease(ctx context.Context, e *exchange) error {
	from := e.s.Conn().RemotePeer()
	var req pb.LeaseRequest
	if err := e.r.ReadMsg(&req); err != nil {
		return n.answerLease(e, nil, 0, err)
	}
	now := n.now()
	switch k := req.Kind.(type) {
	case *pb.LeaseRequest_Lease:
		l, start, err := n.acceptLease(ctx, from, k.Lease, now)
		if err != nil {
			n.metrics.refusals.WithLabelValues("lease", reason(err)).Inc()
			n.log.Info("lease refused", "from", from, "err", err)
			var id []byte
			var epoch uint64
			if l != nil {
				id, epoch = l.LeaseId, l.Epoch
			}
			return n.answerLease(e, id, epoch, err)
		}
		// Answer first, then start the run: a goroutine started before the
		// answer would take the core the answer's packet waits for (a new
		// goroutine runs next on its P), and the requester would wait for
		// the module's instantiation.
		err = e.w.WriteMsg(&pb.LeaseAnswer{LeaseId: l.LeaseId, Epoch: l.Epoch, Accepted: true})
		if start != nil {
			start()
		}
		return err
	case *pb.LeaseRequest_Decline:
		n.mu.Lock()
		err := n.market.Decline(now, string(k.Decline.OfferNonce))
		n.mu.Unlock()
		if err == nil {
			n.loadChanged()
		}
		return n.answerLease(e, nil, 0, err)
	case *pb.LeaseRequest_Cancel:
		r := n.findRun(string(k.Cancel.LeaseId), k.Cancel.Epoch)
		if r == nil || peer.ID(r.lease.Requester) != from {
			return n.answerLease(e, k.Cancel.LeaseId, k.Cancel.Epoch,
				protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no running lease %x epoch %d of yours", k.Cancel.LeaseId, k.Cancel.Epoch))
		}
		r.cancel()
		return n.answerLease(e, k.Cancel.LeaseId, k.Cancel.Epoch, nil)
	}
	return n.answerLease(e, nil, 0, protocol.Errorf(protocol.CodeMalformed, "empty lease request"))
}

func (n *Node) answerLease(e *exchange, id []byte, epoch uint64, err error) error {
	return e.w.WriteMsg(&pb.LeaseAnswer{LeaseId: id, Epoch: epoch, Accepted: err == nil, Error: protocol.ToPB(err)})
}

// acceptLease checks a sealed lease and commits it in the market and the
// store (synced), and returns the function that starts its run, for the
// caller to call once it has answered (nil for a lease committed already). The
// lease is acknowledged only after the store's commit returned (DESIGN:
// acknowledge only what is synced).
func (n *Node) acceptLease(ctx context.Context, from peer.ID, env []byte, now time.Time) (*pb.Lease, func(), error) {
	if n.store == nil || n.exec == nil {
		return nil, nil, protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "this node runs no executor")
	}
	l, err := record.OpenLease(env, now)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case peer.ID(l.Requester) != from:
		return l, nil, protocol.Errorf(protocol.CodeWrongSigner, "lease signed by %s, sent by %s", peer.ID(l.Requester).ShortString(), from.ShortString())
	case peer.ID(l.Provider) != n.ID():
		return l, nil, protocol.Errorf(protocol.CodeMalformed, "lease addressed to another provider")
	case l.HeartbeatMs == 0:
		return l, nil, protocol.Errorf(protocol.CodeMalformed, "lease asks no heartbeat interval")
	}
	// A retried lease already committed is accepted again (SPEC 6.2).
	if old, err := n.store.Lease(string(l.LeaseId), l.Epoch); err == nil && old.OfferNonce == string(l.OfferNonce) {
		return l, nil, nil
	}
	if err := n.replay.Check(l.Nonce, l.ExpiresAtMs, now); err != nil {
		return l, nil, err
	}
	job, err := record.OpenJob(l.Job)
	if err != nil {
		return l, nil, fmt.Errorf("lease job: %w", err)
	}
	if string(job.CID.Bytes()) != string(l.JobCid) {
		return l, nil, protocol.Errorf(protocol.CodeMalformed, "lease names job %x, carries %s", l.JobCid, job.CID)
	}
	t := job.Job.GetTask()
	sl := scheduler.Lease{
		ID: string(l.LeaseId), Provider: string(n.ID()), Requester: string(from), OfferNonce: string(l.OfferNonce),
		JobCID: string(l.JobCid), Epoch: l.Epoch, ExpiresAt: protocol.FromUnixMs(l.ExpiresAtMs),
		Resources: resourcesFromPB(t.GetResources()), Timeout: time.Duration(t.GetTimeoutMs()) * time.Millisecond,
	}
	n.mu.Lock()
	err = n.market.Commit(now, sl)
	held, _ := n.market.Held(sl.ID)
	n.mu.Unlock()
	if err != nil {
		return l, nil, err
	}
	rec := store.Lease{
		ID: sl.ID, Epoch: sl.Epoch, Requester: sl.Requester, JobCID: sl.JobCID, OfferNonce: sl.OfferNonce,
		ExpiresAt: sl.ExpiresAt, Envelope: env, Job: l.Job, State: pb.LeaseState_LEASE_STATE_ACCEPTED,
		Reserved: sl.Resources, Timeout: sl.Timeout, Price: held.Price,
		Total: scheduler.Amount{Currency: held.Price.Currency, Nanos: held.Total}, Committed: held.Committed,
	}
	// The lease and its nonce commit together: one fsync before the answer.
	err = n.store.Update(func(tx *store.Tx) error {
		if err := tx.AddNonce(l.Nonce, l.ExpiresAtMs); err != nil {
			return err
		}
		return tx.PutLease(rec)
	})
	if err != nil {
		n.mu.Lock()
		n.market.Release(now, sl.ID, sl.Epoch)
		n.mu.Unlock()
		return l, nil, fmt.Errorf("store lease: %w", err)
	}
	n.metrics.leases.WithLabelValues("committed").Inc()
	n.loadChanged()
	// The run is registered now, so that a watch that follows the answer
	// finds it; it starts once the caller has answered.
	return l, n.startRun(rec, job, time.Duration(l.HeartbeatMs)*time.Millisecond), nil
}

func (n *Node) findRun(id string, epoch uint64) *run {
	n.runsMu.Lock()
	defer n.runsMu.Unlock()
	return n.runs[runKey{id, epoch}]
}

// startRun registers the run of a committed lease, so that watchers find it,
// and returns the function that executes it in the background, which the
// caller must call.
func (n *Node) startRun(l store.Lease, job *record.SignedJob, beat time.Duration) (start func()) {
	ctx, cancel := context.WithCancel(n.ctx)
	r := &run{lease: l, job: job, beat: beat, cancel: cancel, state: l.State, changed: make(chan struct{})}
	n.runsMu.Lock()
	n.runs[runKey{l.ID, l.Epoch}] = r
	n.runsMu.Unlock()
	n.wg.Add(1)
	return func() {
		go func() {
			defer n.wg.Done()
			defer cancel()
			n.execute(ctx, r)
		}()
	}
}

// execute fetches the module, runs it, bills it and records the result.
func (n *Node) execute(ctx context.Context, r *run) {
	j := r.job.Job
	t := j.GetTask()
	n.setState(r, pb.LeaseState_LEASE_STATE_FETCHING)
	modCID, err := wire.ParseCID(t.ModuleCid)
	if err == nil {
		err = n.ensureModule(ctx, modCID, peer.ID(r.lease.Requester))
	}
	if err != nil {
		n.finishRun(r, pb.LeaseState_LEASE_STATE_FAILED, exec.Result{ExitCode: -1}, err)
		return
	}
	if !n.now().Before(r.lease.ExpiresAt) {
		n.finishRun(r, pb.LeaseState_LEASE_STATE_EXPIRED, exec.Result{ExitCode: -1},
			protocol.Errorf(protocol.CodeExpired, "not started before the lease expired"))
		return
	}
	n.setState(r, pb.LeaseState_LEASE_STATE_RUNNING)
	spec := exec.RunSpec{
		Module: modCID, Args: append([]string{j.Name}, t.Args...), Stdin: t.Stdin,
		MemoryBytes: t.GetResources().GetMemoryBytes(), ScratchBytes: t.GetResources().GetScratchBytes(),
		Timeout: time.Duration(t.TimeoutMs) * time.Millisecond,
		Stdout:  logWriter{r, &r.stdout}, Stderr: logWriter{r, &r.stderr},
	}
	for _, v := range t.Env {
		spec.Env = append(spec.Env, exec.EnvVar{Name: v.Name, Value: v.Value})
	}
	res, err := n.exec.Run(ctx, spec)
	n.metrics.execTime.Observe(res.Duration.Seconds())
	state := pb.LeaseState_LEASE_STATE_SUCCEEDED
	switch {
	case res.Reason == exec.ReasonCanceled:
		state = pb.LeaseState_LEASE_STATE_CANCELLED
	case err != nil || res.Reason != exec.ReasonExit || res.ExitCode != 0:
		state = pb.LeaseState_LEASE_STATE_FAILED
		if err == nil && res.Reason != exec.ReasonExit {
			code := res.Code
			if code == pb.Code_CODE_UNSPECIFIED {
				code = pb.Code_CODE_INTERNAL
			}
			err = protocol.Errorf(code, "%s: %s", res.Reason, res.Detail)
		}
	}
	n.finishRun(r, state, res, err)
}

// mark is a state a run reached and when.
type mark struct {
	state pb.LeaseState
	at    time.Time
}

// setState moves a run to a state that is not final (fetching, running).
// Watchers hear of it at once; the store records it with the final state, in
// finishRun's transaction, not on the path to the first instruction: an
// intermediate state is not needed durably, since a restart fails every
// lease that was live, whatever its state (recover.go).
func (n *Node) setState(r *run, s pb.LeaseState) {
	r.set(func() { r.state = s })
	r.marks = append(r.marks, mark{s, n.now()})
}

// ensureModule makes a module ready to run: compiled already, or in the store,
// or fetched from the requester and verified.
func (n *Node) ensureModule(ctx context.Context, c cid.Cid, from peer.ID) error {
	if n.exec.Has(c) {
		return nil
	}
	bin, err := n.store.Module(c)
	if errors.Is(err, store.ErrNotFound) {
		if bin, err = n.FetchModule(ctx, from, c); err == nil {
			err = n.store.PutModule(c, bin)
		}
	}
	if err != nil {
		return fmt.Errorf("module %s: %w", c, err)
	}
	return n.exec.Add(ctx, c, bin)
}

// finishRun releases the lease, seals its receipt, and records the end in one
// store transaction before any watcher hears of it.
func (n *Node) finishRun(r *run, state pb.LeaseState, res exec.Result, runErr error) {
	now := n.now()
	n.mu.Lock()
	usage, relErr := n.market.Release(now, r.lease.ID, r.lease.Epoch)
	n.mu.Unlock()
	if relErr != nil {
		n.log.Warn("release", "lease", fmt.Sprintf("%x", r.lease.ID), "err", relErr)
	}
	n.loadChanged()
	stdout, stderr := r.logs()
	out := &store.Outcome{ExitCode: res.ExitCode, StdoutCID: string(wire.SumCID(stdout).Bytes()), StderrCID: string(wire.SumCID(stderr).Bytes())}
	if res.OutputCID.Defined() {
		out.OutputCID = string(res.OutputCID.Bytes())
	}
	var perr *protocol.Error
	if runErr != nil && !errors.As(runErr, &perr) {
		perr = &protocol.Error{Code: pb.Code_CODE_INTERNAL, Msg: runErr.Error()}
	}
	out.Error = perr
	nonce := make([]byte, protocol.NonceSize)
	rand.Read(nonce)
	receipt := &pb.UsageReceipt{
		LeaseId: []byte(r.lease.ID), Epoch: r.lease.Epoch, Provider: []byte(n.ID()), Requester: []byte(r.lease.Requester),
		JobCid: []byte(r.lease.JobCID), Reserved: resourcesToPB(r.lease.Reserved),
		StartedAtMs: protocol.UnixMs(usage.Started), EndedAtMs: protocol.UnixMs(usage.Ended),
		Price: priceToPB(usage.Price), Amount: amountToPB(usage.Amount), OutputCid: []byte(out.OutputCID), Nonce: nonce,
	}
	renv, err := record.Seal(n.opts.Identity, receipt)
	if err != nil {
		n.log.Error("seal receipt", "err", err)
	}
	err = n.store.Update(func(tx *store.Tx) error {
		for _, m := range r.marks {
			if _, err := tx.MarkLeaseState(r.lease.ID, r.lease.Epoch, m.state, m.at, nil); err != nil {
				return err
			}
		}
		if _, err := tx.MarkLeaseState(r.lease.ID, r.lease.Epoch, state, now, out); err != nil {
			return err
		}
		if renv == nil {
			return nil
		}
		return tx.PutReceipt(store.Receipt{LeaseID: r.lease.ID, Epoch: r.lease.Epoch, Envelope: renv})
	})
	if err != nil {
		n.log.Error("record lease end", "lease", fmt.Sprintf("%x", r.lease.ID), "err", err)
	}
	n.metrics.leases.WithLabelValues(eventOf(state)).Inc()
	if usage.Amount.Nanos > 0 {
		n.metrics.earnings.WithLabelValues(usage.Amount.Currency).Add(float64(usage.Amount.Nanos))
	}
	result := &pb.Result{
		LeaseId: []byte(r.lease.ID), Epoch: r.lease.Epoch, State: state, ExitCode: res.ExitCode,
		OutputCid: []byte(out.OutputCID), StdoutCid: []byte(out.StdoutCID), StderrCid: []byte(out.StderrCID),
		StartedAtMs: protocol.UnixMs(res.Started), EndedAtMs: protocol.UnixMs(now), Receipt: renv, Error: protocol.ToPB(errOrNil(perr)),
	}
	if res.Started.IsZero() {
		result.StartedAtMs = 0
	}
	r.set(func() { r.state, r.result = state, result })
	// A requester may start watching after a short run ended: keep the run,
	// its logs with it, for a while, then leave it to the store.
	time.AfterFunc(runLinger, func() {
		n.runsMu.Lock()
		delete(n.runs, runKey{r.lease.ID, r.lease.Epoch})
		n.runsMu.Unlock()
	})
	n.log.Info("lease ended", "lease", fmt.Sprintf("%x", r.lease.ID), "epoch", r.lease.Epoch, "state", state, "exit", res.ExitCode, "err", runErr)
}

func (r *run) logs() (stdout, stderr []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.stdout.Bytes()), bytes.Clone(r.stderr.Bytes())
}

func eventOf(s pb.LeaseState) string {
	switch s {
	case pb.LeaseState_LEASE_STATE_SUCCEEDED:
		return "succeeded"
	case pb.LeaseState_LEASE_STATE_CANCELLED:
		return "cancelled"
	case pb.LeaseState_LEASE_STATE_EXPIRED:
		return "expired"
	}
	return "failed"
}

// receiptHash is what a countersignature covers (SPEC 6.4).
func receiptHash(env []byte) []byte {
	h := sha256.Sum256(env)
	return h[:]
}
