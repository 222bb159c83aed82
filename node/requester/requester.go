package requester

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// Config configures a Requester. The zero value of each optional field means
// its documented default.
type Config struct {
	Key       crypto.PrivKey      // required: signs leases and countersignatures
	Transport transport.Transport // required
	// Store keeps jobs, their modules and their receipts, so that a restart
	// takes the jobs up again; without it jobs live in memory only. The
	// requester does not close it.
	Store *store.Store
	// Placement tunes the placements (scheduler defaults).
	Placement scheduler.Config
	// CandidateTTL is how long a lookup of a facet key is reused. Default
	// scheduler.DefaultCandidateTTL.
	CandidateTTL time.Duration
	// Data lets the providers of a job fetch its inputs from this node, and
	// brings its output back here. Without it a job with inputs cannot run
	// and outputs stay with the providers.
	Data  Data
	Clock clock.Clock  // default clock.Real
	Log   *slog.Logger // default slog.Default()
}

// Data is the node's content-addressed data, as the requester uses it.
type Data interface {
	// Grant lets a peer fetch the DAG under root from this node, and
	// Revoke takes that back.
	Grant(peer string, root cid.Cid)
	Revoke(peer string, root cid.Cid)
	// Fetch brings the DAG under root into this node from holders, and
	// keeps it for the job owner (a job's key) until Release.
	Fetch(ctx context.Context, holders []string, root cid.Cid, owner string) error
	Release(root cid.Cid, owner string)
}

// Requester is the requester's driver: it places customers' jobs by driving
// one scheduler.Placement per job with the transport's lookups and exchanges
// and the clock's timers, and keeps what comes of them. It is safe for
// concurrent use.
type Requester struct {
	cfg   Config
	id    string
	t     transport.Transport
	clock clock.Clock
	log   *slog.Logger
	store *store.Store

	jobsMu     sync.Mutex // guards jobs and closed
	jobs       map[string]*job
	closed     bool // Close has begun: no new job
	candidates candidateCache
	dead       deadSet   // providers that did not answer, left out of candidates for a while
	queue      waitQueue // jobs waiting for capacity, served in submission order
	// offerNonces holds the nonce of every offer taken until it expires
	// (SPEC 3.4, 6.1 check 5): a provider's offer seen twice is refused.
	offerNonces *protocol.ReplayCache

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the requester starts
}

// New returns a requester, and takes up the jobs its store holds: finished
// ones are shown again, unfinished ones are placed on (resume.go).
func New(c Config) (*Requester, error) {
	if c.Key == nil || c.Transport == nil {
		return nil, errors.New("requester: a key and a transport are required")
	}
	if c.CandidateTTL <= 0 {
		c.CandidateTTL = scheduler.DefaultCandidateTTL
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Placement.Book == nil {
		c.Placement.Book = scheduler.NewBook() // shared by its placements: what it learns of providers
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Requester{cfg: c, id: c.Transport.Self(), t: c.Transport, clock: c.Clock, log: c.Log, store: c.Store,
		jobs: map[string]*job{}, candidates: candidateCache{ttl: c.CandidateTTL}, queue: waitQueue{clock: c.Clock}, ctx: ctx, cancel: cancel,
		offerNonces: protocol.NewReplayCache(maxOfferNonces)}
	if err := r.resumeJobs(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close stops every placement and waits for every goroutine the requester
// started, receipts being settled and statuses being saved included, so that
// the caller may close the store once it returns. Jobs not finished stay in
// the store, for the next process to take up.
func (r *Requester) Close() error {
	r.jobsMu.Lock()
	r.closed = true
	r.jobsMu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}

// spawn runs f in a goroutine that Close waits for.
func (r *Requester) spawn(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// job is one job this requester places. Its placement is driven by a single
// goroutine (drive); everything else talks to it through events.
type job struct {
	name      string
	inputs    []cid.Cid // roots of the task's inputs, which its providers fetch from here
	submitted time.Time
	cid       string
	env       []byte
	spec      string
	events    chan scheduler.Event
	ended     chan struct{}  // closed when drive returns: no one reads events any more
	heartbeat time.Duration  // the Status interval asked of its providers, set by start
	need      *scheduler.Job // what its placement asks (for the wait queue), set by start

	mu      sync.Mutex               // guards what follows
	placed  time.Duration            // submit to first lease accepted; 0 until then
	unsaved *store.Job               // the latest status not yet written, if any
	stored  chan error               // the first write's outcome, for Submit
	results map[runKey]*pb.Result    // providers' results, by lease and epoch
	runs    map[runKey]pb.LeaseState // what each lease's provider last said it does: fetching, running
	// offers are the offers taken for the job and not declined, by nonce:
	// those leased stay, so that each receipt is checked against the price
	// and total of the offer its lease took (SPEC 6.4).
	offers map[string]scheduler.Offer
	// refused says why a lease epoch's receipt was refused, not
	// countersigned (SPEC 6.4); its amount is then not counted as billed.
	refused map[runKey]string
	outputs map[string]*output // outputs brought back here, by root CID (binary)
	status  scheduler.Status
	history []string          // what happened, one line each, for progress displays
	turns   []store.SlotEvent // when each lease epoch was acknowledged, lost and ended
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	done    chan struct{} // closed when the job reaches a final state
	changed chan struct{} // closed and replaced at every change
}

type runKey struct {
	id    string
	epoch uint64
}

func newJob(pj *pb.Job, key string, env []byte, spec string, submitted time.Time) *job {
	j := &job{name: pj.Name, submitted: submitted, cid: key, env: env, spec: spec, events: make(chan scheduler.Event, 256),
		ended: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{})}
	for _, in := range pj.GetTask().GetInputs() {
		if c, err := cid.Cast(in.Cid); err == nil {
			j.inputs = append(j.inputs, c)
		}
	}
	return j
}

func (j *job) update(f func()) {
	j.mu.Lock()
	f()
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

// runState records what a lease's provider says its run does, when that
// changes: followers see a slot fetch its inputs, then run.
func (j *job) runState(leaseID string, epoch uint64, st pb.LeaseState) {
	k := runKey{leaseID, epoch}
	j.mu.Lock()
	same := j.runs[k] == st
	j.mu.Unlock()
	if same {
		return
	}
	j.update(func() {
		if j.runs == nil {
			j.runs = map[runKey]pb.LeaseState{}
		}
		j.runs[k] = st
	})
}

// Submit places a customer-sealed job: the job is kept in the store, its
// module (if given) too so providers can fetch it, and a placement starts. It
// returns the job's CID in text form.
func (r *Requester) Submit(jobEnv, module []byte, specName string) (string, error) {
	sj, err := record.OpenJob(jobEnv)
	if err != nil {
		return "", err
	}
	if module != nil {
		c, err := r.AddModule(module)
		if err != nil {
			return "", err
		}
		if string(c.Bytes()) != string(sj.Job.GetTask().GetModuleCid()) {
			return "", protocol.Errorf(pb.Code_CODE_MODULE_MISMATCH, "module given is %s, the job names another", c)
		}
	}
	sjob, err := scheduler.JobFromPB(string(sj.CID.Bytes()), r.id, sj.Job)
	if err != nil {
		return "", err
	}
	key := sj.CID.String()
	r.jobsMu.Lock()
	if r.closed {
		r.jobsMu.Unlock()
		return "", errors.New("the requester is closing: submit again once the node is up")
	}
	if _, dup := r.jobs[key]; dup {
		r.jobsMu.Unlock()
		return "", protocol.Errorf(protocol.CodeReplayed, "job %s is already placed here: sign it again for a new nonce", key)
	}
	// Submit counts as one of the requester's goroutines until it returns,
	// so that those it starts are counted before Close can wait for them.
	r.wg.Add(1)
	defer r.wg.Done()
	submitted := r.clock.Now()
	if len(sj.Job.GetTask().GetInputs()) > 0 && r.cfg.Data == nil {
		r.jobsMu.Unlock()
		return "", errors.New("this node keeps no data: a job with inputs cannot be placed from it")
	}
	j := newJob(sj.Job, string(sj.CID.Bytes()), jobEnv, specName, submitted)
	r.jobs[key] = j
	r.jobsMu.Unlock()
	if r.store == nil {
		r.start(j, scheduler.NewPlacement(r.cfg.Placement, sjob, randomSeed()))
		return key, nil
	}
	// The job is written while its placement starts, not before it: the
	// placement does not wait for the fsync, Submit does. The write goes
	// first in the job's queue of saves, so a later status always wins.
	stored := make(chan error, 1)
	j.stored = stored // before the writer starts: no lock needed yet
	r.queueSave(j, store.Job{CID: j.cid, Envelope: jobEnv, SpecFile: specName, Submitted: submitted, State: scheduler.JobPlacing})
	r.start(j, scheduler.NewPlacement(r.cfg.Placement, sjob, randomSeed()))
	if err := <-stored; err != nil {
		r.Stop(key)
		return "", fmt.Errorf("store job: %w", err)
	}
	return key, nil
}

func randomSeed() (seed [32]byte) {
	rand.Read(seed[:])
	return seed
}

// AddModule keeps a module in the store, so that providers can fetch it by
// CID, and returns that CID.
func (r *Requester) AddModule(bin []byte) (cid.Cid, error) {
	c := wire.SumCID(bin)
	if r.store == nil {
		return cid.Undef, errors.New("node has no store")
	}
	return c, r.store.PutModule(c, bin)
}

func (r *Requester) job(key string) *job {
	r.jobsMu.Lock()
	defer r.jobsMu.Unlock()
	return r.jobs[key]
}

// Stop cancels a job. It never blocks: a job whose placement has ended
// (finished, or reloaded finished after a restart) has nothing to cancel.
// It reports whether the job is known.
func (r *Requester) Stop(key string) bool {
	j := r.job(key)
	if j == nil {
		return false
	}
	select {
	case j.events <- scheduler.Cancel{}:
	case <-j.ended:
	case <-r.ctx.Done():
	}
	return true
}

// Wait blocks until a job ends or ctx does.
func (r *Requester) Wait(ctx context.Context, key string) (JobView, error) {
	j := r.job(key)
	if j == nil {
		return JobView{}, fmt.Errorf("no job %s here", key)
	}
	select {
	case <-j.done:
	case <-ctx.Done():
		return j.view(key), ctx.Err()
	}
	return j.view(key), nil
}

// Job returns a job's view, by its CID in text form.
func (r *Requester) Job(key string) (JobView, bool) {
	j := r.job(key)
	if j == nil {
		return JobView{}, false
	}
	return j.view(key), true
}

// Jobs lists the jobs this requester knows, in no order.
func (r *Requester) Jobs() []JobView {
	r.jobsMu.Lock()
	defer r.jobsMu.Unlock()
	out := make([]JobView, 0, len(r.jobs))
	for k, j := range r.jobs {
		out = append(out, j.view(k))
	}
	return out
}

// Logs returns what a job's instances wrote so far, and a channel closed at
// the next change (for following).
func (r *Requester) Logs(key string) (stdout, stderr []byte, changed <-chan struct{}, done bool, ok bool) {
	j := r.job(key)
	if j == nil {
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

func short(id string) string { return protocol.ShortPeerID(id) }
