package simulations

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/scheduler"
)

// Progress is told how far a run has got: the virtual time, the jobs ended
// and the jobs expected (0 when unknown).
type Progress func(now time.Duration, ended, expected int)

// Run simulates one variant of a scenario with a seed. A nil variant runs
// the scenario as written. progress, if not nil, is called at each sample of
// the time series.
func Run(s *Scenario, v *Variant, seed uint64, progress Progress) (*Result, error) {
	return runOne(s, v, seed, progress, true)
}

// runOne is Run; measure says whether to measure the heap the providers take,
// which is only honest when no other run shares the heap.
func runOne(s *Scenario, v *Variant, seed uint64, progress Progress, measure bool) (*Result, error) {
	sim, err := newSim(s, v, seed, measure)
	if err != nil {
		return nil, err
	}
	sim.progress = progress
	start := time.Now()
	sim.loop()
	res := sim.result()
	res.Wall = time.Since(start)
	return res, nil
}

// sim is one run: the federation, the jobs and the queue of events.
type sim struct {
	sc       Scenario // with the variant applied
	variant  string
	seed     uint64
	cfg      scheduler.Config
	q        queue
	now      int64
	trace    *tracer
	events   uint64
	progress Progress

	net, disc, work, arrive, churn, place, dials, svc *rand.Rand

	regions    []string
	classes    []classState
	providers  []provider
	index      map[protocol.FacetKey][]int32
	requesters []requester
	jobs       []job
	records    []JobRecord
	placements []PlacementRecord
	losses     []LossRecord
	deadFor    int64     // the requesters' negative cache: how long a silent provider is left out
	kad        *kadModel // the DHT's walks, drawn at the first lookup
	connects   bool      // whether a first exchange with a provider costs a dial
	deadAsks   uint64    // offer requests and leases that reached a provider down

	// The placement mechanism (baseline.go): uniform says lookups are
	// answered with a uniform sample of every findable provider that meets
	// the job's constraints, at once (random, sparrow); central is the
	// omniscient scheduler, nil for the others. pops caches the providers
	// meeting each set of constraints.
	uniform bool
	central *central
	pops    map[string][]int32

	// Wholesale (wholesale.go): the classes from hw on are the retailers
	// of the sites of the classes before; retail ties each retailer to its
	// site's slice, by the retailer's index.
	hw     int
	retail map[int32]*retailer

	// arrivals
	rate       float64 // per second, outside bursts
	arrived    int
	expected   int   // jobs expected, 0 if unknown
	arriveEnd  int64 // no arrival after this
	burst      bool
	burstUntil int64
	active     int // jobs not ended
	placing    int
	running    int
	ended      int
	committed  uint64 // CPU millis committed, over providers up
	upCPU      uint64 // CPU millis of providers up
	upCount    int
	stopped    bool
	bytesPer   float64
	series     []Sample
}

type classState struct {
	c         *Class
	regions   []int // region index of each weight
	cumul     []float64
	labels    map[string]scheduler.Labels // by region and operator, shared
	committed uint64
	upCPU     uint64
	// sells is the CPU each of its providers sells (its capacity, less a
	// site's slices), up the providers up; public says it runs on public
	// hardware (a subsidised class, or a retailer of one).
	sells  uint64
	up     int
	public bool
}

type provider struct {
	id       string
	class    int16
	region   int16
	operator int32
	inc      uint32 // incarnation: bumped at each crash
	up       bool
	downAt   int64
	upSince  int64
	upNanos  int64 // time up before upSince
	market   *scheduler.Market
	cfg      *scheduler.MarketConfig
	runs     []run
	leases   int32
	crashes  int32
	deadAsks int32   // asks that reached it while it was down
	serving  int64   // when it has answered the asks sent to it so far
	busy     float64 // CPU-millis x seconds
	revenue  float64
	subsidy  float64
	// wholesale is, for a site, what its retailers paid it for their
	// slices; for a retailer, what it paid for its slice.
	wholesale float64
}

type run struct {
	job     int32
	leaseID string
	epoch   uint64
	cpu     uint64
	since   int64 // committed at
}

type requester struct {
	id     string
	region int16
	// cache is its cache of lookups, by the daemon's rules (lookup below).
	cache map[protocol.FacetKey]*cached
	// conns are the providers it has a connection to, and when each was
	// last used, as libp2p's connection manager keeps them.
	conns map[int32]int64
	// Its store's batch of writes: the open one commits at batchEnd and is
	// synced at batchDone; the writer is free again at writerFree.
	batchEnd, batchDone, writerFree int64
	// dead is the requester's negative cache, as the daemon's: providers
	// that did not answer an offer request or a lease, left out of every
	// placement's candidates until the time held.
	dead map[int32]int64
	// waiting are its jobs waiting for capacity, oldest (lowest ID, the
	// order of arrival) first, and parked the back-off timers held of those
	// an older one holds back (scheduler.Blocks): served in submission
	// order, with backfill, as the daemon's (SetTimer.Wait).
	waiting []int32
	parked  map[int32]event
	// book is what it learnt of the providers it asked (their claimed
	// capacity, their refusals for lack of it), shared by its placements
	// as the daemon's is: candidates are drawn by its weights.
	book *scheduler.Book
}

// cached is one key of a requester's cache of lookups (the daemon's
// candidateEntry): the providers its last lookup found, until when they are
// fresh, and whether a lookup of it is running, with the jobs waiting for it.
type cached struct {
	peers    []int32
	expires  int64
	answered bool // a lookup has filled it
	busy     bool
	waiters  []int32
}

type job struct {
	p         *scheduler.Placement
	requester int32
	run       time.Duration
	since     int64 // submitted, or requeued
	epoch     uint64
	state     scheduler.JobState
	live      uint64   // epoch of the lease the requester holds and watches; 0 if none
	loss      int32    // index in losses of its lease that died with a provider, until re-placed; -1 if none
	waitFrom  int64    // when it began waiting for capacity; -1 if it is not waiting
	runLost   bool     // the event being stepped is a restarted provider's CODE_RUN_LOST
	o         *omniJob // the omniscient scheduler's view of it, in its runs, until it ends; nil otherwise
}

func newSim(sc *Scenario, v *Variant, seed uint64, measure bool) (*sim, error) {
	s := &sim{sc: *sc, variant: sc.Name, seed: seed, trace: newTracer()}
	if err := s.applyVariant(v); err != nil {
		return nil, err
	}
	s.cfg = s.sc.Scheduler.Config.WithDefaults()
	pol, err := scheduler.PolicyByName(s.sc.Scheduler.PolicyName)
	if err != nil {
		return nil, err
	}
	s.cfg.Policy = pol
	if err := s.setPlacement(); err != nil {
		return nil, err
	}
	s.deadFor = int64(cmp.Or(s.sc.Scheduler.DeadFor, DefaultDeadFor))
	s.net = stream(seed, "network")
	s.disc = stream(seed, "discovery")
	s.work = stream(seed, "workload")
	s.arrive = stream(seed, "arrivals")
	s.churn = stream(seed, "churn")
	s.place = stream(seed, "placement")
	s.dials = stream(seed, "connections")
	s.svc = stream(seed, "service")
	s.regions = s.sc.Network.Regions
	s.index = map[protocol.FacetKey][]int32{}

	var before, after runtime.MemStats
	if measure {
		runtime.GC()
		runtime.ReadMemStats(&before)
	}
	if err := s.buildProviders(); err != nil {
		return nil, err
	}
	if s.central != nil && s.retail != nil {
		return nil, fmt.Errorf("the omniscient baseline places on providers' markets directly, not through a site's slices: give wholesale sites the placement cuivre, random or sparrow")
	}
	if measure && len(s.providers) > 0 {
		runtime.GC()
		runtime.ReadMemStats(&after)
		s.bytesPer = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(len(s.providers))
	}
	s.buildRequesters()
	d := &s.sc.Discovery
	s.connects = !d.Dial.isZero() || d.DialRoundTrips > 0
	if err := s.setRate(); err != nil {
		return nil, err
	}
	s.arriveEnd = int64(s.sc.Duration)
	s.expected = s.sc.Workload.Jobs
	if n := len(s.sc.Workload.Trace); n > 0 && (s.expected == 0 || n < s.expected) {
		s.expected = n
	}
	s.q.push(event{at: 0, kind: evArrive})
	s.q.push(event{at: 0, kind: evSample})
	return s, nil
}

// applyVariant leaves out the classes a variant excludes and applies its
// overrides.
func (s *sim) applyVariant(v *Variant) error {
	if v == nil {
		return nil
	}
	s.variant = v.Name
	if v.scenario != nil {
		s.sc = *v.scenario // the scenario with the keys the variant sets
	}
	var kept []Class
	for _, c := range s.sc.Classes {
		if !slices.Contains(v.Exclude, c.Name) {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		return fmt.Errorf("variant %s: every class is excluded", v.Name)
	}
	s.sc.Classes = kept
	if v.Policy != "" {
		s.sc.Scheduler.PolicyName = v.Policy
	}
	if v.D > 0 {
		s.sc.Scheduler.Config.D = v.D
	}
	if v.Load > 0 {
		s.sc.Workload.Arrivals.Load = v.Load
		s.sc.Workload.Arrivals.Rate = 0
	}
	if v.Placement != "" {
		s.sc.Scheduler.Placement = v.Placement
	}
	return nil
}

func (s *sim) buildProviders() error {
	s.hw = len(s.sc.Classes)
	kinds := s.retailerClasses()
	total := 0
	for _, c := range s.sc.Classes {
		total += c.Count
	}
	s.providers = make([]provider, 0, total)
	mk := stream(s.seed, "markets")
	for ci := range s.sc.Classes {
		c := &s.sc.Classes[ci]
		cs := classState{c: c, labels: map[string]scheduler.Labels{}, sells: c.Capacity.CPUMillis, public: c.Subsidy > 0}
		if w := c.Wholesale; w != nil {
			cs.sells -= uint64(w.RetailerCount()) * w.Slice(c.Capacity).CPUMillis
			if !w.Retail {
				cs.sells = 0
			}
		}
		if ci >= s.hw {
			cs.public = s.sc.Classes[s.providers[kinds[ci-s.hw].sites[0]].class].Subsidy > 0
		}
		for _, w := range c.Regions {
			k := slices.Index(s.regions, w.Name)
			if k < 0 {
				return fmt.Errorf("class %s: unknown region %q", c.Name, w.Name)
			}
			cs.regions = append(cs.regions, k)
			cs.cumul = append(cs.cumul, w.Weight+last(cs.cumul))
		}
		pricing := c.Pricing
		if c.Subsidy > 0 {
			f := 1 - c.Subsidy
			pricing.Base.CPUNanosPerSecond = uint64(math.Round(float64(pricing.Base.CPUNanosPerSecond) * f))
			pricing.Base.MemoryNanosPerGiBSecond = uint64(math.Round(float64(pricing.Base.MemoryNanosPerGiBSecond) * f))
			pricing.Base.EgressNanosPerGiB = uint64(math.Round(float64(pricing.Base.EgressNanosPerGiB) * f))
		}
		for k := range c.Count {
			n := int32(len(s.providers))
			p := provider{id: "p" + strconv.Itoa(int(n)), class: int16(ci), up: true}
			var site *provider
			if ci >= s.hw {
				// A retailer: in its site's region, its own operator.
				kind := &kinds[ci-s.hw]
				site = &s.providers[kind.sites[k/kind.perSite]]
				p.region, p.operator = site.region, int32(k%kind.perSite)
			} else {
				p.region = int16(cs.regions[pick(s.churn, cs.cumul)])
				p.operator = n
				if c.Operators > 0 {
					p.operator = int32(k % c.Operators)
				}
			}
			operator := "op-" + strconv.Itoa(int(p.operator))
			if c.Operators > 0 || site != nil {
				operator = c.Name + "-" + strconv.Itoa(int(p.operator))
			}
			lk := s.regions[p.region] + "/" + operator
			labels, ok := cs.labels[lk]
			if !ok {
				labels = scheduler.NewLabels(append(slices.Clone(c.Labels),
					scheduler.Label{Key: scheduler.LabelRegion, Value: s.regions[p.region]},
					scheduler.Label{Key: scheduler.LabelOperator, Value: operator})...)
				if c.Operators > 0 {
					cs.labels[lk] = labels
				}
			}
			p.cfg = &scheduler.MarketConfig{Provider: p.id, Capacity: c.Capacity, Labels: labels, Pricing: pricing, Seed: seed32(mk)}
			m, err := scheduler.NewMarket(*p.cfg)
			if err != nil {
				return fmt.Errorf("class %s: %w", c.Name, err)
			}
			p.market = m
			if site != nil {
				if p.wholesale, err = s.grant(site, n, c.Capacity); err != nil {
					return fmt.Errorf("retailer %s: %w", c.Name, err)
				}
			}
			if cs.sells > 0 { // a site that does not retail announces nothing
				for _, key := range scheduler.ProviderKeys(p.id, labels, nil, c.Capacity) {
					s.index[key] = append(s.index[key], n)
				}
			}
			if c.Churn.Session > 0 {
				s.q.push(event{at: s.expDur(s.churn, c.Churn.Session), kind: evCrash, prov: n})
			}
			s.providers = append(s.providers, p)
			cs.upCPU += cs.sells
			s.upCPU += cs.sells
			cs.up++
			s.upCount++
		}
		s.classes = append(s.classes, cs)
	}
	return nil
}

func (s *sim) buildRequesters() {
	var cumul []float64
	var regions []int
	for _, w := range s.sc.Requesters.Regions {
		regions = append(regions, slices.Index(s.regions, w.Name))
		cumul = append(cumul, w.Weight+last(cumul))
	}
	n := max(1, s.sc.Requesters.Count)
	for i := range n {
		r := requester{id: "r" + strconv.Itoa(i), cache: map[protocol.FacetKey]*cached{}, book: scheduler.NewBook()}
		if len(regions) > 0 {
			r.region = int16(regions[pick(s.work, cumul)])
		}
		s.requesters = append(s.requesters, r)
	}
}

// setRate sets the arrival rate, from the load asked for if need be.
func (s *sim) setRate() error {
	a := &s.sc.Workload.Arrivals
	s.rate = a.Rate
	if a.Load > 0 {
		var cpu float64
		for _, c := range s.sc.Classes[:s.hw] { // the hardware: retailers sell slices of it
			cpu += float64(c.Count) * float64(c.Capacity.CPUMillis)
		}
		var sum, wsum float64
		for _, z := range s.sc.Workload.Sizes {
			sum += z.Weight * float64(z.Resources.CPUMillis)
			wsum += z.Weight
		}
		mean := s.sc.Workload.Duration.Mean.Seconds()
		if sum == 0 || mean == 0 {
			return fmt.Errorf("workload: a load needs sizes and a mean run time")
		}
		s.rate = a.Load * cpu / (sum / wsum * mean)
	}
	if s.rate <= 0 && len(s.sc.Workload.Trace) == 0 && a.Process != "sequential" {
		return fmt.Errorf("workload: no arrival rate")
	}
	return nil
}

// ---- the loop ----

func (s *sim) loop() {
	for s.q.len() > 0 && !s.stopped {
		s.next()
	}
}

// next processes the next event of the queue.
func (s *sim) next() {
	e := s.q.pop()
	s.now = e.at
	s.events++
	s.trace.add(&e)
	switch e.kind {
	case evArrive:
		s.onArrive()
	case evTimer:
		s.step(e.job, scheduler.TimerFired{ID: e.id})
	case evToJob:
		s.deliver(e.job, e.msg.(scheduler.Event))
	case evToProv:
		s.toProvider(&e)
	case evBeat:
		s.onBeat(&e)
	case evEnd:
		s.onEnd(&e)
	case evCrash:
		s.onCrash(e.prov)
	case evRejoin:
		s.onRejoin(e.prov)
	case evSample:
		s.onSample()
	case evRewatch:
		s.onRewatch(&e)
	case evNoAnswer:
		s.markDead(&s.requesters[s.jobs[e.job].requester], e.prov)
	case evDeadline:
		s.omniDeadline(e.job)
	case evLookup:
		s.onLookup(&e)
	}
}

func (s *sim) maybeStop() {
	arrivalsDone := s.now > s.arriveEnd || s.expected > 0 && s.arrived >= s.expected
	if arrivalsDone && s.active == 0 || s.now > s.arriveEnd+int64(s.sc.Drain) {
		s.stopped = true
	}
}

// ---- jobs ----

func (s *sim) onArrive() {
	w := &s.sc.Workload
	if s.expected > 0 && s.arrived >= s.expected || s.now > s.arriveEnd {
		return
	}
	var j scheduler.Job
	var rec JobRecord
	if len(w.Trace) > 0 {
		t := &w.Trace[s.arrived]
		j = scheduler.Job{Resources: t.Resources, Constraints: t.Constraints, MaxPrice: t.MaxPrice}
		rec.Run = t.Run
	} else {
		z := w.Sizes[pickWeighted(s.work, len(w.Sizes), func(i int) float64 { return w.Sizes[i].Weight })]
		j.Resources = z.Resources
		rec.Run = s.draw(w.Duration)
		if len(w.Constraints) > 0 {
			c := w.Constraints[pickWeighted(s.work, len(w.Constraints), func(i int) float64 { return w.Constraints[i].Weight })]
			j.Constraints = c.Selectors
		}
	}
	j.Timeout = (time.Duration(math.Ceil(rec.Run.Seconds()*w.TimeoutFactor)) * time.Second)
	if j.Timeout <= 0 {
		j.Timeout = time.Second
	}
	if len(w.Trace) == 0 && len(w.Ceilings) > 0 {
		c := w.Ceilings[pickWeighted(s.work, len(w.Ceilings), func(i int) float64 { return w.Ceilings[i].Weight })]
		if c.PerCPUHour.Currency != "" {
			n := float64(c.PerCPUHour.Nanos) * float64(j.Resources.CPUMillis) / 1000 * j.Timeout.Hours()
			j.MaxPrice = scheduler.Amount{Currency: c.PerCPUHour.Currency, Nanos: uint64(min(n, math.MaxUint64/2))}
		}
	}
	id := len(s.jobs)
	r := s.work.IntN(len(s.requesters))
	j.CID = "j" + strconv.Itoa(id)
	j.Requester = s.requesters[r].id
	j.Count, j.Replicas, j.Executor = 1, 1, protocol.DefaultEngine
	rec.ID, rec.Requester = id, r
	rec.Submitted = time.Duration(s.now)
	rec.Deadline = rec.Submitted + cmp.Or(j.PlacementTimeout, s.cfg.PlacementTimeout)
	rec.Placed, rec.Ended = -1, -1
	rec.CPUMillis, rec.MemoryBytes = j.Resources.CPUMillis, j.Resources.MemoryBytes
	rec.Constrained = len(j.Constraints) > 0
	rec.State = scheduler.JobPlacing.String()
	s.records = append(s.records, rec)
	s.arrived++
	s.active++
	s.placing++
	if s.central != nil {
		s.jobs = append(s.jobs, job{requester: int32(r), run: rec.Run, since: s.now,
			state: scheduler.JobPlacing, loss: -1, waitFrom: -1})
		s.omniArrive(int32(id), j, int64(rec.Deadline))
		s.scheduleArrival()
		return
	}
	s.write(&s.requesters[r]) // the job's record, beside its placement
	cfg := s.cfg
	if !s.uniform {
		cfg.Book = s.requesters[r].book // the baselines draw uniformly
	}
	s.jobs = append(s.jobs, job{p: scheduler.NewPlacement(cfg, j, seed32(s.place)), requester: int32(r), run: rec.Run, since: s.now,
		state: scheduler.JobPlacing, loss: -1, waitFrom: -1})
	s.step(int32(id), scheduler.Start{})
	s.scheduleArrival()
}

// nextInTurn brings the next job of a sequential workload: one submitted
// once the last has ended, as a benchmark's loop submits them.
func (s *sim) nextInTurn() {
	if s.sc.Workload.Arrivals.Process == "sequential" && len(s.sc.Workload.Trace) == 0 {
		s.q.push(event{at: s.now, kind: evArrive})
	}
}

func (s *sim) scheduleArrival() {
	w := &s.sc.Workload
	if s.expected > 0 && s.arrived >= s.expected {
		return
	}
	if len(w.Trace) > 0 {
		s.q.push(event{at: max(s.now, int64(w.Trace[s.arrived].At)), kind: evArrive})
		return
	}
	a := &w.Arrivals
	at := s.now
	if a.Process == "sequential" {
		return // the next arrives when this one ends (nextInTurn)
	}
	if a.Process == "steady" {
		s.q.push(event{at: at + int64(float64(time.Second)/s.rate), kind: evArrive})
		return
	}
	if a.Process != "bursty" {
		s.q.push(event{at: at + s.expDur(s.arrive, time.Duration(float64(time.Second)/s.rate)), kind: evArrive})
		return
	}
	// Bursty: Poisson whose rate switches between Rate and Rate*BurstFactor
	// at exponential times. Exponential gaps are memoryless, so a gap cut
	// by a switch is simply drawn again from the switch.
	for {
		if s.burstUntil == 0 {
			s.burstUntil = s.expDur(s.arrive, a.BurstOff)
		}
		rate := s.rate
		if s.burst {
			rate *= a.BurstFactor
		}
		next := at + s.expDur(s.arrive, time.Duration(float64(time.Second)/rate))
		if next < s.burstUntil {
			s.q.push(event{at: next, kind: evArrive})
			return
		}
		at = s.burstUntil
		s.burst = !s.burst
		mean := a.BurstOff
		if s.burst {
			mean = a.BurstOn
		}
		s.burstUntil = at + s.expDur(s.arrive, mean)
	}
}

// deliver hands a message to a job at its requester, which first learns from
// it as the daemon's does: an answer to an offer request or a lease brings
// its provider back from the negative cache, and the candidates of a lookup
// are filtered through it.
func (s *sim) deliver(id int32, ev scheduler.Event) {
	if s.central != nil {
		s.omniDeliver(id, ev)
		return
	}
	r := &s.requesters[s.jobs[id].requester]
	switch m := ev.(type) {
	case scheduler.OfferReceived:
		s.markAlive(r, m.Offer.Provider)
	case scheduler.OfferRefused:
		s.markAlive(r, m.Provider)
	case scheduler.LeaseAccepted:
		s.markAlive(r, m.Provider)
		s.write(r) // the job's status, saved behind
	case scheduler.LeaseRejected:
		s.markAlive(r, m.Provider)
	case scheduler.CandidatesFound:
		m.Peers = s.filterDead(r, m.Peers)
		ev = m
	case scheduler.ResultReceived:
		// The receipt and its countersignature synced before the
		// countersignature is sent, behind the job (the provider's
		// acknowledgement, recorded a round trip later, is left out).
		s.write(r)
		j := &s.jobs[id]
		j.runLost = m.Code == pb.Code_CODE_RUN_LOST
		defer func() { j.runLost = false }()
	}
	s.step(id, ev)
}

// step feeds an event to a job's placement and carries out its actions.
func (s *sim) step(id int32, ev scheduler.Event) {
	j := &s.jobs[id]
	if j.p == nil {
		return // ended: late messages and timers fall on the floor
	}
	for _, a := range j.p.Step(time.Unix(0, s.now), ev) {
		s.act(id, a)
	}
}

func (s *sim) act(id int32, a scheduler.Action) {
	j := &s.jobs[id]
	r := &s.requesters[j.requester]
	switch a := a.(type) {
	case scheduler.Silent:
		if p := s.providerOf(a.Provider); p >= 0 {
			s.markDead(r, int32(p))
		}
	case scheduler.Lookup:
		if s.uniform {
			s.uniformLookup(id, a)
			return
		}
		for _, k := range a.Keys {
			s.lookup(id, j.requester, k, a.Want, a.Need)
		}
	case scheduler.RequestOffer:
		s.send(id, r, a.Provider, a)
	case scheduler.SendLease:
		j.live = a.Lease.Epoch
		s.send(id, r, a.Provider, a)
	case scheduler.DeclineOffer:
		s.send(id, r, a.Provider, a)
	case scheduler.CancelLease:
		s.send(id, r, a.Provider, a)
	case scheduler.SetTimer:
		ev := event{at: a.At.UnixNano(), kind: evTimer, job: id, id: a.ID}
		if a.Wait {
			i, found := slices.BinarySearch(r.waiting, id)
			if !found {
				r.waiting = slices.Insert(r.waiting, i, id)
			}
			if s.heldBack(r, id) {
				if r.parked == nil {
					r.parked = map[int32]event{}
				}
				r.parked[id] = ev
				return
			}
		}
		s.q.push(ev)
	case scheduler.Report:
		s.report(id, &a.Status)
	}
}

// report follows a job's status: placements, requeues and its end.
func (s *sim) report(id int32, st *scheduler.Status) {
	j := &s.jobs[id]
	rec := &s.records[id]
	if j.state.Final() {
		return // a last report of the step that ended the job
	}
	s.followWait(j, rec, st)
	if st.State != scheduler.JobPlacing || !waitingForCapacity(st) {
		s.doneWaiting(&s.requesters[j.requester], id)
	}
	if len(st.Slots) > 0 {
		sl := &st.Slots[0]
		if sl.State == scheduler.SlotPending {
			j.live = 0
			s.lossDetected(j, sl.Epoch)
		}
		if sl.State == scheduler.SlotRunning && sl.Epoch != j.epoch {
			s.lossReplaced(j, sl.Epoch)
			j.epoch = sl.Epoch
			p := s.providerOf(sl.Provider)
			pr := PlacementRecord{Job: int(id), Epoch: sl.Epoch, Provider: p, At: time.Duration(s.now),
				Latency: time.Duration(s.now - j.since), Quoted: float64(sl.Price.Nanos) / 1e9, Currency: sl.Price.Currency}
			if p >= 0 {
				pv := &s.providers[p]
				pr.Class, pr.Region = s.sc.Classes[pv.class].Name, s.regions[pv.region]
				rec.Class, rec.Currency = pr.Class, sl.Price.Currency
			}
			s.placements = append(s.placements, pr)
			if rec.Placed < 0 {
				rec.Placed = time.Duration(s.now)
			}
			rec.Epochs = sl.Epoch
		}
		if sl.State == scheduler.SlotPending && j.state == scheduler.JobRunning {
			j.since = s.now // lost: placed again from now
		}
	}
	if st.State != j.state {
		s.count(j.state, -1)
		s.count(st.State, +1)
		j.state = st.State
	}
	rec.State = st.State.String()
	if st.State.Final() {
		if j.loss >= 0 {
			// The job ended with its lease lost: a failure of the job
			// for leases lost, found when the loss was.
			s.lossDetected(j, s.losses[j.loss].Epoch)
			j.loss = -1
		}
		j.live = 0
		s.write(&s.requesters[j.requester]) // its end, saved behind
		rec.Ended = time.Duration(s.now)
		rec.Reason = st.Reason
		if st.State != scheduler.JobSucceeded {
			rec.Code = st.Code.String()
		}
		j.p = nil
		s.active--
		s.ended++
		s.nextInTurn()
		s.maybeStop()
	}
}

// followWait measures the time a job spends waiting for capacity: from a
// report that says so to the next that does not (a lease accepted, a round
// that failed for another reason, its end).
func (s *sim) followWait(j *job, rec *JobRecord, st *scheduler.Status) {
	waiting := st.State == scheduler.JobPlacing && waitingForCapacity(st)
	switch {
	case waiting && j.waitFrom < 0:
		j.waitFrom = s.now
	case !waiting && j.waitFrom >= 0:
		rec.CapacityWait += time.Duration(s.now - j.waitFrom)
		j.waitFrom = -1
	}
}

// doneWaiting takes a job out of its requester's waiting jobs; the held
// back-offs of the later jobs it held back, and no other older one does,
// go.
func (s *sim) doneWaiting(r *requester, id int32) {
	i, found := slices.BinarySearch(r.waiting, id)
	if !found {
		return
	}
	r.waiting = slices.Delete(r.waiting, i, i+1)
	delete(r.parked, id)
	done := s.jobs[id].p.Job()
	for _, later := range r.waiting[i:] {
		ev, ok := r.parked[later]
		if !ok || !scheduler.Blocks(done, s.jobs[later].p.Job()) || s.heldBack(r, later) {
			continue
		}
		delete(r.parked, later)
		ev.at = max(ev.at, s.now)
		s.q.push(ev)
	}
}

// heldBack reports whether an older job of r, still waiting for capacity,
// holds back job id (scheduler.Blocks).
func (s *sim) heldBack(r *requester, id int32) bool {
	later := s.jobs[id].p.Job()
	for _, w := range r.waiting {
		if w >= id {
			return false
		}
		if scheduler.Blocks(s.jobs[w].p.Job(), later) {
			return true
		}
	}
	return false
}

// waitingForCapacity says whether a placing job's status is the scheduler's
// "waiting for capacity": a round failed and a fitting provider at least
// refused it for lack of room, or rate limited it.
func waitingForCapacity(st *scheduler.Status) bool {
	return st.Code == scheduler.ReasonNotPlaced && scheduler.WaitsForCapacity(st.Asked)
}

// lossDetected records when the requester declared lost a lease that died
// with its provider: its slot is pending again, or the job ended.
func (s *sim) lossDetected(j *job, epoch uint64) {
	if j.loss < 0 {
		return
	}
	l := &s.losses[j.loss]
	if l.Detected < 0 && l.Epoch == epoch {
		l.Detected = time.Duration(s.now)
		l.ByRestart = j.runLost
	}
}

// lossReplaced records the next lease accepted after a loss was detected.
func (s *sim) lossReplaced(j *job, epoch uint64) {
	if j.loss < 0 {
		return
	}
	if l := &s.losses[j.loss]; l.Detected >= 0 && epoch > l.Epoch {
		l.Replaced = time.Duration(s.now)
		j.loss = -1
	}
}

func (s *sim) count(st scheduler.JobState, d int) {
	switch st {
	case scheduler.JobPlacing:
		s.placing += d
	case scheduler.JobRunning:
		s.running += d
	}
}

func (s *sim) providerOf(id string) int {
	if len(id) < 2 || id[0] != 'p' {
		return -1
	}
	n, err := strconv.Atoi(id[1:])
	if err != nil || n >= len(s.providers) {
		return -1
	}
	return n
}

// ---- network and discovery ----

// oneWay draws the delay of a message between two regions, and whether it is
// lost.
func (s *sim) oneWay(a, b int16) (int64, bool) {
	n := &s.sc.Network
	d := float64(n.RTT[a][b]) / 2
	if n.Jitter > 0 {
		d += d * n.Jitter * s.net.Float64()
	}
	lost := n.Loss > 0 && s.net.Float64() < n.Loss
	return int64(d), lost
}

// send carries an action from a job's requester to a provider. An offer
// request or a lease is an ask, which the provider answers; its event
// carries the time by which the requester gives up on the answer.
func (s *sim) send(id int32, r *requester, to string, a scheduler.Action) {
	p := s.providerOf(to)
	if p < 0 {
		return
	}
	var deadline int64
	switch a := a.(type) {
	case scheduler.RequestOffer:
		deadline = a.Request.ExpiresAt.UnixNano()
	case scheduler.SendLease:
		// The placement gives up sooner (Config.LeaseTimeout); the
		// negative cache learns of the silence then, as the daemon's.
		deadline = s.now + int64(scheduler.LeaseAnswerWait)
	}
	pv := &s.providers[p]
	at := s.now
	if _, ok := a.(scheduler.SendLease); ok {
		at = s.write(r) + s.cost(s.sc.Requesters.Overhead) // the job's record, with the lease's epoch, synced first
	}
	at += s.connect(r, int32(p))
	d, lost := s.oneWay(r.region, pv.region)
	if lost {
		s.noAnswer(id, int32(p), deadline)
		return
	}
	at += d
	if deadline > 0 {
		// An ask waits its turn: the provider answers one at a time, in
		// the order they were sent.
		c := &s.sc.Classes[pv.class]
		service := c.ServiceTime
		if _, ok := a.(scheduler.SendLease); ok && !c.LeaseTime.isZero() {
			service = c.LeaseTime
		}
		at = max(at, pv.serving) + s.cost(service)
		pv.serving = at
		if _, ok := a.(scheduler.SendLease); ok {
			at += s.siteRoundTrips(pv) // a retailer's lease is made on its site's market
		}
	}
	s.q.push(event{at: at, kind: evToProv, job: id, prov: int32(p), id: uint64(deadline), msg: a})
}

// Connections: libp2p's connection manager trims a node's connections to
// connsLow, the least recently used first, once they pass connsHigh (the
// daemon's).
const (
	connsLow  = 100
	connsHigh = 400
)

// connect returns what reaching provider p costs requester r before its
// message leaves: nothing on a connection open, else a new connection (its
// round trips and its work). A requester is connected to the peers of its
// routing table from the start (the walks' rtShare of the servers); to the
// others once it has exchanged with them, until trimmed.
func (s *sim) connect(r *requester, p int32) int64 {
	if !s.connects {
		return 0
	}
	if _, ok := r.conns[p]; ok {
		r.conns[p] = s.now
		return 0
	}
	if r.conns == nil {
		r.conns = map[int32]int64{}
	}
	if len(r.conns) >= connsHigh {
		type conn struct {
			p    int32
			used int64
		}
		all := make([]conn, 0, len(r.conns))
		for q, t := range r.conns {
			all = append(all, conn{q, t})
		}
		slices.SortFunc(all, func(a, b conn) int { return cmp.Or(cmp.Compare(b.used, a.used), cmp.Compare(a.p, b.p)) })
		for _, c := range all[connsLow:] {
			delete(r.conns, c.p)
		}
	}
	r.conns[p] = s.now
	if s.dials.Float64() < s.kadModel().rtShare {
		return 0
	}
	d := &s.sc.Discovery
	return s.cost(d.Dial) + int64(d.DialRoundTrips)*int64(s.sc.Network.RTT[r.region][s.providers[p].region])
}

// cost draws the time a piece of work takes.
func (s *sim) cost(c Cost) int64 {
	if q := c.Quantiles; len(q) > 0 {
		x := s.svc.Float64() * float64(len(q)-1)
		i := int(x)
		if i >= len(q)-1 {
			return int64(q[len(q)-1])
		}
		return int64(q[i]) + int64((x-float64(i))*float64(q[i+1]-q[i]))
	}
	if c.Sigma == 0 || c.Mean == 0 {
		return int64(c.Mean)
	}
	return int64(math.Exp(math.Log(float64(c.Mean)) - c.Sigma*c.Sigma/2 + c.Sigma*s.svc.NormFloat64()))
}

// storeModelled says whether the requesters' store takes time.
func (s *sim) storeModelled() bool {
	rq := &s.sc.Requesters
	return rq.BatchDelay > 0 || !rq.Sync.isZero()
}

// write is a write to r's store now (bbolt's Batch): it joins the open
// batch, or opens one that commits BatchDelay later, once the writer is
// free; it returns when the write is synced. The requester writes each job
// at its submission, before each lease (which waits for it), at each lease
// accepted and at the job's end (statuses saved behind), and the receipt at
// its result, then its delivery.
func (s *sim) write(r *requester) int64 {
	rq := &s.sc.Requesters
	if !s.storeModelled() {
		return s.now
	}
	if s.now >= r.batchEnd {
		r.batchEnd = s.now + int64(rq.BatchDelay)
		r.batchDone = max(r.batchEnd, r.writerFree) + s.cost(rq.Sync)
		r.writerFree = r.batchDone
	}
	return r.batchDone
}

// noAnswer tells a job's requester, at the deadline of an ask (0 for a
// message that asks nothing), that its provider did not answer.
func (s *sim) noAnswer(id, p int32, deadline int64) {
	if deadline > 0 {
		s.q.push(event{at: max(s.now, deadline), kind: evNoAnswer, job: id, prov: p})
	}
}

// reply carries an event from a provider back to a job's requester, and
// reports whether it was not lost.
func (s *sim) reply(id int32, p *provider, ev scheduler.Event) bool {
	d, lost := s.oneWay(p.region, s.requesters[s.jobs[id].requester].region)
	if lost {
		return false
	}
	s.q.push(event{at: s.now + d, kind: evToJob, job: id, msg: ev})
	return true
}

// answer replies to an ask; an answer lost on the way is, for the
// requester, no answer at all.
func (s *sim) answer(e *event, p *provider, ev scheduler.Event) {
	if !s.reply(e.job, p, ev) {
		s.noAnswer(e.job, e.prov, int64(e.id))
	}
}

// markDead leaves provider p out of r's candidates for the negative cache's
// time.
func (s *sim) markDead(r *requester, p int32) {
	if r.dead == nil {
		r.dead = map[int32]int64{}
	}
	r.dead[p] = s.now + s.deadFor
}

// markAlive takes a provider that answered out of r's negative cache.
func (s *sim) markAlive(r *requester, id string) {
	if len(r.dead) > 0 {
		delete(r.dead, int32(s.providerOf(id)))
	}
}

// filterDead returns peers less those in r's negative cache, forgetting the
// entries that have run out, as the daemon's requester does.
func (s *sim) filterDead(r *requester, peers []string) []string {
	if len(r.dead) == 0 {
		return peers
	}
	out := make([]string, 0, len(peers))
	for _, id := range peers {
		p := int32(s.providerOf(id))
		if until, ok := r.dead[p]; ok {
			if s.now < until {
				continue
			}
			delete(r.dead, p)
		}
		out = append(out, id)
	}
	return out
}

// lookup answers a facet lookup for job id as the daemon's requester does
// (node/requester/lookup.go): from the requester's cache at once if its
// answer is fresh, or stale by up to CandidateStaleFor (a refresh then runs
// behind it, one at a time); otherwise by a DHT lookup, which every job that
// misses the key while it runs shares. A lookup's answer is kept CacheTTL
// from its start if it found providers, EmptyCandidateTTL if it ran to its
// end and found none, and not at all if it was cut short empty.
func (s *sim) lookup(id, ri int32, k protocol.FacetKey, want, need int) {
	r := &s.requesters[ri]
	if s.sc.Discovery.CacheTTL <= 0 { // no cache: every lookup walks the DHT
		s.startLookup(ri, nil, k, id, want, max(need, 1), scheduler.LookupGrace)
		return
	}
	if e := r.cache[k]; e != nil && e.answered {
		switch {
		case s.now < e.expires:
			s.found(id, k, e.peers)
			return
		case len(e.peers) > 0 && s.now-e.expires <= int64(scheduler.CandidateStaleFor):
			if !e.busy {
				e.busy = true
				s.startLookup(ri, e, k, -1, want, len(e.peers), scheduler.RefreshGrace)
			}
			s.found(id, k, e.peers)
			return
		}
	}
	if len(r.cache) > scheduler.MaxCandidateKeys {
		r.cache = map[protocol.FacetKey]*cached{} // the daemon's crude bound: start afresh
	}
	e := r.cache[k]
	if e == nil {
		e = &cached{}
		r.cache[k] = e
	}
	if e.busy {
		e.waiters = append(e.waiters, id)
		return
	}
	e.busy = true
	s.startLookup(ri, e, k, id, want, max(need, 1), scheduler.LookupGrace)
}

// found hands a job the providers of a key after the step that asked:
// the daemon sends the answer to the job's events.
func (s *sim) found(id int32, k protocol.FacetKey, peers []int32) {
	s.q.push(event{at: s.now, kind: evToJob, job: id, msg: scheduler.CandidatesFound{Key: k, Peers: s.ids(peers), Done: true}})
}

// lookupRun is a DHT lookup under way: its answer, due at its event.
type lookupRun struct {
	req      int32
	entry    *cached // nil without a cache
	key      protocol.FacetKey
	peers    []int32
	complete bool
	start    int64
}

// startLookup walks the DHT for key k from requester ri, for job id (-1 for
// a refresh behind the cache): it stops once it has need providers and
// grace has passed, or want + 1 of them (what the daemon asks for), or at
// the end of the walk.
func (s *sim) startLookup(ri int32, e *cached, k protocol.FacetKey, id int32, want, need int, grace time.Duration) {
	r := &s.requesters[ri]
	d, peers, complete := s.walk(r, k, want, need, grace)
	s.q.push(event{at: s.now + d, kind: evLookup, job: id, prov: ri,
		msg: &lookupRun{req: ri, entry: e, key: k, peers: peers, complete: complete, start: s.now}})
}

// walk draws a lookup's time and answer. Its walk is one of the kad model's:
// to its first holder of the key's records when the key has enough of them
// (or none at all when the requester holds them), to its end otherwise; each
// hop a round trip to a random provider's region and its service, and a new
// connection first to a peer outside the requester's routing table.
func (s *sim) walk(r *requester, k protocol.FacetKey, want, need int, grace time.Duration) (d int64, peers []int32, complete bool) {
	peers = s.sample(k, want+1)
	n := len(s.providers)
	if n == 0 {
		return 0, peers, true
	}
	m := s.kadModel()
	w := &m.walks[s.disc.IntN(len(m.walks))]
	hops, dials := int(w.hops), int(w.dials)
	found := len(peers) >= need
	if !found {
		hops, dials, complete = int(w.end), int(w.endDials), true
	}
	disc := &s.sc.Discovery
	for i := range hops {
		rtt := int64(s.sc.Network.RTT[r.region][s.providers[s.disc.IntN(n)].region])
		hop := rtt + s.cost(disc.HopService)
		if complete && i == hops-1 && w.follow > 0 {
			// The follow-up: its queries all in flight at once, the
			// lookup ends with the slowest.
			for range int(w.follow) - 1 {
				rtt := int64(s.sc.Network.RTT[r.region][s.providers[s.disc.IntN(n)].region])
				hop = max(hop, rtt+s.cost(disc.HopService))
			}
		}
		d += hop
		if i < dials {
			d += s.cost(disc.Dial) + int64(disc.DialRoundTrips)*rtt
		}
	}
	if found && len(peers) <= want {
		d += int64(grace) // the walk goes on for its grace, unless it had all it asked for
	}
	if lt := int64(s.cfg.LookupTimeout); lt > 0 && d > lt {
		d = lt
		if !found {
			complete = false
		}
	}
	return d, peers, complete
}

// kadModel returns the DHT's walks for this federation: its providers, and
// its requesters when they are servers.
func (s *sim) kadModel() *kadModel {
	if s.kad == nil {
		d := &s.sc.Discovery
		servers := len(s.providers)
		server := d.Requesters == ModeServer
		if server {
			servers += len(s.requesters)
		}
		s.kad = kadFor(servers, kadParams{k: cmp.Or(d.K, DefaultK), alpha: cmp.Or(d.Alpha, DefaultAlpha), beta: cmp.Or(d.Beta, DefaultBeta)}, server)
	}
	return s.kad
}

// onLookup ends a DHT lookup: its answer is cached by the daemon's rules
// and handed to the job that started it and to those that waited for it.
func (s *sim) onLookup(ev *event) {
	lr := ev.msg.(*lookupRun)
	if e := lr.entry; e != nil {
		ttl := int64(s.sc.Discovery.CacheTTL)
		switch {
		case len(lr.peers) > 0:
			e.peers, e.expires, e.answered = lr.peers, lr.start+ttl, true
		case lr.complete:
			e.peers, e.expires, e.answered = nil, lr.start+min(ttl, int64(scheduler.EmptyCandidateTTL)), true
		}
		e.busy = false
		waiters := e.waiters
		e.waiters = nil
		if ev.job >= 0 {
			s.deliver(ev.job, scheduler.CandidatesFound{Key: lr.key, Peers: s.ids(lr.peers), Done: true})
		}
		for _, w := range waiters {
			s.deliver(w, scheduler.CandidatesFound{Key: lr.key, Peers: s.ids(e.peers), Done: true})
		}
		return
	}
	s.deliver(ev.job, scheduler.CandidatesFound{Key: lr.key, Peers: s.ids(lr.peers), Done: true})
}

// sample draws up to want providers whose records are under k: those up, or
// gone for less than the record TTL.
func (s *sim) sample(k protocol.FacetKey, want int) []int32 {
	return s.sampleOf(s.index[k], want)
}

// sampleOf draws up to want providers of all whose records are findable,
// uniformly without replacement.
func (s *sim) sampleOf(all []int32, want int) []int32 {
	findable := func(p int32) bool {
		pv := &s.providers[p]
		return pv.up || s.now-pv.downAt < int64(s.sc.Discovery.RecordTTL)
	}
	var out []int32
	if len(all) <= 4*want {
		perm := slices.Clone(all)
		for i := range perm {
			k := i + s.disc.IntN(len(perm)-i)
			perm[i], perm[k] = perm[k], perm[i]
			if findable(perm[i]) {
				out = append(out, perm[i])
				if len(out) == want {
					break
				}
			}
		}
		return out
	}
	for tries := 0; len(out) < want && tries < 4*want; tries++ {
		p := all[s.disc.IntN(len(all))]
		if findable(p) && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func (s *sim) ids(ps []int32) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = s.providers[p].id
	}
	return out
}

// ---- providers ----

func (s *sim) toProvider(e *event) {
	p := &s.providers[e.prov]
	if !p.up {
		if e.id > 0 { // an ask: its requester learns at the deadline that no one answered
			p.deadAsks++
			s.deadAsks++
			s.noAnswer(e.job, e.prov, int64(e.id))
		}
		return
	}
	now := time.Unix(0, s.now)
	switch a := e.msg.(type) {
	case scheduler.RequestOffer:
		o, err := p.market.Quote(now, a.Request)
		if err != nil {
			// A full market's refusal carries its retry-after hint (the
			// soonest reservation's end, else RetryAfterFull), as the
			// daemon's provider sends it.
			s.answer(e, p, scheduler.OfferRefused{Provider: p.id, RequestNonce: a.Request.Nonce, Code: protocol.CodeOf(err), Reason: err.Error(), RetryAfter: protocol.RetryAfterOf(err)})
			return
		}
		s.answer(e, p, scheduler.OfferReceived{Offer: o})
	case scheduler.SendLease:
		if err := p.market.Commit(now, a.Lease); err != nil {
			s.answer(e, p, scheduler.LeaseRejected{Provider: p.id, LeaseID: a.Lease.ID, Epoch: a.Lease.Epoch, Code: protocol.CodeOf(err), Reason: err.Error()})
			return
		}
		if slices.ContainsFunc(p.runs, func(r run) bool { return r.leaseID == a.Lease.ID && r.epoch == a.Lease.Epoch }) {
			s.answer(e, p, scheduler.LeaseAccepted{Provider: p.id, LeaseID: a.Lease.ID, Epoch: a.Lease.Epoch})
			return // a repeated lease, committed already
		}
		if err := s.siteLease(p, a.Lease); err != nil {
			// Its slice is full on the site's market: the retailer's
			// own commit is undone, unbilled.
			if _, rerr := p.market.Release(now, a.Lease.ID, a.Lease.Epoch); rerr != nil {
				panic(fmt.Sprintf("simulations: release of a lease just committed: %v", rerr))
			}
			s.dropReplaced(p, a.Lease.ID, a.Lease.Epoch) // the older epochs its commit replaced
			s.answer(e, p, scheduler.LeaseRejected{Provider: p.id, LeaseID: a.Lease.ID, Epoch: a.Lease.Epoch, Code: protocol.CodeOf(err), Reason: err.Error()})
			return
		}
		s.dropReplaced(p, a.Lease.ID, a.Lease.Epoch)
		cpu := a.Lease.Resources.CPUMillis
		p.runs = append(p.runs, run{job: e.job, leaseID: a.Lease.ID, epoch: a.Lease.Epoch, cpu: cpu, since: s.now})
		p.leases++
		s.commit(p, int64(cpu))
		s.answer(e, p, scheduler.LeaseAccepted{Provider: p.id, LeaseID: a.Lease.ID, Epoch: a.Lease.Epoch})
		c := &s.sc.Classes[p.class]
		start := s.now + int64(c.StartDelay)
		s.q.push(event{at: start + int64(s.jobs[e.job].run), kind: evEnd, inc: p.inc, job: e.job, prov: e.prov, id: a.Lease.Epoch})
		s.q.push(event{at: s.now + int64(s.cfg.HeartbeatInterval), kind: evBeat, inc: p.inc, job: e.job, prov: e.prov, id: a.Lease.Epoch})
	case scheduler.DeclineOffer:
		_ = p.market.Decline(now, a.OfferNonce)
	case scheduler.CancelLease:
		s.endRun(p, e.job, a.LeaseID, a.Epoch)
	}
}

func (s *sim) commit(p *provider, cpu int64) {
	c := &s.classes[p.class]
	c.committed = uint64(int64(c.committed) + cpu)
	s.committed = uint64(int64(s.committed) + cpu)
}

// cpuMillisSeconds is the CPU a run held from its commit to now, in
// millicores times seconds.
func (r run) cpuMillisSeconds(now int64) float64 {
	return float64(r.cpu) * time.Duration(now-r.since).Seconds()
}

// findRun returns the index of a job's run of an epoch on p, or -1.
func (p *provider) findRun(job int32, epoch uint64) int {
	return slices.IndexFunc(p.runs, func(r run) bool { return r.job == job && r.epoch == epoch })
}

// dropReplaced ends, unbilled, the runs of older epochs of a lease that p
// committed again under a newer epoch: a slot placed anew on the provider
// that lost it. The market replaced them (SPEC 9: an epoch replaced by a
// higher one ends cancelled, with no receipt); the CPU they held until now
// was busy all the same.
func (s *sim) dropReplaced(p *provider, leaseID string, epoch uint64) {
	p.runs = slices.DeleteFunc(p.runs, func(r run) bool {
		if r.leaseID != leaseID || r.epoch >= epoch {
			return false
		}
		s.commit(p, -int64(r.cpu))
		p.busy += r.cpuMillisSeconds(s.now)
		s.records[r.job].CPUSeconds += r.cpuMillisSeconds(s.now) / 1000
		if rt := s.retailerOf(p); rt != nil {
			// Replaced on the site's market too, unless the site's
			// lease of the newer epoch was refused.
			_, _ = s.providers[rt.site].market.Release(time.Unix(0, s.now), siteLeaseID(p, leaseID), r.epoch)
		}
		return true
	})
}

// endRun releases a run's lease and bills it; it reports whether the run was
// there.
func (s *sim) endRun(p *provider, job int32, leaseID string, epoch uint64) bool {
	k := slices.IndexFunc(p.runs, func(r run) bool { return r.leaseID == leaseID && r.epoch == epoch && r.job == job })
	if k < 0 {
		return false
	}
	r := p.runs[k]
	p.runs = slices.Delete(p.runs, k, k+1)
	u, err := p.market.Release(time.Unix(0, s.now), leaseID, epoch)
	if err != nil {
		panic(fmt.Sprintf("simulations: release of a committed lease: %v", err))
	}
	s.siteRelease(p, leaseID, epoch)
	s.commit(p, -int64(r.cpu))
	p.busy += r.cpuMillisSeconds(s.now)
	paid := float64(u.Amount.Nanos) / 1e9
	p.revenue += paid
	rec := &s.records[job]
	rec.Paid += paid
	rec.CPUSeconds += r.cpuMillisSeconds(s.now) / 1000
	if sub := s.sc.Classes[p.class].Subsidy; sub > 0 {
		extra := paid * sub / (1 - sub)
		p.subsidy += extra
		rec.Subsidy += extra
	}
	return true
}

func (s *sim) onBeat(e *event) {
	p := &s.providers[e.prov]
	if !p.up || p.inc != e.inc {
		return
	}
	k := p.findRun(e.job, e.id)
	if k < 0 {
		return // ended or cancelled
	}
	s.reply(e.job, p, scheduler.Heartbeat{Provider: p.id, LeaseID: p.runs[k].leaseID, Epoch: e.id, State: pb.LeaseState_LEASE_STATE_RUNNING})
	e.at += int64(s.cfg.HeartbeatInterval)
	s.q.push(*e)
}

func (s *sim) onEnd(e *event) {
	p := &s.providers[e.prov]
	if !p.up || p.inc != e.inc {
		return
	}
	k := p.findRun(e.job, e.id)
	if k < 0 {
		return // cancelled
	}
	leaseID := p.runs[k].leaseID
	s.endRun(p, e.job, leaseID, e.id)
	if s.central != nil {
		s.omniFreed(e.prov)
	}
	ev := scheduler.ResultReceived{Provider: p.id, LeaseID: leaseID, Epoch: e.id,
		State: pb.LeaseState_LEASE_STATE_SUCCEEDED, OutputCID: "out-" + strconv.Itoa(int(e.job))}
	if f := s.sc.Workload.FailureRate; f > 0 && s.work.Float64() < f {
		ev.State, ev.ExitCode, ev.OutputCID, ev.Detail = pb.LeaseState_LEASE_STATE_FAILED, 1, "", "exit code 1"
	}
	if s.central != nil {
		s.omniResult(e.job, p, ev)
		return
	}
	s.reply(e.job, p, ev)
}

func (s *sim) onCrash(i int32) {
	p := &s.providers[i]
	if !p.up {
		return
	}
	c := &s.classes[p.class]
	for _, r := range p.runs {
		p.busy += r.cpuMillisSeconds(s.now)
		s.commit(p, -int64(r.cpu))
		s.runDied(i, p, r)
	}
	p.runs = nil
	p.up, p.downAt, p.inc = false, s.now, p.inc+1
	p.crashes++
	p.upNanos += s.now - p.upSince
	c.upCPU -= c.sells
	s.upCPU -= c.sells
	c.up--
	s.upCount--
	s.q.push(event{at: s.now + s.downtime(&c.c.Churn), kind: evRejoin, prov: i})
	if s.central != nil {
		s.omniRequeue()
	}
}

// downtime draws how long a crashed provider stays down: a fast restart, or
// an exponential downtime.
func (s *sim) downtime(ch *Churn) int64 {
	if ch.Fast > 0 && s.churn.Float64() < ch.Fast {
		return max(1, int64(2*float64(ch.FastDowntime)*s.churn.Float64()))
	}
	return s.expDur(s.churn, ch.Downtime)
}

// runDied follows a run that dies with its provider, still of the
// incarnation p.inc: the loss is recorded, and the requester's watch stream
// breaks. The daemon's requester then watches the lease again every
// heartbeat interval (node/requester's watchLease), which fails while the
// provider is down; once it is back, the lease is in its store, ended
// FAILED with CODE_RUN_LOST at the restart, and the watch returns that. A
// fast restart is so found before the heartbeat rule would lose the lease.
// The model takes the stream to break at the crash, as a killed process's
// connections are reset, and a watch of a provider down to fail at once.
func (s *sim) runDied(i int32, p *provider, r run) {
	if s.central != nil {
		s.omniLost(i, r)
		return
	}
	j := &s.jobs[r.job]
	if j.p == nil || j.live != r.epoch {
		return // a lease the requester no longer holds: fenced out, or ended
	}
	if j.loss < 0 || s.losses[j.loss].Detected >= 0 {
		j.loss = int32(len(s.losses))
		s.losses = append(s.losses, LossRecord{Job: int(r.job), Epoch: r.epoch, Provider: int(i),
			Crashed: time.Duration(s.now), Detected: -1, Replaced: -1})
	}
	req := s.requesters[j.requester].region
	back, _ := s.oneWay(p.region, req)
	fwd, _ := s.oneWay(req, p.region)
	s.q.push(event{at: s.now + back + int64(s.cfg.HeartbeatInterval) + fwd, kind: evRewatch, inc: p.inc, job: r.job, prov: i, id: r.epoch, msg: r.leaseID})
}

// onRewatch is a requester's watch of a lease that died with a provider
// reaching that provider: up again, it answers with the lease's end; still
// down, the watch fails, and the requester tries again a heartbeat interval
// later. The requester stops once its placement has let the lease go.
func (s *sim) onRewatch(e *event) {
	j := &s.jobs[e.job]
	if j.p == nil || j.live != e.id {
		return
	}
	p := &s.providers[e.prov]
	if p.up && p.inc != e.inc {
		s.reply(e.job, p, scheduler.ResultReceived{Provider: p.id, LeaseID: e.msg.(string), Epoch: e.id,
			State: pb.LeaseState_LEASE_STATE_FAILED, ExitCode: -1, Code: pb.Code_CODE_RUN_LOST, Detail: "provider restarted while the lease was running"})
		return
	}
	req := s.requesters[j.requester].region
	back, _ := s.oneWay(p.region, req)
	fwd, _ := s.oneWay(req, p.region)
	e.at = s.now + back + int64(s.cfg.HeartbeatInterval) + fwd
	s.q.push(*e)
}

func (s *sim) onRejoin(i int32) {
	p := &s.providers[i]
	c := &s.classes[p.class]
	cfg := *p.cfg
	cfg.Seed = seed32(s.churn)
	m, err := scheduler.NewMarket(cfg)
	if err != nil {
		panic(fmt.Sprintf("simulations: a market that was valid is not: %v", err))
	}
	p.market, p.up, p.upSince, p.serving = m, true, s.now, 0
	c.upCPU += c.sells
	s.upCPU += c.sells
	c.up++
	s.upCount++
	if c.c.Churn.Session > 0 { // a class without churn crashes only when a test says so
		s.q.push(event{at: s.now + s.expDur(s.churn, c.c.Churn.Session), kind: evCrash, prov: i})
	}
	if s.central != nil {
		s.omniFreed(i)
	}
}

func (s *sim) onSample() {
	smp := Sample{At: time.Duration(s.now), Placing: s.placing, Running: s.running, Done: s.ended, Up: s.upCount}
	if s.upCPU > 0 {
		smp.Utilisation = float64(s.committed) / float64(s.upCPU)
	}
	smp.ByClass = make([]float64, len(s.classes))
	var pubUsed, pubCap uint64
	for i, c := range s.classes {
		if c.upCPU > 0 {
			smp.ByClass[i] = float64(c.committed) / float64(c.upCPU)
		}
		if c.public {
			pubUsed += c.committed
			if i < s.hw { // the hardware: retailers sell slices of it
				pubCap += uint64(c.up) * c.c.Capacity.CPUMillis
			}
		}
	}
	smp.Public = math.NaN()
	if pubCap > 0 {
		smp.Public = float64(pubUsed) / float64(pubCap)
	}
	s.series = append(s.series, smp)
	if s.progress != nil {
		s.progress(time.Duration(s.now), s.ended, s.expected)
	}
	s.maybeStop()
	if !s.stopped {
		s.q.push(event{at: s.now + int64(s.sc.SampleEvery), kind: evSample})
	}
}

// ---- the result ----

func (s *sim) result() *Result {
	res := &Result{
		Scenario: s.sc.Name, Variant: s.variant, Placement: s.sc.Scheduler.Placement, Seed: s.seed,
		TraceHash: hex.EncodeToString(s.trace.sum()), Events: s.events, SimTime: time.Duration(s.now),
		BytesPerProvider: s.bytesPer, Jobs: s.records, Placements: s.placements, Series: s.series,
		Losses: s.losses, DeadAsks: s.deadAsks,
	}
	classes := make([]ClassRecord, len(s.classes))
	capSecs := make([]float64, len(s.classes))
	busy := make([]float64, len(s.classes))
	for i, c := range s.classes {
		classes[i] = ClassRecord{Class: c.c.Name, Currency: c.c.Pricing.Base.Currency, SubsidyRate: c.c.Subsidy}
	}
	res.Providers = make([]ProviderRecord, len(s.providers))
	for i := range s.providers {
		p := &s.providers[i]
		up := p.upNanos
		if p.up {
			up += s.now - p.upSince
		}
		for _, r := range p.runs { // still running when the run stopped
			p.busy += r.cpuMillisSeconds(s.now)
		}
		c := &s.sc.Classes[p.class]
		pr := ProviderRecord{ID: i, Class: c.Name, Region: s.regions[p.region], CPUMillis: c.Capacity.CPUMillis,
			Leases: int(p.leases), Crashes: int(p.crashes), DeadAsks: int(p.deadAsks), BusyCPUSecs: p.busy / 1000,
			Revenue: p.revenue, Subsidy: p.subsidy, Currency: c.Pricing.Base.Currency,
			UpSecs: time.Duration(up).Seconds(), Wholesale: p.wholesale}
		pr.Operator, _ = p.cfg.Labels.Get(scheduler.LabelOperator)
		if r := s.retailerOf(p); r != nil {
			pr.Retailer, pr.Site = true, int(r.site)
			classes[p.class].Site = s.sc.Classes[s.providers[r.site].class].Name
		}
		cs := float64(c.Capacity.CPUMillis) / 1000 * time.Duration(up).Seconds()
		if cs > 0 {
			pr.Utilisation = pr.BusyCPUSecs / cs
		}
		res.Providers[i] = pr
		cr := &classes[p.class]
		cr.Providers++
		cr.Leases += pr.Leases
		cr.Revenue += pr.Revenue
		cr.Subsidy += pr.Subsidy
		cr.Wholesale += pr.Wholesale
		capSecs[p.class] += cs
		busy[p.class] += pr.BusyCPUSecs
	}
	for i := range classes {
		if capSecs[i] > 0 {
			classes[i].Utilisation = busy[i] / capSecs[i]
		}
	}
	res.Classes = classes
	return res
}

// ---- draws ----

func (s *sim) expDur(r *rand.Rand, mean time.Duration) int64 {
	return max(1, int64(r.ExpFloat64()*float64(mean)))
}

func (s *sim) draw(d Dist) time.Duration {
	m := float64(d.Mean)
	var x float64
	switch d.Kind {
	case "fixed":
		x = m
	case "uniform":
		x = 2 * m * s.work.Float64()
	case "lognormal":
		sigma := d.Sigma
		x = math.Exp(math.Log(m) - sigma*sigma/2 + sigma*s.work.NormFloat64())
	default:
		x = m * s.work.ExpFloat64()
	}
	return max(time.Millisecond, time.Duration(x))
}

func last(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[len(xs)-1]
}

// pick draws an index from cumulative weights.
func pick(r *rand.Rand, cumul []float64) int {
	if len(cumul) <= 1 {
		return 0
	}
	x := r.Float64() * cumul[len(cumul)-1]
	i, _ := slices.BinarySearch(cumul, x)
	return min(i, len(cumul)-1)
}

func pickWeighted(r *rand.Rand, n int, weight func(int) float64) int {
	var total float64
	for i := range n {
		total += weight(i)
	}
	x := r.Float64() * total
	for i := range n {
		x -= weight(i)
		if x < 0 {
			return i
		}
	}
	return n - 1
}
