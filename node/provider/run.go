package provider

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// run is one lease epoch executing here. Watchers wait on changed, which is
// closed and replaced at every change (a state, a log write, the end).
type run struct {
	lease  store.Lease
	job    *record.SignedJob
	beat   time.Duration
	cancel context.CancelFunc
	// marks are the states setState moved the run through, in order, to be
	// written with its final state; only the run's goroutine touches them.
	marks []mark

	mu    sync.Mutex
	state pb.LeaseState
	since time.Time // when it entered state: fetching, running
	// seq is the last Status seq given out for the run, on any watch
	// stream (nextSeq). From the moment finishRun takes the final
	// Status's seq, ending is set and watchers send no Status but that
	// final one, so no Status ever follows it with a higher seq.
	seq    uint64
	ending bool
	note   string     // the final Status's message when the Result has no error: what ended the run
	final  *pb.Status // the final Status, set with result
	stdout bytes.Buffer
	stderr bytes.Buffer
	cut    [2]bool // stdout, stderr: cut at the log limit
	// output is the output of a run elsewhere (Config.Remote), already in
	// the data store, and its size; undefined for a run here.
	output     cid.Cid
	outputSize uint64
	// siteReceipt is the sha2-256 of the receipt of the site that ran it,
	// for a run elsewhere.
	siteReceipt []byte
	result      *pb.Result
	changed     chan struct{}
}

// ended waits until the run's end is recorded, or ctx is done.
func (r *run) ended(ctx context.Context) error {
	for {
		r.mu.Lock()
		done, changed := r.result != nil, r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *run) set(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// logWriter appends a run's output to one of its buffers, up to max bytes,
// marks the stream cut past it, and wakes the watchers.
// nextSeq gives out the seq of a Status taken at now: max(last + 1, now in
// Unix ms), so that seq is strictly increasing over every watch stream of
// the lease epoch, and a Status written after a restart, whose seq is the
// restart's time, still comes after those the dead process sent (SPEC 6.3).
// The caller holds r.mu.
func (r *run) nextSeq(now time.Time) uint64 {
	r.seq = max(r.seq+1, protocol.UnixMs(now))
	return r.seq
}

type logWriter struct {
	r   *run
	buf *bytes.Buffer
	cut *bool
	max int
}

// runLinger is how long an ended run stays in memory for late watchers.
const runLinger = 2 * time.Minute

// DefaultMaxLog is what a provider keeps of each of a run's streams (SPEC 7):
// past it the stream is cut, and the result says so.
const DefaultMaxLog = protocol.MaxLog

func (w logWriter) Write(p []byte) (int, error) {
	w.r.set(func() {
		room := max(w.max-w.buf.Len(), 0)
		w.buf.Write(p[:min(len(p), room)])
		if len(p) > room {
			*w.cut = true
		}
	})
	return len(p), nil
}

type runKey struct {
	id    string
	epoch uint64
}

func (p *Provider) findRun(id string, epoch uint64) *run {
	p.runsMu.Lock()
	defer p.runsMu.Unlock()
	return p.runs[runKey{id, epoch}]
}

// startRun registers the run of a committed lease, so that watchers find it,
// and returns the function that executes it in the background, which the
// caller must call.
func (p *Provider) startRun(l store.Lease, job *record.SignedJob, beat time.Duration) (start func()) {
	ctx, cancel := context.WithCancel(p.ctx)
	r := &run{lease: l, job: job, beat: beat, cancel: cancel, state: l.State, changed: make(chan struct{})}
	p.runsMu.Lock()
	defer p.runsMu.Unlock()
	p.runs[runKey{l.ID, l.Epoch}] = r
	if p.closed {
		// The process is stopping: the lease stays committed, and the
		// next start ends it (recover.go), as a crash would.
		return func() {}
	}
	p.wg.Add(1) // under runsMu: counted before Close can wait
	return func() {
		go func() {
			defer p.wg.Done()
			defer cancel()
			p.execute(ctx, r)
		}()
	}
}

// errNotStarted ends a lease whose run had not begun by its expiry.
var errNotStarted = protocol.Errorf(protocol.CodeExpired, "not started before the lease expired")

// execute fetches the module, runs it, bills it and records the result.
func (p *Provider) execute(ctx context.Context, r *run) {
	j := r.job.Job
	t := j.GetTask()
	p.setState(r, pb.LeaseState_LEASE_STATE_FETCHING)
	// The fetch may last until the lease expires, no longer: a lease not
	// RUNNING by expires_at_ms ends EXPIRED (SPEC 9).
	fetchCtx, stopFetch := context.WithCancelCause(ctx)
	defer stopFetch(nil)
	expiry := p.clock.AfterFunc(r.lease.ExpiresAt.Sub(p.clock.Now()), func() { stopFetch(errNotStarted) })
	modCID, err := wire.ParseCID(t.ModuleCid)
	if err == nil {
		err = p.ensureModule(fetchCtx, modCID, r.lease.Requester)
	}
	var inputs []exec.Input
	if err == nil {
		inputs, err = p.fetchInputs(fetchCtx, r)
	}
	expiry.Stop()
	switch {
	case ctx.Err() != nil: // cancelled: by its requester, or a drain
		p.finishRun(r, pb.LeaseState_LEASE_STATE_CANCELLED, exec.Result{ExitCode: -1}, nil)
		return
	case context.Cause(fetchCtx) == errNotStarted || !p.clock.Now().Before(r.lease.ExpiresAt):
		p.finishRun(r, pb.LeaseState_LEASE_STATE_EXPIRED, exec.Result{ExitCode: -1}, errNotStarted)
		return
	case err != nil:
		p.finishRun(r, pb.LeaseState_LEASE_STATE_FAILED, exec.Result{ExitCode: -1}, err)
		return
	}
	p.setState(r, pb.LeaseState_LEASE_STATE_RUNNING)
	spec := exec.RunSpec{
		Module: modCID, Args: append([]string{j.Name}, t.Args...), Stdin: t.Stdin,
		MemoryBytes: t.GetResources().GetMemoryBytes(), ScratchBytes: t.GetResources().GetScratchBytes(),
		Timeout: time.Duration(t.TimeoutMs) * time.Millisecond, Inputs: inputs,
		Stdout: logWriter{r, &r.stdout, &r.cut[0], p.cfg.MaxLog}, Stderr: logWriter{r, &r.stderr, &r.cut[1], p.cfg.MaxLog},
	}
	for _, v := range t.Env {
		spec.Env = append(spec.Env, exec.EnvVar{Name: v.Name, Value: v.Value})
	}
	// The guest's random source (SPEC 11): the stream the job and instance
	// derive, the same for every replica, unless the job asks the host's
	// entropy (nil: crypto/rand).
	if j.Entropy != pb.Entropy_ENTROPY_HOST {
		spec.Random = protocol.JobRandom([]byte(r.lease.JobCID), r.lease.Instance)
	}
	var res exec.Result
	if p.cfg.Remote != nil {
		var rr RemoteResult
		rr, err = p.cfg.Remote.Run(ctx, r.lease, spec)
		res, r.output, r.outputSize, r.siteReceipt = rr.Result, rr.Output, rr.OutputSize, rr.SiteReceipt
	} else {
		res, err = p.exec.Run(ctx, spec)
	}
	p.metrics.execTime.Observe(res.Duration.Seconds())
	state := pb.LeaseState_LEASE_STATE_SUCCEEDED
	switch {
	case res.Reason == exec.ReasonCanceled:
		state, err = pb.LeaseState_LEASE_STATE_CANCELLED, nil // a cancelled Result has no error (SPEC 6.3)
	case err == nil && res.Reason == exec.ReasonTrap:
		// A trap is the job's own failure, like a non-zero exit: no
		// error, which would blame this provider; the final Status says
		// what trapped (SPEC 6.3, 9).
		state = pb.LeaseState_LEASE_STATE_FAILED
		r.note = fmt.Sprintf("%s: %s", res.Reason, res.Detail)
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
	p.finishRun(r, state, res, err)
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
func (p *Provider) setState(r *run, s pb.LeaseState) {
	now := p.clock.Now()
	r.set(func() { r.state, r.since = s, now })
	r.marks = append(r.marks, mark{s, now})
}

// ensureModule makes a module ready to run: compiled already, or in the
// store, or fetched from the requester and verified. A fetched module is
// stored only once it has compiled: bytes that are not a WebAssembly command
// are never kept.
func (p *Provider) ensureModule(ctx context.Context, c cid.Cid, from string) error {
	if p.exec == nil {
		// A run elsewhere (Config.Remote): the module is kept here, for
		// the node that runs it to fetch, and compiled there.
		if ok, err := p.store.HasModule(c); err != nil || ok {
			return err
		}
		bin, err := FetchModule(ctx, p.cfg.Transport, from, c)
		if err != nil {
			return fmt.Errorf("module %s: %w", c, err)
		}
		return p.store.PutModule(c, bin)
	}
	if p.exec.Has(c) {
		return nil
	}
	bin, err := p.store.Module(c)
	fetched := false
	if errors.Is(err, store.ErrNotFound) {
		bin, err = FetchModule(ctx, p.cfg.Transport, from, c)
		fetched = true
	}
	if err != nil {
		return fmt.Errorf("module %s: %w", c, err)
	}
	if err := p.exec.Add(ctx, c, bin); err != nil {
		return err
	}
	if fetched {
		if err := p.store.PutModule(c, bin); err != nil {
			// The run goes on with the module compiled; a restart fetches
			// it again.
			p.log.Warn("keep module", "module", c, "err", err)
		}
	}
	return nil
}

// finishRun releases the lease, seals its receipt, and records the end in one
// store transaction before any watcher hears of it.
func (p *Provider) finishRun(r *run, state pb.LeaseState, res exec.Result, runErr error) {
	p.releaseInputs(r)
	stdout, stderr, cut := r.logs()
	out := &store.Outcome{ExitCode: res.ExitCode, StdoutCID: string(wire.SumCID(stdout).Bytes()), StderrCID: string(wire.SumCID(stderr).Bytes()),
		StdoutCut: cut[0], StderrCut: cut[1]}
	if res.Scratch != nil {
		// The output is kept while the lease still holds its capacity:
		// the scratch it is read from is still on disk.
		if res.Reason != exec.ReasonCanceled {
			root, size, err := p.keepOutput(p.ctx, r, res.Scratch)
			switch {
			case err != nil && runErr == nil:
				state, runErr = pb.LeaseState_LEASE_STATE_FAILED, err
			case err == nil && root.Defined():
				out.OutputCID, out.OutputSize = string(root.Bytes()), size
			}
		}
		if err := res.Scratch.Close(); err != nil {
			p.log.Warn("scratch", "lease", fmt.Sprintf("%x", r.lease.ID), "err", err)
		}
	}
	if r.output.Defined() && res.Reason != exec.ReasonCanceled {
		switch err := p.holdOutput(p.ctx, r, r.output); {
		case err != nil && runErr == nil:
			state, runErr = pb.LeaseState_LEASE_STATE_FAILED, err
		case err == nil:
			out.OutputCID, out.OutputSize = string(r.output.Bytes()), r.outputSize
		}
	}
	now := p.clock.Now()
	// The final Status's seq is taken before the end is written, since it
	// is written with it; from here on watchers send no other Status.
	r.mu.Lock()
	r.ending = true
	out.FinalSeq = r.nextSeq(now)
	r.mu.Unlock()
	p.mu.Lock()
	held, _ := p.market.Held(r.lease.ID)
	p.mu.Unlock()
	usage, relErr := p.release(now, r.lease.ID, r.lease.Epoch)
	if relErr != nil && protocol.CodeOf(relErr) != pb.Code_CODE_STALE_EPOCH { // stale: replaced by a higher epoch
		p.log.Warn("release", "lease", fmt.Sprintf("%x", r.lease.ID), "err", relErr)
	}
	p.cfg.Loaded()
	// What the lease sends out: its logs and its output, once each (SPEC
	// 5.5), billed beside the compute.
	egress := uint64(len(stdout)+len(stderr)) + out.OutputSize
	var perr *protocol.Error
	if runErr != nil && !errors.As(runErr, &perr) {
		perr = &protocol.Error{Code: pb.Code_CODE_INTERNAL, Msg: runErr.Error()}
	}
	out.Error = perr
	nonce := make([]byte, protocol.NonceSize)
	rand.Read(nonce)
	receipt := &pb.UsageReceipt{
		LeaseId: []byte(r.lease.ID), Epoch: r.lease.Epoch, Provider: []byte(p.id), Requester: []byte(r.lease.Requester),
		JobCid: []byte(r.lease.JobCID), Reserved: conv.ResourcesToPB(r.lease.Reserved),
		StartedAtMs: protocol.UnixMs(usage.Started), EndedAtMs: protocol.UnixMs(usage.Ended),
		Price: conv.PriceToPB(usage.Price), Amount: conv.AmountToPB(usage.Amount), OutputCid: []byte(out.OutputCID), Nonce: nonce,
		EgressBytes: egress, OutputSize: out.OutputSize,
		OnSlice: held.Grantee != "", SiteReceipt: r.siteReceipt,
	}
	// The amount is SPEC 5.5's over the millisecond fields just signed, not
	// over the market's time.Time values: a requester recomputes it from
	// those fields, and a lease held from 3.9 ms to 8.1 ms is billed 5 ms,
	// as its fields say, not the 4 ms its durations truncate to.
	if relErr == nil && usage.Amount.Currency != "" {
		n, err := protocol.ReceiptAmount(receipt, r.lease.Total.Nanos)
		if err != nil {
			p.log.Error("receipt amount", "lease", fmt.Sprintf("%x", r.lease.ID), "err", err)
		}
		usage.Amount.Nanos = n
		receipt.Amount = conv.AmountToPB(usage.Amount)
	}
	// A lease the market no longer holds was replaced by a higher epoch
	// (SPEC 6.2): it ends unbilled, with no receipt.
	var renv []byte
	var err error
	if relErr == nil {
		if renv, err = record.Seal(p.cfg.Key, receipt); err != nil {
			p.log.Error("seal receipt", "err", err)
		}
	}
	err = p.store.Update(func(tx *store.Tx) error {
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
		p.log.Error("record lease end", "lease", fmt.Sprintf("%x", r.lease.ID), "err", err)
	}
	p.metrics.leases.WithLabelValues(eventOf(state)).Inc()
	if usage.Amount.Nanos > 0 {
		p.metrics.earnings.WithLabelValues(usage.Amount.Currency).Add(float64(usage.Amount.Nanos))
	}
	result := &pb.Result{
		LeaseId: []byte(r.lease.ID), Epoch: r.lease.Epoch, State: state, ExitCode: res.ExitCode,
		OutputCid: []byte(out.OutputCID), StdoutCid: []byte(out.StdoutCID), StderrCid: []byte(out.StderrCID),
		StartedAtMs: protocol.UnixMs(res.Started), EndedAtMs: protocol.UnixMs(now), Receipt: renv, Error: protocol.ToPB(errOrNil(perr)),
		StdoutTruncated: cut[0], StderrTruncated: cut[1], OutputSize: out.OutputSize,
	}
	if res.Started.IsZero() {
		result.StartedAtMs = 0
	}
	final := finalStatus(r.lease.ID, r.lease.Epoch, state, out.FinalSeq, now, perr)
	if perr == nil {
		final.Message = r.note
	}
	r.set(func() { r.state, r.result, r.final = state, result, final })
	// A requester may start watching after a short run ended: keep the run,
	// its logs with it, for a while, then leave it to the store.
	p.clock.AfterFunc(runLinger, func() {
		p.runsMu.Lock()
		delete(p.runs, runKey{r.lease.ID, r.lease.Epoch})
		p.runsMu.Unlock()
	})
	p.log.Info("lease ended", "lease", fmt.Sprintf("%x", r.lease.ID), "epoch", r.lease.Epoch, "state", state, "exit", res.ExitCode, "err", runErr)
}

// finalStatus is the Status that reports a lease's final state (SPEC 6.3),
// the same message on every watch that gets it.
func finalStatus(id string, epoch uint64, state pb.LeaseState, seq uint64, at time.Time, perr *protocol.Error) *pb.Status {
	st := &pb.Status{LeaseId: []byte(id), Epoch: epoch, State: state, Seq: seq, AtMs: protocol.UnixMs(at)}
	if perr != nil {
		st.Message = perr.Error()
	}
	return st
}

func (r *run) logs() (stdout, stderr []byte, cut [2]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.stdout.Bytes()), bytes.Clone(r.stderr.Bytes()), r.cut
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

// RunView is a run going on here, as an operator sees it: its lease, and the
// last of its output.
type RunView struct {
	Lease          store.Lease
	State          pb.LeaseState
	Since          time.Time // when it entered State; zero while committed
	Stdout, Stderr []byte    // their last tail bytes at most
	Cut            bool      // a stream was cut at the log limit
}

// Runs returns the runs going on, oldest lease first, each with the last
// tail bytes of its output streams; not those that ended.
func (p *Provider) Runs(tail int) []RunView {
	p.runsMu.Lock()
	runs := make([]*run, 0, len(p.runs))
	for _, r := range p.runs {
		runs = append(runs, r)
	}
	p.runsMu.Unlock()
	out := make([]RunView, 0, len(runs))
	for _, r := range runs {
		r.mu.Lock()
		if r.result != nil { // ended: it lingers for late watchers only
			r.mu.Unlock()
			continue
		}
		v := RunView{Lease: r.lease, State: r.state, Since: r.since, Stdout: lastBytes(r.stdout.Bytes(), tail), Stderr: lastBytes(r.stderr.Bytes(), tail), Cut: r.cut[0] || r.cut[1]}
		r.mu.Unlock()
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b RunView) int {
		return cmp.Or(a.Lease.Committed.Compare(b.Lease.Committed), cmp.Compare(a.Lease.ID, b.Lease.ID), cmp.Compare(a.Lease.Epoch, b.Lease.Epoch))
	})
	return out
}

// lastBytes is a copy of b's last n bytes at most.
func lastBytes(b []byte, n int) []byte { return bytes.Clone(b[max(0, len(b)-n):]) }

// Runner runs a lease's job elsewhere than on this node's executor: a
// retailer's leases run on the site of its slices (SPEC 6.7). Run streams
// the job's logs to spec.Stdout and spec.Stderr as they come, and returns
// how the run ended as a run here would say it.
type Runner interface {
	Run(ctx context.Context, l store.Lease, spec exec.RunSpec) (RemoteResult, error)
	// Backing says where a lease of r would run: the site, and the sealed
	// grant and tariff a retailer's offer carries (SPEC 6.7), or an error
	// if it has nowhere to run it.
	Backing(r scheduler.Resources) (site string, grant, tariff []byte, err error)
}

// RemoteResult is how a run elsewhere ended, and its output, already in the
// node's data store (undefined if none).
type RemoteResult struct {
	exec.Result
	Output     cid.Cid
	OutputSize uint64
	// SiteReceipt is the sha2-256 of the sealed receipt of the site that
	// ran it, which this node's receipt refers to (SPEC 6.7): the two legs.
	SiteReceipt []byte
}
