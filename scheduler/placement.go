package scheduler

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

const (
	opIn    = pb.Operator_OPERATOR_IN
	opEqual = pb.Operator_OPERATOR_EQUAL
)

// Config tunes a Placement. The zero value of each field means its default.
type Config struct {
	D                 int           // candidates asked per slot ("power of d choices"); default 2
	OfferTimeout      time.Duration // how long a round waits for lookups, then offers; default 500ms
	LookupTimeout     time.Duration // how much longer a round that has found nobody waits for lookups still running; default DefaultLookupTimeout
	LeaseTimeout      time.Duration // how long to wait for a lease answer; default 2s
	StartTimeout      time.Duration // by when a provider must start a lease (fetch and compile included); default 1m
	HeartbeatInterval time.Duration // asked of providers unless the job asks its own; default DefaultHeartbeatInterval
	MissedHeartbeats  int           // heartbeats missed before a lease is lost; default protocol.MissedHeartbeats (3)
	MaxAttempts       int           // rounds without a fitting offer before a slot fails; default 0: no limit but PlacementTimeout
	PlacementTimeout  time.Duration // how long a job may take to be placed, unless it says; default protocol.DefaultPlacementTimeout
	Backoff           time.Duration // delay before the second round, doubled after, jittered by half either way; default 100ms
	MaxBackoff        time.Duration // default 5s
	MaxReschedules    int           // leases a slot may lose before it fails; default DefaultMaxReschedules
	Shards            int           // shards looked up per value at first, doubled while too few candidates; default 2
	Policy            Policy        // default Balanced
	// Book, if set, is what the requester has learnt of providers, shared by
	// its placements: candidates are drawn in proportion to its weights and
	// each answer updates it. Nil draws candidates uniformly.
	Book *Book
}

// DefaultMaxReschedules is a slot's budget of lost leases. A lease is lost
// by its provider (it died, restarted or went silent), not by the job, so
// the budget is wide: in a churning federation a slot may lose several
// leases in a row and still has to run. It stops a job that every provider
// it lands on loses, one that takes its providers down with it.
const DefaultMaxReschedules = 10

// DefaultLookupTimeout is how long a DHT lookup may run, in the daemon,
// and so how much longer than its OfferTimeout a round that has found no
// candidate yet waits for lookups still running (a walk past the dead
// peers of a churning federation) before it ends and retries.
const DefaultLookupTimeout = 2 * time.Second

// DefaultHeartbeatInterval is the status interval a requester asks of the
// providers of its leases, in the daemon and in the simulator alike.
const DefaultHeartbeatInterval = protocol.DefaultHeartbeat

// WithDefaults returns c with every zero field set to its default: the
// config a Placement actually runs with.
func (c Config) WithDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt(&c.D, 2)
	def(&c.OfferTimeout, 500*time.Millisecond)
	def(&c.LookupTimeout, DefaultLookupTimeout)
	def(&c.LeaseTimeout, 2*time.Second)
	def(&c.StartTimeout, time.Minute)
	def(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	defInt(&c.MissedHeartbeats, protocol.MissedHeartbeats)
	def(&c.PlacementTimeout, protocol.DefaultPlacementTimeout)
	def(&c.Backoff, 100*time.Millisecond)
	def(&c.MaxBackoff, 5*time.Second)
	defInt(&c.MaxReschedules, DefaultMaxReschedules)
	defInt(&c.Shards, 2)
	if c.Policy.Name == "" {
		c.Policy = Balanced
	}
	return c
}

type timerKind uint8

const (
	timerRound timerKind = iota + 1 // lookup or offer deadline of the round
	timerRetry                      // back-off before the next round
	timerLease                      // lease answer deadline of a slot
	timerBeat                       // heartbeat deadline of a slot
)

type timer struct {
	id   uint64
	kind timerKind
	slot int
}

type slot struct {
	leaseID   string
	epoch     uint64
	state     SlotState
	offer     Offer  // the offer leased; Provider is the slot's provider
	scores    Scores // how the offer ranked when it was chosen
	attempts  int
	lost      int
	exitCode  int32
	outputCID string
	detail    string // why the run failed, as its provider said
}

type probe struct {
	provider, nonce string
	answered        bool
}

type round struct {
	probing    bool
	facets     []facetChoice // what it may look up, in order (lookupFacets)
	widened    bool          // it looks up a wider facet: no more doubling
	tried      []string      // the facets looked up, as facet=values
	facet      protocol.Facet
	values     []string
	visited    []protocol.FacetKey
	lookups    int       // lookups in flight
	rested     bool      // it found providers that rest (retry-after), and left them out
	waitedOn   bool      // past its OfferTimeout with nobody found, it waits on for its lookups
	probedAt   time.Time // when it asked for offers: its deadline is OfferTimeout after
	hedged     bool      // its offers in hand fill every pending slot: it waits for the others only a grace (hedge)
	graceEnds  time.Time // when that grace ends, if before the deadline: its timer fires then
	candidates []string  // sorted until probing shuffles them
	probes     []probe
	offers     []Offer
	timer      uint64
}

// Placement is the requester's state machine for one job: discover, ask for
// offers, choose, lease, watch, and reschedule what is lost (SPEC 6). It is
// deterministic: the same seed and the same events at the same times give the
// same actions. It is not safe for concurrent use.
type Placement struct {
	cfg       Config
	job       Job
	rng       *rand.Rand
	state     JobState
	slots     []slot
	round     *round
	retrying  bool
	started   time.Time // when placing began (Start): the placement timeout counts from it
	resting   []resting // providers that asked to be left alone until a time (retry-after), sorted
	allRested bool      // the round ending found no one but resting providers
	timers    []timer
	timerSeq  uint64
	excluded  []string // providers whose refusal holds for this job whatever their load, sorted
	penalised []string // providers that lost a lease of this job, sorted: ranked down by LostLeasePenalty
	outcomes  []Outcome
	code      Reason // Status.Code
	reason    string // Status.Reason
	out       []Action
	ranking   ranking
}

// NewPlacement returns the placement of a job. The seed drives every random
// choice (shards, candidates, nonces, lease IDs, ties); the node draws it from
// crypto/rand, which makes the ChaCha8 stream unpredictable, the simulator from
// its own seed.
func NewPlacement(cfg Config, job Job, seed [32]byte) *Placement {
	p := &Placement{cfg: cfg.WithDefaults(), job: job, rng: rand.New(rand.NewChaCha8(seed))}
	p.slots = make([]slot, job.Slots())
	for i := range p.slots {
		p.slots[i] = slot{leaseID: p.randomID(), state: SlotPending}
	}
	return p
}

// Resume restores the slots of a placement a requester was driving before it
// restarted, from their last reported status: leases, epochs, providers,
// prices, the labels of the offers leased (spread and replicas count their
// operators), and results. Call it before Start. A slot that was leasing or
// running is watched again: its heartbeat deadline is armed at Start, and a
// provider that does not answer loses it to a new epoch as usual; a pending
// slot is placed anew. It returns false, changing nothing, when the number of
// slots differs from the job's.
func (p *Placement) Resume(slots []SlotStatus) bool {
	if len(slots) != len(p.slots) || p.state != 0 {
		return false
	}
	for i, st := range slots {
		s := &p.slots[i]
		if st.LeaseID != "" {
			s.leaseID = st.LeaseID
		}
		s.epoch, s.exitCode, s.outputCID = st.Epoch, st.ExitCode, st.OutputCID
		s.offer = Offer{Provider: st.Provider, Total: st.Price, Labels: st.Labels, Site: st.Site}
		switch st.State {
		case SlotLeasing, SlotRunning:
			s.state = SlotRunning // a lease answer lost in the restart reads as running
		case SlotSucceeded, SlotFailed:
			s.state = st.State
		default:
			s.state = SlotPending
		}
	}
	return true
}

// resumeBeats arms the heartbeat deadline of every running slot. A
// resumed requester must find and dial its providers again before their
// statuses can come: the first deadline is never sooner than the wait for
// a lease answer, so that a slow restart is not taken for lost leases.
func (p *Placement) resumeBeats(now time.Time) {
	for i := range p.slots {
		if p.slots[i].state == SlotRunning {
			p.dropTimers(timerBeat, i)
			p.setTimer(timerBeat, i, now.Add(max(p.Heartbeat()*time.Duration(p.cfg.MissedHeartbeats), LeaseAnswerWait)))
		}
	}
}

func (p *Placement) allFinal() bool {
	for i := range p.slots {
		if !p.slots[i].state.Final() {
			return false
		}
	}
	return true
}

// Job returns the job being placed.
func (p *Placement) Job() *Job { return &p.job }

// State returns the job's state.
func (p *Placement) State() JobState { return p.state }

// Step applies one event at now and returns the actions it calls for. The
// returned slice is valid until the next call to Step.
func (p *Placement) Step(now time.Time, ev Event) []Action {
	p.out = p.out[:0]
	if p.state.Final() {
		// A finished job still frees what providers hold for it.
		switch ev := ev.(type) {
		case OfferReceived:
			p.emit(DeclineOffer{ev.Offer.Provider, ev.Offer.Nonce})
		case LeaseAccepted:
			p.emit(CancelLease{ev.Provider, ev.LeaseID, ev.Epoch})
		}
		return p.out
	}
	switch ev := ev.(type) {
	case Start:
		if p.state == 0 {
			p.started = now
			p.state = JobPlacing
			p.resumeBeats(now)
			if p.pending() == 0 && p.countState(SlotLeasing) == 0 {
				p.run()
			}
			p.startRound(now)
			p.report("placing")
			if p.allFinal() {
				p.finishResults()
			}
		}
	case CandidatesFound:
		p.onCandidates(now, ev)
	case OfferReceived:
		p.onOffer(now, ev.Offer)
	case OfferRefused:
		p.onRefused(now, ev)
	case LeaseAccepted:
		p.onLeaseAccepted(now, ev)
	case LeaseRejected:
		p.onLeaseRejected(now, ev)
	case Heartbeat:
		p.onHeartbeat(now, ev)
	case ResultReceived:
		p.onResult(now, ev)
	case TimerFired:
		p.onTimer(now, ev.ID)
	case Cancel:
		p.finish(JobCancelled, ReasonCancelled, "cancelled by the customer")
	}
	return p.out
}

func (p *Placement) emit(a Action) { p.out = append(p.out, a) }

func (p *Placement) randomID() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := p.rng.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return string(b[:])
}

func (p *Placement) setTimer(kind timerKind, slot int, at time.Time) uint64 {
	p.timerSeq++
	p.timers = append(p.timers, timer{p.timerSeq, kind, slot})
	p.emit(SetTimer{ID: p.timerSeq, At: at, Wait: kind == timerRetry && p.waitingForCapacity()})
	return p.timerSeq
}

// dropTimers forgets the live timers of a kind and slot.
func (p *Placement) dropTimers(kind timerKind, slot int) {
	p.timers = slices.DeleteFunc(p.timers, func(t timer) bool { return t.kind == kind && t.slot == slot })
}

// ---- rounds: lookup, probe, decide ----

func (p *Placement) pending() int {
	n := 0
	for i := range p.slots {
		if p.slots[i].state == SlotPending {
			n++
		}
	}
	return n
}

func (p *Placement) want() int {
	attempts := 0
	for i := range p.slots {
		if p.slots[i].state == SlotPending {
			attempts = max(attempts, p.slots[i].attempts)
		}
	}
	return p.cfg.D << min(attempts, maxWiden) * p.pending()
}

// maxWiden bounds how far a placement widens its sample: each round that
// left a slot unplaced doubles the candidates the next one asks, up to
// 2^maxWiden times d per slot. In a loaded federation, d choices that were
// both full are likely full again; more of them find the room there is
// (Sparrow's batch sampling, grown only when needed).
const maxWiden = 3

func (p *Placement) startRound(now time.Time) {
	if p.round != nil || p.retrying || p.pending() == 0 {
		return
	}
	r := &round{facets: lookupFacets(&p.job)}
	p.round = r
	if !p.widen(r) {
		p.endRound(now, fmt.Sprintf("no valid facet key for %s in %v", r.facet, r.values))
		return
	}
	r.timer = p.setTimer(timerRound, -1, now.Add(p.cfg.OfferTimeout))
}

// lookup asks for n more shards of the round's facet, spread over its values,
// and reports whether there was any shard left to ask.
func (p *Placement) lookup(r *round, n int) bool {
	var keys []protocol.FacetKey
	for i := 0; len(keys) < n && i < n+len(r.values); i++ {
		if k, ok := p.newShard(r, r.values[len(r.visited)%len(r.values)]); ok {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return false
	}
	r.lookups = len(keys)
	need := max(p.want()-len(r.candidates), 1)
	share := (need + len(keys) - 1) / len(keys)
	p.emit(Lookup{Keys: keys, Want: max(need, MinLookup), Need: share})
	return true
}

// MinLookup is the fewest providers a Lookup asks for under each key. A DHT
// lookup costs the same hops for 16 records as for 2, and drivers cache
// answers for a few seconds: a larger sample lets the jobs that share a cached
// answer probe different providers instead of crowding the same two (the
// simulator showed a requester placing thousands of jobs a second refused
// for CPU at 1% utilisation when it asked for d).
const MinLookup = 16

// newShard picks a shard of value not yet visited in this round.
func (p *Placement) newShard(r *round, value string) (protocol.FacetKey, bool) {
	n := r.facet.Shards()
	start := uint32(p.rng.Uint64N(uint64(n)))
	for i := range n {
		k, err := protocol.NewFacetKey(r.facet, value, (start+i)%n)
		if err != nil {
			return k, false
		}
		if !slices.Contains(r.visited, k) {
			r.visited = append(r.visited, k)
			return k, true
		}
	}
	return protocol.FacetKey{}, false
}

func (p *Placement) onCandidates(now time.Time, ev CandidatesFound) {
	r := p.round
	if r == nil || r.probing || !slices.Contains(r.visited, ev.Key) {
		return
	}
	for _, c := range ev.Peers {
		// Kept sorted, so a duplicate costs a binary search, not a scan.
		i, dup := slices.BinarySearch(r.candidates, c)
		if c == "" || dup || p.isExcluded(c) {
			continue
		}
		if p.isResting(c, now) {
			r.rested = true
			continue
		}
		r.candidates = slices.Insert(r.candidates, i, c)
	}
	if ev.Done {
		r.lookups--
	}
	// Enough candidates are asked once every lookup of the round has
	// answered (or at its offer wait), so that the d choices of a slot are
	// drawn from all the shards looked up, not from the one that answered
	// first: a provider in a small shard would be asked more.
	if r.lookups > 0 {
		if r.waitedOn && len(r.candidates) > 0 {
			p.probe(now)
		}
		return
	}
	if len(r.candidates) >= p.want() || r.waitedOn && len(r.candidates) > 0 {
		p.probe(now)
		return
	}
	// Too few: double the shards looked at, until none is left; then ask
	// whoever was found. A small federation costs a few more lookups, a large
	// one finds enough in the first shards. None at all: the first shards
	// of a wider facet, once (lookupFacets).
	if r.widened || !p.lookup(r, len(r.visited)) && (len(r.candidates) > 0 || r.rested || !p.widen(r)) {
		p.probe(now)
	}
}

// widen moves the round to the next facet it may look up, and looks up its
// first shards; it reports whether there was one. The first call starts
// the round; a second widens it.
func (p *Placement) widen(r *round) bool {
	r.widened = r.facet != ""
	for len(r.facets) > 0 {
		r.facet, r.values = r.facets[0].facet, r.facets[0].values
		r.facets = r.facets[1:]
		r.tried = append(r.tried, fmt.Sprintf("%s=%s", r.facet, strings.Join(r.values, ",")))
		if p.lookup(r, p.cfg.Shards*len(r.values)) {
			return true
		}
	}
	return false
}

// draw moves n candidates, drawn at random without replacement, to the
// front of cs: in proportion to their weights in the book, so that each
// provider is asked in proportion to what it sells (SPEC 4.3), or
// uniformly, by a partial Fisher-Yates shuffle, when they all weigh the
// same.
func (p *Placement) draw(cs []string, n int, f protocol.Facet) {
	var weights []uint64
	if p.cfg.Book != nil {
		weights = make([]uint64, len(cs))
		for i, c := range cs {
			weights[i] = p.cfg.Book.Weight(c, f)
		}
		if !slices.ContainsFunc(weights, func(w uint64) bool { return w != weights[0] }) {
			weights = nil
		}
	}
	if weights == nil {
		for i := range n {
			k := i + p.rng.IntN(len(cs)-i)
			cs[i], cs[k] = cs[k], cs[i]
		}
		return
	}
	var total uint64
	for _, w := range weights {
		total += w
	}
	for i := range n {
		x := p.rng.Uint64N(total)
		k := i
		for ; x >= weights[k]; k++ {
			x -= weights[k]
		}
		total -= weights[k]
		cs[i], cs[k] = cs[k], cs[i]
		weights[i], weights[k] = weights[k], weights[i]
	}
}

// resting is a provider that asked, with a retry-after hint, not to be asked
// again before a time.
type resting struct {
	provider string
	until    time.Time
}

func (p *Placement) rest(provider string, until time.Time) {
	i, found := slices.BinarySearchFunc(p.resting, provider, func(r resting, s string) int { return strings.Compare(r.provider, s) })
	if found {
		p.resting[i].until = until
		return
	}
	p.resting = slices.Insert(p.resting, i, resting{provider, until})
}

func (p *Placement) isResting(provider string, now time.Time) bool {
	i, found := slices.BinarySearchFunc(p.resting, provider, func(r resting, s string) int { return strings.Compare(r.provider, s) })
	return found && now.Before(p.resting[i].until)
}

// soonestRest is how long until the first resting provider may be asked
// again, forgetting the rests that are over; 0 if none rests.
func (p *Placement) soonestRest(now time.Time) time.Duration {
	p.resting = slices.DeleteFunc(p.resting, func(r resting) bool { return !now.Before(r.until) })
	var d time.Duration
	for _, r := range p.resting {
		d = cmp.Or(min(d, r.until.Sub(now)), r.until.Sub(now))
	}
	return d
}

func (p *Placement) isExcluded(provider string) bool {
	_, ok := slices.BinarySearch(p.excluded, provider)
	return ok
}

func (p *Placement) probe(now time.Time) {
	r := p.round
	if len(r.candidates) == 0 && r.lookups == 0 && r.rested {
		// Everyone found asked to be left alone a while: the job waits
		// until the first may be asked again, or for others the next
		// round may find.
		p.allRested = true
		p.endRound(now, "")
		return
	}
	if len(r.candidates) == 0 {
		if r.lookups > 0 && !r.waitedOn {
			// Nobody found yet, lookups still running: under churn a DHT
			// walk dials dead peers first. Ending the round would throw
			// them away and start others; wait on for them instead, and
			// probe the first candidates they bring.
			r.waitedOn = true
			p.dropTimers(timerRound, -1)
			r.timer = p.setTimer(timerRound, -1, now.Add(p.cfg.LookupTimeout))
			return
		}
		why := "no provider found"
		if r.lookups > 0 {
			why = fmt.Sprintf("discovery timed out after %s", p.cfg.OfferTimeout+p.cfg.LookupTimeout)
		}
		p.endRound(now, fmt.Sprintf("%s under %s (%d shards looked up)", why, strings.Join(r.tried, ", then "), len(r.visited)))
		return
	}
	r.probing, r.probedAt = true, now
	n := min(p.want(), len(r.candidates))
	p.draw(r.candidates, n, r.facet)
	req := Request{
		Requester:   p.job.Requester,
		JobCID:      p.job.CID,
		Executor:    p.job.Executor,
		Resources:   p.job.Resources,
		Timeout:     p.job.Timeout,
		Constraints: p.job.Constraints,
		MaxPrice:    p.job.MaxPrice,
		ExpiresAt:   now.Add(p.cfg.OfferTimeout),
	}
	for _, c := range r.candidates[:n] {
		req.Nonce = p.randomID()
		r.probes = append(r.probes, probe{provider: c, nonce: req.Nonce})
		p.emit(RequestOffer{Provider: c, Request: req})
	}
	p.dropTimers(timerRound, -1)
	r.timer = p.setTimer(timerRound, -1, req.ExpiresAt)
}

func (p *Placement) findProbe(provider, nonce string) *probe {
	if p.round == nil {
		return nil
	}
	for i := range p.round.probes {
		pr := &p.round.probes[i]
		if pr.nonce == nonce && pr.provider == provider {
			return pr
		}
	}
	return nil
}

func (p *Placement) onOffer(now time.Time, o Offer) {
	pr := p.findProbe(o.Provider, o.RequestNonce)
	if pr == nil || pr.answered {
		p.emit(DeclineOffer{o.Provider, o.Nonce}) // late or unasked: free it
		return
	}
	pr.answered = true
	if p.cfg.Book != nil {
		p.cfg.Book.offered(o.Provider, o.Capacity)
	}
	if why, detail := p.infeasible(now, &o); why != ReasonNone {
		p.outcome(o.Provider, why, detail, nil)
		p.emit(DeclineOffer{o.Provider, o.Nonce})
		if why.permanent() {
			p.exclude(o.Provider)
		}
	} else {
		p.round.offers = append(p.round.offers, o)
	}
	p.maybeDecide(now)
}

// infeasible checks an offer on the requester's side: a provider's word that it
// fits is checked, not trusted.
func (p *Placement) infeasible(now time.Time, o *Offer) (why Reason, detail string) {
	j := &p.job
	switch {
	case o.JobCID != j.CID || o.Requester != j.Requester:
		return ReasonOtherJob, ""
	case !now.Before(o.ExpiresAt):
		return ReasonExpired, "offer expired on arrival"
	case !j.Resources.Fits(o.Resources):
		return ReasonTooSmall, "offer smaller than asked"
	case j.MaxPrice.Currency != "" && o.Total.Currency != j.MaxPrice.Currency:
		return ReasonCurrencyMismatch, fmt.Sprintf("%s offered, %s asked", o.Total.Currency, j.MaxPrice.Currency)
	case j.MaxPrice.Currency != "" && o.Total.Nanos > j.MaxPrice.Nanos:
		return ReasonPriceAboveCeiling, fmt.Sprintf("%d > %d nano-%s", o.Total.Nanos, j.MaxPrice.Nanos, j.MaxPrice.Currency)
	}
	for _, c := range j.Constraints {
		if !c.Matches(o.Labels) {
			return ReasonConstraintMismatch, "offer labels fail " + c.Key
		}
	}
	return ReasonNone, ""
}

func (p *Placement) onRefused(now time.Time, ev OfferRefused) {
	pr := p.findProbe(ev.Provider, ev.RequestNonce)
	if pr == nil || pr.answered {
		return
	}
	pr.answered = true
	if p.cfg.Book != nil {
		p.cfg.Book.refused(ev.Provider, ev.Code)
	}
	if ev.RetryAfter > 0 {
		// A provider's hint binds asking it again, not asking the others:
		// it rests until then, and the next round asks others; one that
		// finds no one else waits for the soonest rest to end (endRound).
		p.rest(ev.Provider, now.Add(min(ev.RetryAfter, p.cfg.MaxBackoff)))
	}
	why := refusal(ev.Code)
	p.outcome(ev.Provider, why, ev.Reason, nil)
	if why.permanent() {
		p.exclude(ev.Provider)
	}
	p.maybeDecide(now)
}

// maybeDecide decides once every candidate asked has answered, and
// otherwise lets hedge say how much longer the round waits.
func (p *Placement) maybeDecide(now time.Time) {
	if slices.ContainsFunc(p.round.probes, func(pr probe) bool { return !pr.answered }) {
		p.hedge(now)
		return
	}
	p.decide(now)
}

// hedge sets how long a probing round waits for the candidates yet to
// answer. Once the offers in hand fill every pending slot (fillable), it
// waits for the others only a grace, not to the deadline: as long again as
// the round has taken since it asked, at least a quarter of the
// OfferTimeout, never past the deadline. Without it, one ask or answer
// lost, or one slow provider, holds the job for the whole OfferTimeout.
// It is a tail-tolerant rule ("good enough" responses, Dean and Barroso,
// "The Tail at Scale", CACM 56(2), 2013): the grace grows with the time the
// first answers took, so that a round whose candidates are all far does
// not cut off the farther ones, and its floor keeps a near provider's
// instant answer from cutting off the others. An answer within the grace
// still counts. Should the offers no longer fill the pending slots
// (another slot lost its lease meanwhile and is pending again), the round
// waits to its deadline again (SPEC 6.1).
func (p *Placement) hedge(now time.Time) {
	r := p.round
	fill := p.fillable(r.offers)
	if fill == r.hedged {
		return
	}
	r.hedged = fill
	deadline := r.probedAt.Add(p.cfg.OfferTimeout)
	at := deadline
	switch {
	case fill:
		at = now.Add(max(now.Sub(r.probedAt), p.cfg.OfferTimeout/4))
		if !at.Before(deadline) {
			return // the deadline comes first: its timer stands
		}
		r.graceEnds = at
	case r.graceEnds.IsZero():
		return // the timer still stands at the deadline
	default:
		r.graceEnds = time.Time{}
	}
	p.dropTimers(timerRound, -1)
	r.timer = p.setTimer(timerRound, -1, at)
}

// fillable says whether offers could fill every pending slot: one offer
// each, and the replicas of an instance with distinct operators, none of
// them one that runs a replica of that instance already (replicaOK). A
// count alone would take two offers of one operator for two replicas, and
// cut off the one offer that could take the second. decide, which chooses
// by score, may still fill fewer: this says only that waiting for more
// offers is not needed to fill them.
func (p *Placement) fillable(offers []Offer) bool {
	pending := p.pending()
	if len(offers) < pending {
		return false
	}
	rep := p.job.Replicas
	if rep <= 1 {
		return true
	}
	// Instances with pending replicas take operators, each at most once
	// and none it runs a replica on already; an operator gives as many as
	// it has offers. A flow, found by augmenting paths: an instance that
	// finds every operator it may take given out takes one from another
	// instance that can take another.
	var ops []string
	var supply []int
	for i := range offers {
		op := attribute(&offers[i], LabelOperator)
		if k := slices.Index(ops, op); k >= 0 {
			supply[k]++
		} else {
			ops, supply = append(ops, op), append(supply, 1)
		}
	}
	type instance struct {
		need  int
		taken []bool // by operator: it runs a replica there already
	}
	var insts []instance
	for first := 0; first < len(p.slots); first += rep {
		in := instance{taken: make([]bool, len(ops))}
		for k := first; k < first+rep; k++ {
			s := &p.slots[k]
			switch s.state {
			case SlotPending:
				in.need++
			case SlotCancelled:
			default:
				if o := slices.Index(ops, attribute(&s.offer, LabelOperator)); o >= 0 {
					in.taken[o] = true
				}
			}
		}
		if in.need > 0 {
			insts = append(insts, in)
		}
	}
	takes := make([][]bool, len(insts)) // takes[i][o]: instance i takes operator o here
	for i := range insts {
		takes[i] = make([]bool, len(ops))
	}
	used := make([]int, len(ops))
	var augment func(i int, seen []bool) bool
	augment = func(i int, seen []bool) bool {
		for o := range ops {
			if seen[o] || takes[i][o] || insts[i].taken[o] {
				continue
			}
			seen[o] = true
			if used[o] < supply[o] {
				takes[i][o] = true
				used[o]++
				return true
			}
			for k := range insts {
				if takes[k][o] && augment(k, seen) {
					takes[k][o], takes[i][o] = false, true
					return true
				}
			}
		}
		return false
	}
	for i := range insts {
		for range insts[i].need {
			if !augment(i, make([]bool, len(ops))) {
				return false
			}
		}
	}
	return true
}

// decide ranks the round's offers and leases the best to the pending slots,
// declining the rest so their reservations free at once.
func (p *Placement) decide(now time.Time) {
	r := p.round
	for _, pr := range r.probes {
		if !pr.answered {
			detail := "no offer before the deadline"
			if !r.graceEnds.IsZero() {
				detail = "no offer while the others' were in hand"
			}
			p.outcome(pr.provider, ReasonNoAnswer, detail, nil)
		}
	}
	rk := &p.ranking
	rk.rank(r.offers, &p.job, p.cfg.Policy, p.penalised, p.rng)
	// What became of each ranked offer: weighed for a slot, taken.
	const weighed, taken = 1, 2
	fate := make([]uint8, len(rk.order))
	var used []valueCount
	for i := range p.slots {
		if p.slots[i].state.Final() || p.slots[i].state == SlotPending {
			continue
		}
		used = countValue(used, &p.slots[i].offer, &p.job)
	}
	placed := false
	for i := range p.slots {
		s := &p.slots[i]
		if s.state != SlotPending {
			continue
		}
		best, bestScore := -1, int64(0)
		for k, x := range rk.order {
			o := &r.offers[x.at]
			if fate[k] == taken || !p.replicaOK(i, o) {
				continue
			}
			spread := spreadScore(o, &p.job, used)
			rk.setSpread(x.at, spread)
			fate[k] = weighed
			if score := x.score + spread; best < 0 || score > bestScore {
				best, bestScore = k, score
			}
		}
		if best < 0 {
			continue
		}
		fate[best] = taken
		at := rk.order[best].at
		o := &r.offers[at]
		used = countValue(used, o, &p.job)
		s.offer = *o
		s.scores = rk.of(at)
		s.state = SlotLeasing
		s.epoch++
		placed = true
		p.outcome(o.Provider, ReasonLeased, "", s.scores)
		p.emit(SendLease{Provider: o.Provider, Lease: Lease{
			ID: s.leaseID, Provider: o.Provider, Requester: p.job.Requester, OfferNonce: o.Nonce,
			JobCID: p.job.CID, Epoch: s.epoch, ExpiresAt: now.Add(p.cfg.StartTimeout),
			Resources: p.job.Resources, Timeout: p.job.Timeout, Instance: uint32(i / p.job.Replicas),
		}})
		p.setTimer(timerLease, i, now.Add(p.cfg.LeaseTimeout))
	}
	for k, x := range rk.order {
		if fate[k] == taken {
			continue
		}
		o := &r.offers[x.at]
		if fate[k] == 0 { // barred from every slot: weighed as for one more
			rk.setSpread(x.at, spreadScore(o, &p.job, used))
		}
		p.outcome(o.Provider, p.whyNotChosen(o), "", rk.of(x.at))
		p.emit(DeclineOffer{o.Provider, o.Nonce})
	}
	if len(rk.order) > 0 {
		rk.keep() // the outcomes and slots hold these scores now
	}
	msg := ""
	if !placed {
		msg = p.explain()
	}
	p.endRound(now, msg)
}

// whyNotChosen tells a provider's untaken offer apart: lost to better offers,
// or barred from every slot still pending because its operator already runs a
// replica of that instance.
func (p *Placement) whyNotChosen(o *Offer) Reason {
	for i := range p.slots {
		if p.slots[i].state == SlotPending && p.replicaOK(i, o) {
			return ReasonNotChosen
		}
	}
	if p.pending() > 0 && p.job.Replicas > 1 {
		return ReasonReplicaOperator
	}
	return ReasonNotChosen
}

// replicaOK says whether an offer may take slot i: replicas of one instance run
// on distinct operators.
func (p *Placement) replicaOK(i int, o *Offer) bool {
	rep := p.job.Replicas
	op := attribute(o, LabelOperator)
	first := i / rep * rep
	for k := first; k < first+rep; k++ {
		s := &p.slots[k]
		if k == i || s.state == SlotPending || s.state == SlotCancelled {
			continue
		}
		if s.offer.Provider == o.Provider || rep > 1 && attribute(&s.offer, LabelOperator) == op {
			return false
		}
	}
	return true
}

func countValue(used []valueCount, o *Offer, j *Job) []valueCount {
	for _, sp := range j.Spread {
		v := attribute(o, sp.Attribute)
		found := false
		for k := range used {
			if used[k].attr == sp.Attribute && used[k].value == v {
				used[k].n++
				found = true
			}
		}
		if !found {
			used = append(used, valueCount{sp.Attribute, v, 1})
		}
	}
	return used
}

// endRound closes the round; slots still pending count an attempt and retry
// after a back-off, or fail the job when out of attempts.
func (p *Placement) endRound(now time.Time, why string) {
	p.round = nil
	p.dropTimers(timerRound, -1)
	if p.pending() == 0 {
		return
	}
	attempts := 0
	for i := range p.slots {
		s := &p.slots[i]
		if s.state == SlotPending {
			s.attempts++
			attempts = max(attempts, s.attempts)
		}
	}
	if why == "" {
		why = p.explain()
	}
	if p.cfg.MaxAttempts > 0 && attempts >= p.cfg.MaxAttempts {
		p.finish(JobFailed, ReasonNotPlaced, fmt.Sprintf("not placed after %d attempts: %s", attempts, why))
		return
	}
	if p.started.IsZero() {
		p.started = now // stepped without a Start
	}
	deadline := p.started.Add(p.PlacementTimeout())
	if !now.Before(deadline) {
		p.finish(JobFailed, ReasonNotPlaced, fmt.Sprintf("not placed within %s (%d attempts): %s", p.PlacementTimeout(), attempts, why))
		return
	}
	// Exponential, jittered by half either way so that the requesters of a
	// full federation do not come back together, never sooner than a
	// provider asked, and never past the deadline (the last round runs at
	// it).
	backoff := min(p.cfg.Backoff<<min(attempts-1, 20), p.cfg.MaxBackoff)
	backoff = backoff/2 + time.Duration(p.rng.Int64N(int64(backoff)+1))
	if rest := p.soonestRest(now); p.allRested {
		backoff = max(backoff, rest)
	}
	p.allRested = false
	backoff = min(backoff, deadline.Sub(now))
	p.retrying = true
	p.setTimer(timerRetry, -1, now.Add(backoff))
	p.code, p.reason = ReasonNotPlaced, why
	if p.waitingForCapacity() {
		p.reason = "waiting for capacity: " + why
		p.report(fmt.Sprintf("waiting for capacity (attempt %d, %d slot(s) short: %s); next attempt in %s, until %s", attempts, p.pending(), why,
			backoff.Round(time.Millisecond), deadline.Sub(p.started)))
		return
	}
	p.report(fmt.Sprintf("attempt %d placed %d slot(s) short: %s; retrying in %s", attempts, p.pending(), why, backoff.Round(time.Millisecond)))
}

// PlacementTimeout is how long the job may take to be placed: its own
// timeout, or Config.PlacementTimeout.
func (p *Placement) PlacementTimeout() time.Duration {
	if p.job.PlacementTimeout > 0 {
		return p.job.PlacementTimeout
	}
	return p.cfg.PlacementTimeout
}

// waitingForCapacity says whether the job waits for fitting providers to
// have room: the last answer of one at least refused it for lack of room
// (or rate limited it).
func (p *Placement) waitingForCapacity() bool { return WaitsForCapacity(p.outcomes) }

// WaitsForCapacity says whether a round's outcomes make a job wait for
// capacity: a fitting provider refused it for lack of room, or rate limited
// it. A placing job's status says so when its Code is ReasonNotPlaced and
// its Asked pass this test.
func WaitsForCapacity(asked []Outcome) bool {
	return slices.ContainsFunc(asked, func(o Outcome) bool {
		switch o.Reason {
		case Reason(pb.Code_CODE_INSUFFICIENT_CPU), Reason(pb.Code_CODE_INSUFFICIENT_MEMORY), Reason(pb.Code_CODE_INSUFFICIENT_SCRATCH),
			Reason(pb.Code_CODE_RATE_LIMITED), ReasonTooSmall:
			return true
		}
		return false
	})
}

// ---- leases ----

func (p *Placement) findSlot(leaseID string) int {
	for i := range p.slots {
		if p.slots[i].leaseID == leaseID {
			return i
		}
	}
	return -1
}

func (p *Placement) onLeaseAccepted(now time.Time, ev LeaseAccepted) {
	i := p.findSlot(ev.LeaseID)
	if i < 0 {
		return
	}
	s := &p.slots[i]
	if s.epoch != ev.Epoch || s.offer.Provider != ev.Provider || s.state != SlotLeasing {
		if ev.Epoch < s.epoch || s.offer.Provider != ev.Provider {
			p.emit(CancelLease{ev.Provider, ev.LeaseID, ev.Epoch}) // fenced out
		}
		return
	}
	s.state = SlotRunning
	p.dropTimers(timerLease, i)
	p.armBeat(now, i)
	if p.state == JobPlacing && p.pending() == 0 && p.countState(SlotLeasing) == 0 {
		p.run()
	}
	p.report("lease accepted by " + short(ev.Provider))
}

// run marks the job running: every slot is placed, and the reason it was not
// placed yet, if a round had failed, no longer holds.
func (p *Placement) run() {
	p.state = JobRunning
	p.code, p.reason = ReasonNone, ""
}

func (p *Placement) countState(st SlotState) int {
	n := 0
	for i := range p.slots {
		if p.slots[i].state == st {
			n++
		}
	}
	return n
}

// Heartbeat is the Status interval this placement asks of its providers:
// the job's, or Config.HeartbeatInterval.
func (p *Placement) Heartbeat() time.Duration {
	if p.job.Heartbeat > 0 {
		return p.job.Heartbeat
	}
	return p.cfg.HeartbeatInterval
}

func (p *Placement) armBeat(now time.Time, i int) {
	p.dropTimers(timerBeat, i)
	p.setTimer(timerBeat, i, now.Add(p.Heartbeat()*time.Duration(p.cfg.MissedHeartbeats)))
}

func (p *Placement) onLeaseRejected(now time.Time, ev LeaseRejected) {
	i := p.findSlot(ev.LeaseID)
	if i < 0 {
		return
	}
	s := &p.slots[i]
	if s.epoch != ev.Epoch || s.offer.Provider != ev.Provider || s.state != SlotLeasing {
		return
	}
	p.dropTimers(timerLease, i)
	p.outcome(ev.Provider, refusal(ev.Code), "lease refused: "+ev.Reason, s.scores)
	p.requeue(now, i, false)
}

// requeue puts slot i back to pending, fencing out its current provider when
// lost (the lease may be live there: a new epoch makes its results stale). It
// reports whether the slot is placed again: false when that loss was one too
// many and failed the job.
func (p *Placement) requeue(now time.Time, i int, lost bool) bool {
	s := &p.slots[i]
	if lost {
		p.emit(CancelLease{s.offer.Provider, s.leaseID, s.epoch})
		p.penalised = insertSorted(p.penalised, s.offer.Provider)
		s.lost++
		if s.lost > p.cfg.MaxReschedules {
			p.finish(JobFailed, ReasonLeasesLost, fmt.Sprintf("slot %d lost %d leases, the last on %s", i, s.lost, short(s.offer.Provider)))
			return false
		}
	}
	s.state = SlotPending
	if p.state == JobRunning {
		p.state = JobPlacing
	}
	p.startRound(now)
	if r := p.round; r != nil && r.probing {
		p.hedge(now) // a round under way: its offers may no longer fill the slots pending
	}
	return true
}

func (p *Placement) exclude(provider string) { p.excluded = insertSorted(p.excluded, provider) }

// insertSorted adds s to a sorted set.
func insertSorted(set []string, s string) []string {
	if i, ok := slices.BinarySearch(set, s); !ok {
		return slices.Insert(set, i, s)
	}
	return set
}

func (p *Placement) onHeartbeat(now time.Time, ev Heartbeat) {
	i := p.findSlot(ev.LeaseID)
	if i < 0 {
		return
	}
	s := &p.slots[i]
	if s.epoch != ev.Epoch || s.offer.Provider != ev.Provider {
		p.emit(CancelLease{ev.Provider, ev.LeaseID, ev.Epoch}) // a fenced-out lease still runs
		return
	}
	if s.state == SlotRunning {
		p.armBeat(now, i)
	}
}

func (p *Placement) onResult(now time.Time, ev ResultReceived) {
	i := p.findSlot(ev.LeaseID)
	if i < 0 {
		return
	}
	s := &p.slots[i]
	if s.epoch != ev.Epoch || s.offer.Provider != ev.Provider {
		p.report(fmt.Sprintf("refused result of lease epoch %d from %s: %v", ev.Epoch, short(ev.Provider),
			protocol.CheckEpoch(s.epoch, ev.Epoch)))
		return
	}
	if s.state != SlotRunning && s.state != SlotLeasing {
		return
	}
	p.dropTimers(timerBeat, i)
	p.dropTimers(timerLease, i)
	if why := providerFault(ev); why != "" {
		// Not the job's failure: the lease is lost, as if its heartbeats
		// had stopped, and the slot is placed again under a new epoch.
		p.outcome(s.offer.Provider, ReasonLost, why, s.scores)
		if p.requeue(now, i, true) {
			p.report(fmt.Sprintf("lease on %s lost (%s); rescheduling under epoch %d", short(s.offer.Provider), why, s.epoch+1))
		}
		return
	}
	s.exitCode, s.outputCID, s.detail = ev.ExitCode, ev.OutputCID, ev.Detail
	s.state = SlotFailed
	if ev.State == pb.LeaseState_LEASE_STATE_SUCCEEDED {
		s.state = SlotSucceeded
	}
	for k := range p.slots {
		if !p.slots[k].state.Final() {
			p.report("result from " + short(ev.Provider))
			return
		}
	}
	p.finishResults()
}

// providerFault says why a result ended a run for a reason of its
// provider's, not the job's (SPEC 9), or "" if the job's own: the run died
// with the provider's process (CODE_RUN_LOST), the provider failed on its
// side (CODE_INTERNAL), never started the run (EXPIRED) or cancelled it
// (CANCELLED, for a slot this placement still runs: it did not cancel it).
func providerFault(ev ResultReceived) string {
	switch {
	case ev.State == pb.LeaseState_LEASE_STATE_EXPIRED:
		return "the run never started"
	case ev.State == pb.LeaseState_LEASE_STATE_CANCELLED:
		return "the provider cancelled the run"
	case ev.State != pb.LeaseState_LEASE_STATE_FAILED:
		return ""
	case ev.Code == pb.Code_CODE_RUN_LOST:
		return "the run died with its provider"
	case ev.Code == pb.Code_CODE_INTERNAL:
		return "the provider failed: " + ev.Detail
	}
	return ""
}

// finishResults ends a job whose slots all ended: it succeeded if every slot
// did and the replicas of each instance agree on their output.
func (p *Placement) finishResults() {
	rep := p.job.Replicas
	for i := range p.slots {
		s := &p.slots[i]
		if s.state != SlotSucceeded {
			why := fmt.Sprintf("exit code %d", s.exitCode)
			if s.detail != "" {
				why = s.detail
			}
			p.finish(JobFailed, ReasonRunFailed, fmt.Sprintf("slot %d failed on %s: %s", i, short(s.offer.Provider), why))
			return
		}
		if first := &p.slots[i/rep*rep]; first.outputCID != s.outputCID {
			p.finish(JobFailed, ReasonReplicasDisagree, fmt.Sprintf("replicas of instance %d disagree: outputs differ between %s and %s",
				i/rep, short(first.offer.Provider), short(s.offer.Provider)))
			return
		}
	}
	p.finish(JobSucceeded, ReasonNone, "")
}

func (p *Placement) onTimer(now time.Time, id uint64) {
	k := slices.IndexFunc(p.timers, func(t timer) bool { return t.id == id })
	if k < 0 {
		return // no longer needed
	}
	t := p.timers[k]
	p.timers = slices.Delete(p.timers, k, k+1)
	switch t.kind {
	case timerRound:
		if p.round == nil {
			return
		}
		if p.round.probing {
			p.decide(now)
		} else {
			p.probe(now)
		}
	case timerRetry:
		p.retrying = false
		p.startRound(now)
	case timerLease:
		if s := &p.slots[t.slot]; s.state == SlotLeasing {
			p.outcome(s.offer.Provider, ReasonNoAnswer, "no answer to the lease", s.scores)
			p.requeue(now, t.slot, true)
		}
	case timerBeat:
		if s := &p.slots[t.slot]; s.state == SlotRunning {
			p.outcome(s.offer.Provider, ReasonLost, fmt.Sprintf("%d heartbeats missed", p.cfg.MissedHeartbeats), s.scores)
			p.emit(Silent{s.offer.Provider})
			if p.requeue(now, t.slot, true) {
				p.report(fmt.Sprintf("lease on %s lost; rescheduling under epoch %d", short(s.offer.Provider), s.epoch+1))
			}
		}
	}
}

// finish ends the job, releasing everything still held for it.
func (p *Placement) finish(st JobState, code Reason, reason string) {
	for i := range p.slots {
		s := &p.slots[i]
		if s.state == SlotLeasing || s.state == SlotRunning {
			p.emit(CancelLease{s.offer.Provider, s.leaseID, s.epoch})
			s.state = SlotCancelled
		} else if s.state == SlotPending {
			s.state = SlotCancelled
			if st == JobFailed {
				s.state = SlotFailed
			}
		}
	}
	if p.round != nil {
		for _, o := range p.round.offers {
			p.emit(DeclineOffer{o.Provider, o.Nonce})
		}
		p.round = nil
	}
	p.timers = p.timers[:0]
	p.state = st
	p.code, p.reason = code, reason
	p.report(st.String())
}

// ---- explanations ----

// outcome records what came of asking a provider. Scores are those of its
// offer, when it was ranked: what came of a lease keeps those of the offer
// leased, a new answer has none until ranked.
func (p *Placement) outcome(provider string, why Reason, detail string, scores Scores) {
	o := Outcome{Provider: provider, Reason: why, Detail: detail, Scores: scores}
	i, ok := slices.BinarySearchFunc(p.outcomes, provider, func(o Outcome, id string) int { return cmp.Compare(o.Provider, id) })
	if ok {
		p.outcomes[i] = o
		return
	}
	p.outcomes = slices.Insert(p.outcomes, i, o)
}

// explain sums up the outcomes: "12 asked: 7 insufficient memory, 3 price above
// ceiling, 2 no answer".
func (p *Placement) explain() string {
	type count struct {
		reason Reason
		n      int
	}
	var counts []count
	for _, o := range p.outcomes {
		k := slices.IndexFunc(counts, func(c count) bool { return c.reason == o.Reason })
		if k < 0 {
			counts = append(counts, count{o.Reason, 1})
		} else {
			counts[k].n++
		}
	}
	if len(counts) == 0 {
		return "no provider asked"
	}
	slices.SortFunc(counts, func(a, b count) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		// Ties read in the order of their text: this only lays out what
		// is shown, nothing is decided on it.
		return strings.Compare(a.reason.String(), b.reason.String())
	})
	parts := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = fmt.Sprintf("%d %s", c.n, c.reason)
	}
	return fmt.Sprintf("%d asked: %s", len(p.outcomes), strings.Join(parts, ", "))
}

// Status returns the job's status. The caller owns the slices, but for the
// Labels and Scores within (see Status).
func (p *Placement) Status() Status {
	st := Status{State: p.state, Code: p.code, Reason: p.reason, Asked: slices.Clone(p.outcomes)}
	st.Slots = make([]SlotStatus, len(p.slots))
	for i, s := range p.slots {
		st.Slots[i] = SlotStatus{
			LeaseID: s.leaseID, Epoch: s.epoch, Provider: s.offer.Provider, State: s.state,
			Price: s.offer.Total, Labels: s.offer.Labels, Site: s.offer.Site, Scores: s.scores, ExitCode: s.exitCode, OutputCID: s.outputCID,
		}
	}
	return st
}

func (p *Placement) report(msg string) {
	st := p.Status()
	st.Message = msg
	p.emit(Report{st})
}

// short abbreviates a provider's binary ID for messages, as every table
// does; a readable name, as tests and scripts give, stays whole.
func short(id string) string {
	if len(id) <= 12 && isPrintable(id) {
		return id
	}
	return protocol.ShortPeerID(id)
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}
