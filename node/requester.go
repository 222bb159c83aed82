package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// The requester side of a node (SPEC 6, DESIGN "The flow of one workload"):
// it drives one scheduler.Placement per job with real time, the real DHT and
// real streams. The placement decides; this file only carries its actions
// out and turns what comes back into its events.

// Heartbeat is the status interval a requester asks of its providers.
const Heartbeat = scheduler.DefaultHeartbeatInterval

// job is one job this node places. Its placement is driven by a single
// goroutine (drive); everything else talks to it through events.
type job struct {
	name      string
	submitted time.Time
	cid       string
	env       []byte
	spec      string
	events    chan scheduler.Event

	mu      sync.Mutex
	placed  time.Duration         // submit to first lease accepted; 0 until then
	unsaved *store.Job            // the latest status not yet written, if any
	stored  chan error            // the first write's outcome, for Submit
	results map[runKey]*pb.Result // providers' results, by lease and epoch
	status  scheduler.Status
	history []string // what happened, one line each, for progress displays
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	done    chan struct{} // closed when the job reaches a final state
	changed chan struct{} // closed and replaced at every change
}

func (j *job) update(f func()) {
	j.mu.Lock()
	f()
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

// JobView is a job as the API shows it.
type JobView struct {
	CID       string        `json:"cid"`
	Name      string        `json:"name"`
	Spec      string        `json:"spec,omitempty"`
	State     string        `json:"state"`
	Reason    string        `json:"reason,omitempty"`
	Slots     []SlotView    `json:"slots"`
	Asked     []OutcomeView `json:"asked,omitempty"`
	History   []string      `json:"history,omitempty"`
	Submitted time.Time     `json:"submitted"`
	// PlacedMs is the time from submission to the first lease accepted.
	PlacedMs float64 `json:"placed_ms,omitempty"`
}

// SlotView is one lease slot.
type SlotView struct {
	Provider string `json:"provider,omitempty"`
	Epoch    uint64 `json:"epoch"`
	State    string `json:"state"`
	Price    string `json:"price,omitempty"`
	ExitCode int32  `json:"exit_code"`
	Output   string `json:"output_cid,omitempty"`
}

// OutcomeView is what came of asking one provider.
type OutcomeView struct {
	Provider string `json:"provider"`
	Reason   string `json:"reason"`
	Detail   string `json:"detail,omitempty"`
}

// Submit places a customer-sealed job: the job is kept in the store, its
// module (if given) too so providers can fetch it, and a placement starts. It
// returns the job's CID in text form.
func (n *Node) Submit(jobEnv, module []byte, specName string) (string, error) {
	sj, err := record.OpenJob(jobEnv)
	if err != nil {
		return "", err
	}
	if module != nil {
		c, err := n.AddModule(module)
		if err != nil {
			return "", err
		}
		if string(c.Bytes()) != string(sj.Job.GetTask().GetModuleCid()) {
			return "", protocol.Errorf(pb.Code_CODE_MODULE_MISMATCH, "module given is %s, the job names another", c)
		}
	}
	sjob, err := scheduler.JobFromPB(string(sj.CID.Bytes()), string(n.ID()), sj.Job)
	if err != nil {
		return "", err
	}
	key := sj.CID.String()
	n.jobsMu.Lock()
	if _, dup := n.jobs[key]; dup {
		n.jobsMu.Unlock()
		return "", protocol.Errorf(protocol.CodeReplayed, "job %s is already placed here: sign it again for a new nonce", key)
	}
	submitted := n.now()
	j := &job{name: sj.Job.Name, submitted: submitted, cid: string(sj.CID.Bytes()), env: jobEnv, spec: specName, events: make(chan scheduler.Event, 256),
		done: make(chan struct{}), changed: make(chan struct{})}
	n.jobs[key] = j
	n.jobsMu.Unlock()
	if n.store == nil {
		n.start(j, scheduler.NewPlacement(n.opts.Placement, sjob, randomSeed()))
		return key, nil
	}
	// The job is written while its placement starts, not before it: the
	// placement does not wait for the fsync, Submit does. The write goes
	// first in the job's queue of saves, so a later status always wins.
	stored := make(chan error, 1)
	j.stored = stored // before the writer starts: no lock needed yet
	n.queueSave(j, store.Job{CID: j.cid, Envelope: jobEnv, SpecFile: specName, Submitted: submitted, State: scheduler.JobPlacing})
	n.start(j, scheduler.NewPlacement(n.opts.Placement, sjob, randomSeed()))
	if err := <-stored; err != nil {
		n.Stop(key)
		return "", fmt.Errorf("store job: %w", err)
	}
	return key, nil
}

func randomSeed() (seed [32]byte) {
	rand.Read(seed[:])
	return seed
}

// start drives a placement in the background.
func (n *Node) start(j *job, p *scheduler.Placement) {
	n.wg.Add(1)
	go n.drive(j, p, j.submitted)
	j.events <- scheduler.Start{}
}

// reloadFinished shows a job that ended before this process started, from
// its record: status, results, and the logs kept by CID.
func (n *Node) reloadFinished(rec store.Job) {
	sj, err := record.OpenJob(rec.Envelope)
	if err != nil {
		return
	}
	j := &job{name: sj.Job.Name, submitted: rec.Submitted, cid: rec.CID, env: rec.Envelope, spec: rec.SpecFile,
		events: make(chan scheduler.Event, 1), done: make(chan struct{}), changed: make(chan struct{})}
	j.status = scheduler.Status{State: rec.State, Reason: rec.Reason}
	for _, s := range rec.Slots {
		ss := scheduler.SlotStatus{LeaseID: s.LeaseID, Epoch: s.Epoch, Provider: s.Provider, State: s.State, Price: s.Price}
		if r := s.Result; r != nil {
			ss.ExitCode, ss.OutputCID = r.ExitCode, r.OutputCID
			for _, l := range []struct {
				cid string
				buf *bytes.Buffer
			}{{r.StdoutCID, &j.stdout}, {r.StderrCID, &j.stderr}} {
				if c, err := wire.ParseCID([]byte(l.cid)); err == nil {
					if b, err := n.store.Module(c); err == nil {
						l.buf.Write(b)
					}
				}
			}
		}
		j.status.Slots = append(j.status.Slots, ss)
	}
	close(j.done)
	n.jobsMu.Lock()
	n.jobs[sj.CID.String()] = j
	n.jobsMu.Unlock()
}

// resumeJobs takes up the jobs a previous process of this node was placing
// (DESIGN: jobs survive a requester restart): each gets its placement back
// with its slots as last recorded; running leases are watched again, and a
// provider that no longer answers loses its lease to a new epoch.
func (n *Node) resumeJobs() error {
	if n.store == nil {
		return nil
	}
	all, err := n.store.Jobs(nil)
	if err != nil {
		return fmt.Errorf("reload jobs: %w", err)
	}
	for _, rec := range all {
		if rec.State.Final() {
			n.reloadFinished(rec)
			continue
		}
		sj, err := record.OpenJob(rec.Envelope)
		if err != nil {
			n.log.Warn("stored job does not open", "err", err)
			continue
		}
		sjob, err := scheduler.JobFromPB(rec.CID, string(n.ID()), sj.Job)
		if err != nil {
			continue
		}
		p := scheduler.NewPlacement(n.opts.Placement, sjob, randomSeed())
		slots := make([]scheduler.SlotStatus, len(rec.Slots))
		for i, s := range rec.Slots {
			slots[i] = scheduler.SlotStatus{LeaseID: s.LeaseID, Epoch: s.Epoch, Provider: s.Provider, State: s.State, Price: s.Price}
		}
		if len(slots) > 0 && !p.Resume(slots) {
			n.log.Warn("stored job's slots do not match it", "job", sj.CID)
			continue
		}
		key := sj.CID.String()
		j := &job{name: sj.Job.Name, submitted: rec.Submitted, cid: rec.CID, env: rec.Envelope, spec: rec.SpecFile,
			events: make(chan scheduler.Event, 256), done: make(chan struct{}), changed: make(chan struct{})}
		n.jobsMu.Lock()
		n.jobs[key] = j
		n.jobsMu.Unlock()
		n.start(j, p)
		for _, s := range slots {
			if s.State == scheduler.SlotLeasing || s.State == scheduler.SlotRunning {
				send := func(ev scheduler.Event) {
					select {
					case j.events <- ev:
					case <-n.ctx.Done():
					}
				}
				go n.watchLease(n.ctx, j, s.Provider, s.LeaseID, s.Epoch, send)
			}
		}
		n.log.Info("resumed job", "job", key, "slots", len(slots))
	}
	return nil
}

// drive is the only goroutine that touches a placement: it steps it with each
// event and carries out the actions.
func (n *Node) drive(j *job, p *scheduler.Placement, submitted time.Time) {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(n.ctx)
	defer cancel()
	var linger <-chan time.Time
	for {
		var ev scheduler.Event
		select {
		case ev = <-j.events:
		case <-linger:
			return
		case <-ctx.Done():
			return
		}
		for _, a := range p.Step(n.now(), ev) {
			n.act(ctx, j, a, submitted)
		}
		if p.State().Final() && linger == nil {
			// Stay a while for late offers and leases, which the
			// placement declines or cancels.
			linger = time.After(10 * time.Second)
		}
	}
}

// act carries out one action; whatever talks to the network runs in its own
// goroutine and answers with an event.
func (n *Node) act(ctx context.Context, j *job, a scheduler.Action, submitted time.Time) {
	send := func(ev scheduler.Event) {
		select {
		case j.events <- ev:
		case <-ctx.Done():
		}
	}
	switch a := a.(type) {
	case scheduler.Lookup:
		for _, k := range a.Keys {
			key := k.String()
			// A lookup ends once it has found need providers and a little
			// grace has passed: the peers that store a key's records answer
			// with all they hold, so walking the rest of the DHT for the 16
			// records a sparse shard never has would only cost dials.
			find := func(need int, grace time.Duration) ([]string, bool) {
				lctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
				defer cancel()
				found, complete := n.findProviders(lctx, wire.FacetCID(k), a.Want+1, need, grace)
				return n.peersOf(found), complete
			}
			if peers, ok := n.candidates.cached(key, n.now(), find); ok {
				send(scheduler.CandidatesFound{Key: k, Peers: peers, Done: true})
				continue
			}
			go func() {
				send(scheduler.CandidatesFound{Key: k, Peers: n.candidates.lookup(key, n.now, max(a.Need, 1), find), Done: true})
			}()
		}
	case scheduler.RequestOffer:
		go func() {
			octx, cancel := context.WithDeadline(ctx, a.Request.ExpiresAt)
			defer cancel()
			o, _, err := n.RequestOffer(octx, peer.ID(a.Provider), a.Request)
			if err != nil {
				code := protocol.CodeOf(err)
				if code == pb.Code_CODE_INTERNAL {
					code = pb.Code_CODE_UNSPECIFIED // unreachable or silent: "no answer"
				}
				send(scheduler.OfferRefused{Provider: a.Provider, RequestNonce: a.Request.Nonce, Code: code, Reason: err.Error()})
				return
			}
			send(scheduler.OfferReceived{Offer: o})
		}()
	case scheduler.SendLease:
		go n.lease(ctx, j, a, send)
	case scheduler.DeclineOffer:
		go func() {
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			n.Decline(dctx, peer.ID(a.Provider), a.OfferNonce, j.cid)
		}()
	case scheduler.CancelLease:
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			n.CancelLease(cctx, peer.ID(a.Provider), a.LeaseID, a.Epoch)
		}()
	case scheduler.SetTimer:
		time.AfterFunc(max(0, a.At.Sub(n.now())), func() { send(scheduler.TimerFired{ID: a.ID}) })
	case scheduler.Report:
		n.report(j, a.Status, submitted)
	}
}

// lease seals and sends a lease, then watches it until its result.
func (n *Node) lease(ctx context.Context, j *job, a scheduler.SendLease, send func(scheduler.Event)) {
	nonce := make([]byte, protocol.NonceSize)
	rand.Read(nonce)
	l := a.Lease
	env, err := record.Seal(n.opts.Identity, leaseToPB(l, string(nonce), j.env, Heartbeat))
	if err == nil {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = n.SendLease(lctx, peer.ID(a.Provider), env)
		cancel()
	}
	if err != nil {
		code := protocol.CodeOf(err)
		if code == pb.Code_CODE_INTERNAL {
			code = pb.Code_CODE_UNSPECIFIED
		}
		send(scheduler.LeaseRejected{Provider: a.Provider, LeaseID: l.ID, Epoch: l.Epoch, Code: code, Reason: err.Error()})
		return
	}
	send(scheduler.LeaseAccepted{Provider: a.Provider, LeaseID: l.ID, Epoch: l.Epoch})
	n.watchLease(ctx, j, a.Provider, l.ID, l.Epoch, send)
}

// watchLease follows a lease until its result, turning statuses into
// heartbeats and log chunks into the job's output.
func (n *Node) watchLease(ctx context.Context, j *job, provider, leaseID string, epoch uint64, send func(scheduler.Event)) {
	var out, errOff uint64
	var outBuf, errBuf bytes.Buffer // this lease's own streams, kept by CID at the end
	for ctx.Err() == nil {
		res, err := n.Watch(ctx, peer.ID(provider), &pb.WatchRequest{LeaseId: []byte(leaseID), Epoch: epoch, StdoutOffset: out, StderrOffset: errOff},
			func(ev *pb.WatchEvent) {
				switch x := ev.Event.(type) {
				case *pb.WatchEvent_Status:
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
			n.keepLog(outBuf.Bytes(), res.StdoutCid)
			n.keepLog(errBuf.Bytes(), res.StderrCid)
			j.update(func() {
				if j.results == nil {
					j.results = map[runKey]*pb.Result{}
				}
				j.results[runKey{leaseID, epoch}] = res
			})
			send(scheduler.ResultReceived{Provider: provider, LeaseID: leaseID, Epoch: epoch, State: res.State, ExitCode: res.ExitCode,
				OutputCID: string(res.OutputCid), Detail: res.GetError().GetMessage()})
			// The receipt is settled behind the result, not before it: the
			// customer need not wait for two fsyncs and a round trip that
			// only bill the run (a receipt that does not open is logged,
			// and changes nothing of the result either way).
			n.settle(ctx, provider, res)
			return
		}
		if errors.Is(err, protocol.ErrStaleEpoch) || protocol.CodeOf(err) == pb.Code_CODE_UNKNOWN_LEASE {
			return
		}
		// The stream broke: the placement's heartbeat deadline decides
		// whether the lease is lost; meanwhile try to follow it again.
		select {
		case <-time.After(Heartbeat):
		case <-ctx.Done():
		}
	}
}

// Grace periods of a lookup once it has found what it needs: short when a
// placement waits for it, longer for a refresh behind the cache, which may
// gather the records of a few more peers.
const (
	lookupGrace  = 2 * time.Millisecond
	refreshGrace = 10 * time.Millisecond
)

// findFunc looks a key up until it has need providers and grace has passed,
// and says whether the lookup ran to its end.
type findFunc func(need int, grace time.Duration) ([]string, bool)

// peersOf returns the IDs of found providers, less this node: a node does not
// lease to itself over the network; its own capacity serves other requesters.
func (n *Node) peersOf(found []peer.AddrInfo) []string {
	var peers []string
	for _, p := range found {
		if p.ID != n.ID() {
			peers = append(peers, string(p.ID))
		}
	}
	return peers
}

// candidateCache keeps what DHT lookups returned for a short while: provider
// records are hints (DESIGN), and a warm requester need not ask the DHT again
// for every job. A stale entry costs one refused or silent probe, which the
// placement already handles.
//
// Under load it must not multiply lookups: concurrent misses of a key share
// one lookup, and an entry past its TTL (but not by more than staleFor) is
// still served while a single refresh runs behind it, so that placements
// never wait for the DHT once a key is known.
type candidateCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]*candidateEntry
}

type candidateEntry struct {
	peers   []string
	expires time.Time
	busy    chan struct{} // a lookup is running; closed when it ends
}

// emptyTTL is how long an empty answer is kept: long enough to spare a
// placement's widening lookups of empty shards, short enough that a provider
// announcing itself is seen by the next attempt but one.
const emptyTTL = time.Second

// staleFor is how long past its TTL an entry may still be served while it is
// refreshed.
const staleFor = time.Minute

// cached returns the peers of key if they can be served at once: fresh, or
// stale but not by more than staleFor (then starting a refresh with find, if
// none runs, that looks for as many as the entry holds).
func (c *candidateCache) cached(key string, now time.Time, find findFunc) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	switch {
	case e == nil || e.expires.IsZero():
		return nil, false
	case now.Before(e.expires):
		return e.peers, true
	case len(e.peers) == 0 || now.Sub(e.expires) > staleFor:
		return nil, false
	}
	if e.busy == nil {
		e.busy = make(chan struct{})
		need := len(e.peers)
		go c.run(e, now, func() ([]string, bool) { return find(need, refreshGrace) })
	}
	return e.peers, true
}

// lookup returns the peers of key, looking need of them up with find unless a
// lookup of key is running already, whose answer it then shares.
func (c *candidateCache) lookup(key string, now func() time.Time, need int, find findFunc) []string {
	c.mu.Lock()
	if c.entries == nil || len(c.entries) > 10_000 {
		c.entries = map[string]*candidateEntry{} // crude bound: start afresh
	}
	e := c.entries[key]
	if e == nil {
		e = &candidateEntry{}
		c.entries[key] = e
	}
	if e.busy == nil {
		e.busy = make(chan struct{})
		c.mu.Unlock()
		return c.run(e, now(), func() ([]string, bool) { return find(need, lookupGrace) })
	}
	busy := e.busy
	c.mu.Unlock()
	<-busy
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.peers
}

// run does e's lookup and keeps its answer: for the TTL if it found
// providers, for emptyTTL if it ran to its end and found none; an empty
// answer cut short (a timeout) is not kept.
func (c *candidateCache) run(e *candidateEntry, now time.Time, find func() ([]string, bool)) []string {
	peers, complete := find()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(peers) > 0:
		e.peers, e.expires = peers, now.Add(c.ttl)
	case complete:
		e.peers, e.expires = peers, now.Add(min(c.ttl, emptyTTL))
	}
	close(e.busy)
	e.busy = nil
	return peers
}

// keepLog stores a lease's stream by its CID when it is whole: the bytes
// watched hash to the CID the provider's result names.
func (n *Node) keepLog(b, want []byte) {
	c := wire.SumCID(b)
	if n.store == nil || len(b) == 0 || string(c.Bytes()) != string(want) {
		return
	}
	if err := n.store.PutModule(c, b); err != nil {
		n.log.Warn("keep log", "err", err)
	}
}

// settle checks a result's receipt, countersigns it, keeps both and hands the
// countersignature back to the provider (SPEC 6.4).
func (n *Node) settle(ctx context.Context, provider string, res *pb.Result) {
	if len(res.Receipt) == 0 {
		return
	}
	r, err := record.OpenReceipt(res.Receipt)
	if err != nil || string(r.Provider) != provider || string(r.LeaseId) != string(res.LeaseId) || r.Epoch != res.Epoch {
		n.log.Warn("receipt refused", "provider", peer.ID(provider).ShortString(), "err", err)
		return
	}
	cs, err := record.Seal(n.opts.Identity, &pb.Countersignature{ReceiptHash: receiptHash(res.Receipt), Requester: []byte(n.ID()), SignedAtMs: protocol.UnixMs(n.now())})
	if err != nil {
		return
	}
	if n.store != nil {
		if err := n.store.PutReceipt(store.Receipt{LeaseID: string(r.LeaseId), Epoch: r.Epoch, Envelope: res.Receipt, Countersignature: cs}); err != nil {
			n.log.Warn("store receipt", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.SubmitReceipt(sctx, peer.ID(provider), res.Receipt, cs); err != nil {
		n.log.Info("countersignature not taken", "provider", peer.ID(provider).ShortString(), "err", err)
	}
}

// report records a placement's status: in memory for the API, and in the store.
func (n *Node) report(j *job, st scheduler.Status, submitted time.Time) {
	j.update(func() {
		j.status = st
		if j.placed == 0 {
			for _, s := range st.Slots {
				if s.State == scheduler.SlotRunning {
					j.placed = max(n.now().Sub(submitted), time.Nanosecond)
				}
			}
		}
		if st.Message != "" {
			j.history = append(j.history, fmt.Sprintf("%s %s", n.now().Sub(submitted).Round(time.Millisecond), st.Message))
		}
		if st.State.Final() {
			select {
			case <-j.done:
			default:
				close(j.done)
			}
		}
	})
	if n.store == nil {
		return
	}
	rec := store.Job{CID: j.cid, Envelope: j.env, SpecFile: j.spec, Submitted: submitted, State: st.State, Reason: st.Reason}
	j.mu.Lock()
	for _, s := range st.Slots {
		slot := store.Slot{LeaseID: s.LeaseID, Epoch: s.Epoch, Provider: s.Provider, State: s.State, Price: s.Price}
		if r := j.results[runKey{s.LeaseID, s.Epoch}]; r != nil {
			var perr *protocol.Error
			if e := protocol.FromPB(r.Error); e != nil {
				perr, _ = e.(*protocol.Error)
			}
			slot.Result = &store.Result{State: r.State, ExitCode: r.ExitCode, OutputCID: string(r.OutputCid),
				StdoutCID: string(r.StdoutCid), StderrCID: string(r.StderrCid),
				Started: msTime(r.StartedAtMs), Ended: msTime(r.EndedAtMs), Error: perr}
		}
		rec.Slots = append(rec.Slots, slot)
	}
	j.mu.Unlock()
	// The status is written behind the placement, not on its path: the
	// latest one wins. A crash may lose the last steps; a resumed placement
	// then re-places what it no longer knows of, and a lease orphaned so
	// is never countersigned, so it is never billed twice.
	n.queueSave(j, rec)
}

// queueSave makes rec the job's next record to write, starting the writer if
// none is running.
func (n *Node) queueSave(j *job, rec store.Job) {
	j.mu.Lock()
	pending := j.unsaved != nil
	j.unsaved = &rec
	j.mu.Unlock()
	if !pending {
		n.wg.Add(1)
		go n.saveJob(j)
	}
}

func msTime(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return protocol.FromUnixMs(ms)
}

// saveJob writes a job's latest unsaved status until none is left.
func (n *Node) saveJob(j *job) {
	defer n.wg.Done()
	for {
		j.mu.Lock()
		rec := j.unsaved
		j.mu.Unlock()
		err := n.store.PutJob(*rec)
		if err != nil {
			n.log.Warn("store job", "err", err)
		}
		j.mu.Lock()
		if j.stored != nil {
			j.stored <- err
			j.stored = nil
		}
		if j.unsaved == rec {
			j.unsaved = nil
			j.mu.Unlock()
			return
		}
		j.mu.Unlock()
	}
}

// Job returns a job's view, by its CID in text form.
func (n *Node) Job(key string) (JobView, bool) {
	n.jobsMu.Lock()
	j, ok := n.jobs[key]
	n.jobsMu.Unlock()
	if !ok {
		return JobView{}, false
	}
	return j.view(key), true
}

// Jobs lists the jobs placed by this node since it started.
func (n *Node) Jobs() []JobView {
	n.jobsMu.Lock()
	defer n.jobsMu.Unlock()
	out := make([]JobView, 0, len(n.jobs))
	for k, j := range n.jobs {
		out = append(out, j.view(k))
	}
	return out
}

func (j *job) view(key string) JobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.status
	v := JobView{CID: key, Name: j.name, Submitted: j.submitted, Spec: j.spec, PlacedMs: float64(j.placed.Microseconds()) / 1000, State: st.State.String(), Reason: st.Reason, History: append([]string(nil), j.history...)}
	if st.State == 0 {
		v.State = "submitted"
	}
	for _, s := range st.Slots {
		sv := SlotView{Provider: peer.ID(s.Provider).String(), Epoch: s.Epoch, State: s.State.String(), ExitCode: s.ExitCode}
		if s.Provider == "" {
			sv.Provider = ""
		}
		if s.Price.Currency != "" {
			sv.Price = protocol.FormatAmount(&pb.Amount{Currency: s.Price.Currency, Nanos: s.Price.Nanos})
		}
		if c, err := wire.ParseCID([]byte(s.OutputCID)); err == nil {
			sv.Output = c.String()
		}
		v.Slots = append(v.Slots, sv)
	}
	for _, o := range st.Asked {
		v.Asked = append(v.Asked, OutcomeView{Provider: peer.ID(o.Provider).String(), Reason: o.Reason, Detail: o.Detail})
	}
	return v
}

// Logs returns what a job's instances wrote so far, and a channel closed at
// the next change (for following).
func (n *Node) Logs(key string) (stdout, stderr []byte, changed <-chan struct{}, done bool, ok bool) {
	n.jobsMu.Lock()
	j, ok := n.jobs[key]
	n.jobsMu.Unlock()
	if !ok {
		return nil, nil, nil, false, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case <-j.done:
		done = true
	default:
	}
	return bytes.Clone(j.stdout.Bytes()), bytes.Clone(j.stderr.Bytes()), j.changed, done, true
}

// Stop cancels a job.
func (n *Node) Stop(key string) bool {
	n.jobsMu.Lock()
	j, ok := n.jobs[key]
	n.jobsMu.Unlock()
	if ok {
		select {
		case j.events <- scheduler.Cancel{}:
		case <-n.ctx.Done():
		}
	}
	return ok
}

// Wait blocks until a job ends or ctx does.
func (n *Node) Wait(ctx context.Context, key string) (JobView, error) {
	n.jobsMu.Lock()
	j, ok := n.jobs[key]
	n.jobsMu.Unlock()
	if !ok {
		return JobView{}, fmt.Errorf("no job %s here", key)
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		return j.view(key), ctx.Err()
	}
	return j.view(key), nil
}
