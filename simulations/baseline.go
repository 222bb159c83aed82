package simulations

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/scheduler"
)

// The placement mechanisms a scenario may run (Scheduler.Placement): cuivre's
// own, and three baselines to measure it against (docs/SIMULATOR.md,
// "Baselines"). The baselines live here, in the simulator, and leave the
// scheduler package alone: random and sparrow drive the same
// scheduler.Placement as cuivre and differ only in what their lookups return
// and how they rank; omniscient has no Placement at all.
const (
	// PlacementCuivre is the daemon's placement: each requester's
	// scheduler.Placement, candidates from the DHT model's facet lookups.
	PlacementCuivre = "cuivre"
	// PlacementOmniscient is a central scheduler that knows every
	// provider's free capacity, labels and price exactly and at once,
	// decides at no cost, and keeps jobs that fit nowhere in one FIFO
	// queue, backfilled, until their deadline.
	PlacementOmniscient = "omniscient"
	// PlacementRandom asks one provider a round, drawn uniformly from every
	// findable provider that meets the job's constraints, and retries with
	// the scheduler's back-off until the deadline.
	PlacementRandom = "random"
	// PlacementSparrow is Sparrow's batch sampling (Ousterhout et al.,
	// SOSP 2013): d x m probes drawn uniformly from every findable provider
	// that meets the job's constraints, the m slots placed on the least
	// loaded; no late binding.
	PlacementSparrow = "sparrow"
)

// Placements lists the placement mechanisms, cuivre's first.
var Placements = []string{PlacementCuivre, PlacementOmniscient, PlacementRandom, PlacementSparrow}

// setPlacement sets the run up for its placement mechanism: random asks
// one candidate a round (d = 1), sparrow ranks by load, both sample
// uniformly; omniscient gets its central scheduler.
func (s *sim) setPlacement() error {
	switch s.sc.Scheduler.Placement {
	case "", PlacementCuivre:
		s.sc.Scheduler.Placement = PlacementCuivre
	case PlacementRandom:
		s.uniform = true
		s.cfg.D = 1
	case PlacementSparrow:
		s.uniform = true
		s.cfg.Policy = scheduler.LeastLoaded
	case PlacementOmniscient:
		s.central = &central{}
	default:
		return fmt.Errorf("unknown placement %q: use one of %s", s.sc.Scheduler.Placement, strings.Join(Placements, ", "))
	}
	s.pops = map[string][]int32{}
	return nil
}

// population returns every provider whose labels meet the constraints, in
// index order, up or not: what a perfect index of the federation's records
// would list for them. It is computed once per set of constraints.
func (s *sim) population(cs []scheduler.Selector) []int32 {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Key)
		b.WriteByte(0)
		b.WriteString(strconv.Itoa(int(c.Op)))
		for _, v := range c.Values {
			b.WriteByte(1)
			b.WriteString(v)
		}
		b.WriteByte(2)
	}
	key := b.String()
	if pop, ok := s.pops[key]; ok {
		return pop
	}
	pop := []int32{}
	for i := range s.providers {
		if matches(cs, s.providers[i].cfg.Labels) {
			pop = append(pop, int32(i))
		}
	}
	s.pops[key] = pop
	return pop
}

func matches(cs []scheduler.Selector, l scheduler.Labels) bool {
	for _, c := range cs {
		if !c.Matches(l) {
			return false
		}
	}
	return true
}

// uniformLookup answers a placement's lookup for random and sparrow: each
// key gets, at once, a uniform sample of Want providers among every
// findable one (up, or gone for less than the record TTL) that meets the
// job's constraints. No hop is paid, no shard or cache narrows the sample:
// this is the known list of workers Sparrow's schedulers sample from. The
// requester's negative cache still filters it (deliver), as in cuivre.
func (s *sim) uniformLookup(id int32, a scheduler.Lookup) {
	pop := s.population(s.jobs[id].p.Job().Constraints)
	for _, k := range a.Keys {
		peers := s.sampleOf(pop, a.Want)
		s.q.push(event{at: s.now, kind: evToJob, job: id, msg: scheduler.CandidatesFound{Key: k, Peers: s.ids(peers), Done: true}})
	}
}

// ---- the omniscient scheduler ----

// central is the omniscient scheduler: one queue of the jobs that fit
// nowhere, in submission order.
//
// What it knows is exact and current: every provider's market (free
// capacity, labels, load and so price) as it stands, with no lookup, offer
// or message. Its decisions cost nothing: a job reaches it at submission,
// and it commits a lease in the chosen provider's market at once, so its
// ledger is never stale. Only the lease itself travels: the requester
// learns it was accepted one round trip (and the provider's service time)
// later, and the run starts when the lease reaches the provider plus the
// class's start delay; a lease or answer lost is sent again after the
// lease timeout.
//
// The queue is FIFO with backfilling: a job that fits somewhere is placed
// at once even if older jobs wait, and capacity freed on a provider goes
// to the oldest waiting jobs that fit there. With price ceilings,
// constraints and sizes that differ, strict FIFO would leave capacity idle
// behind a job that fits nowhere (head-of-line blocking) and measure that,
// not what knowledge buys; a baseline meant as the best a scheduler can do
// must not idle while a job that fits waits. Its invariant: after each
// event, no waiting job fits on any provider up, so that freed capacity on
// provider P can only help jobs onto P.
type central struct {
	queue    []int32    // waiting jobs, oldest (lowest ID) first
	requeued []int32    // jobs whose lease died in the crash being handled
	cands    []omniCand // scratch: the fitting providers and what they would quote
}

// omniCand is what the scan keeps of a fitting provider: what ranking reads
// of its offer. A whole Offer per provider scanned would be copied tens of
// thousands of times per arrival in a federation of 10^4.
type omniCand struct {
	pi    int32
	load  uint32
	total uint64
	price scheduler.Price
}

// omniJob is what the omniscient scheduler keeps of a job until it ends.
type omniJob struct {
	spec     scheduler.Job
	deadline int64  // placement deadline
	queuedAt int64  // when it joined the queue; -1 if it is not waiting
	lost     int    // leases lost with their provider
	epochs   uint64 // leases made: the current one's epoch
	prov     int32  // the provider of its current lease
	quoted   scheduler.Amount
}

func (s *sim) omniArrive(id int32, spec scheduler.Job, deadline int64) {
	j := &s.jobs[id]
	j.o = &omniJob{spec: spec, deadline: deadline, queuedAt: -1, prov: -1}
	s.q.push(event{at: deadline, kind: evDeadline, job: id})
	if !s.omniPlace(id) {
		s.omniEnqueue(id)
	}
}

func (s *sim) omniEnqueue(id int32) {
	c := s.central
	i, found := slices.BinarySearch(c.queue, id)
	if !found {
		c.queue = slices.Insert(c.queue, i, id)
	}
	s.jobs[id].o.queuedAt = s.now
}

// omniDequeue takes a job off the queue and counts its time there as
// waiting for capacity.
func (s *sim) omniDequeue(id int32) {
	c := s.central
	if i, found := slices.BinarySearch(c.queue, id); found {
		c.queue = slices.Delete(c.queue, i, i+1)
	}
	s.omniWaited(id)
}

func (s *sim) omniWaited(id int32) {
	o := s.jobs[id].o
	if o.queuedAt >= 0 {
		s.records[id].CapacityWait += time.Duration(s.now - o.queuedAt)
		o.queuedAt = -1
	}
}

// omniFits returns what provider pi's market would quote for spec now,
// and whether it would quote at all: up, labels that meet the constraints,
// the currency of the ceiling, room for the resources, and a total within
// the ceiling at the load the job would bring, priced as Market.Quote
// prices. The lease is committed through the market itself, which checks
// all of it again.
func (s *sim) omniFits(spec *scheduler.Job, pi int32) (omniCand, bool) {
	p := &s.providers[pi]
	if !p.up || !matches(spec.Constraints, p.cfg.Labels) {
		return omniCand{}, false
	}
	pricing := &p.cfg.Pricing
	if c := spec.MaxPrice.Currency; c != "" && c != pricing.Base.Currency {
		return omniCand{}, false
	}
	st := p.market.State()
	if !spec.Resources.Fits(st.Free) {
		return omniCand{}, false
	}
	used := st.Committed.Add(st.Reserved).Add(spec.Resources)
	load := scheduler.UtilisationPermille(used, st.Capacity)
	price := pricing.PriceAt(load)
	total, err := price.Cost(spec.Resources, spec.Timeout)
	if err != nil || spec.MaxPrice.Currency != "" && total > spec.MaxPrice.Nanos {
		return omniCand{}, false
	}
	return omniCand{pi: pi, load: load, total: total, price: price}, true
}

// omniPlace places a job on the best provider that fits it, ranked by the
// scenario's policy over every fitting provider's offer (ties drawn at
// random), and reports whether one did.
func (s *sim) omniPlace(id int32) bool {
	c := s.central
	spec := &s.jobs[id].o.spec
	c.cands = c.cands[:0]
	for _, pi := range s.population(spec.Constraints) {
		if o, ok := s.omniFits(spec, pi); ok {
			c.cands = append(c.cands, o)
		}
	}
	for len(c.cands) > 0 {
		k := s.omniBest(spec)
		if s.omniLease(id, c.cands[k].pi) {
			return true
		}
		// The market disagreed with omniFits: take the next best.
		c.cands = slices.Delete(c.cands, k, k+1)
	}
	return false
}

// omniBest returns the index of the best of central.cands under the
// scenario's policy, a tie drawn at random. Each is scored as the offer its
// market would make.
func (s *sim) omniBest(spec *scheduler.Job) int {
	cands := s.central.cands
	rc := scheduler.RankContext{Job: spec, MinTotal: cands[0].total, MaxTotal: cands[0].total}
	for i := range cands {
		rc.MinTotal = min(rc.MinTotal, cands[i].total)
		rc.MaxTotal = max(rc.MaxTotal, cands[i].total)
	}
	best, ties := -1, 0
	var bestScore int64
	var o scheduler.Offer
	for i := range cands {
		c := &cands[i]
		p := &s.providers[c.pi]
		o = scheduler.Offer{Provider: p.id, Resources: spec.Resources, Price: c.price,
			Total: scheduler.Amount{Currency: c.price.Currency, Nanos: c.total}, LoadPermille: c.load,
			Labels: p.cfg.Labels, Capacity: p.cfg.Capacity}
		var score int64
		for _, t := range s.cfg.Policy.Terms {
			score += t.Weight * t.Scorer.Score(&o, &rc)
		}
		switch {
		case best < 0 || score > bestScore:
			best, bestScore, ties = i, score, 1
		case score == bestScore:
			ties++
			if s.place.IntN(ties) == 0 { // reservoir: each tie kept with chance 1/ties
				best = i
			}
		}
	}
	return best
}

// omniLease commits a lease of job id in provider pi's market now, through
// Quote and Commit as a requester's offer and lease would, and sends it:
// the run starts when it reaches the provider, the requester learns of it
// a round trip after. It reports whether the market took it.
func (s *sim) omniLease(id int32, pi int32) bool {
	j := &s.jobs[id]
	o := j.o
	p := &s.providers[pi]
	now := time.Unix(0, s.now)
	epoch := o.epochs + 1
	req := scheduler.Request{
		Requester: o.spec.Requester, JobCID: o.spec.CID, Executor: o.spec.Executor, Resources: o.spec.Resources,
		Timeout: o.spec.Timeout, Constraints: o.spec.Constraints, MaxPrice: o.spec.MaxPrice,
		ExpiresAt: now.Add(time.Second), Nonce: o.spec.CID + "." + strconv.FormatUint(epoch, 10),
	}
	offer, err := p.market.Quote(now, req)
	if err != nil {
		return false
	}
	lease := scheduler.Lease{ID: o.spec.CID, Provider: p.id, Requester: o.spec.Requester, OfferNonce: offer.Nonce,
		JobCID: o.spec.CID, Epoch: epoch, ExpiresAt: now.Add(s.cfg.StartTimeout), Resources: o.spec.Resources, Timeout: o.spec.Timeout}
	if err := p.market.Commit(now, lease); err != nil {
		panic(fmt.Sprintf("simulations: the omniscient scheduler's lease of an offer just made: %v", err))
	}
	s.omniWaited(id)
	j.live, o.epochs, o.prov, o.quoted = epoch, epoch, pi, offer.Total
	cpu := o.spec.Resources.CPUMillis
	p.runs = append(p.runs, run{job: id, leaseID: lease.ID, epoch: epoch, cpu: cpu, since: s.now})
	p.leases++
	s.commit(p, int64(cpu))
	arrive, ack := s.omniExchange(s.requesters[j.requester].region, p)
	c := &s.sc.Classes[p.class]
	s.q.push(event{at: s.now + arrive + int64(c.StartDelay) + int64(j.run), kind: evEnd, inc: p.inc, job: id, prov: pi, id: epoch})
	s.q.push(event{at: s.now + ack, kind: evToJob, job: id, msg: scheduler.LeaseAccepted{Provider: p.id, LeaseID: lease.ID, Epoch: epoch}})
	return true
}

// omniExchange draws the lease's way from the requester's region to p and
// its answer's way back: when the lease arrives (after p's service time)
// and when the answer does, from now. A lease or answer lost is sent again
// after the lease timeout, as a requester does; the provider answers a
// repeated lease at once.
func (s *sim) omniExchange(req int16, p *provider) (arrive, ack int64) {
	c := &s.sc.Classes[p.class]
	service := int64(c.ServiceTime.Mean)
	if !c.LeaseTime.isZero() {
		service = int64(c.LeaseTime.Mean)
	}
	arrive = -1
	for t := int64(0); ; t += int64(s.cfg.LeaseTimeout) {
		d, lost := s.oneWay(req, p.region)
		if lost {
			continue
		}
		if arrive < 0 {
			arrive = t + d + service
		}
		back, lost := s.oneWay(p.region, req)
		if !lost {
			return arrive, t + d + service + back
		}
	}
}

// omniFreed gives capacity freed on provider pi (a run ended, the provider
// came back) to the oldest waiting jobs that fit there. By the queue's
// invariant no other provider can have become a place for them.
func (s *sim) omniFreed(pi int32) {
	c := s.central
	if p := &s.providers[pi]; len(c.queue) == 0 || !p.up || p.market.State().Free.CPUMillis == 0 {
		return
	}
	kept := c.queue[:0]
	for _, id := range c.queue {
		o := s.jobs[id].o
		if _, ok := s.omniFits(&o.spec, pi); ok && s.omniLease(id, pi) {
			continue
		}
		kept = append(kept, id)
	}
	clear(c.queue[len(kept):])
	c.queue = kept
}

// omniDeadline fails a job still waiting at its placement deadline, "not
// placed", as a Placement's deadline does.
func (s *sim) omniDeadline(id int32) {
	j := &s.jobs[id]
	if j.o == nil || j.o.queuedAt < 0 {
		return // placed, or ended
	}
	s.omniDequeue(id)
	s.omniFinish(id, scheduler.JobFailed, scheduler.ReasonNotPlaced,
		fmt.Sprintf("not placed within %s: no provider up had room for it within its constraints and ceiling", time.Duration(j.o.deadline)-s.records[id].Submitted))
}

// omniLost follows a lease that died with provider pi: the omniscient
// scheduler knows at once, and the job goes back to placing under a new
// epoch (omniRequeue, once the crash is done), or fails past its budget of
// lost leases, as a Placement does.
func (s *sim) omniLost(pi int32, r run) {
	j := &s.jobs[r.job]
	if j.o == nil || j.live != r.epoch {
		return
	}
	j.loss = int32(len(s.losses))
	s.losses = append(s.losses, LossRecord{Job: int(r.job), Epoch: r.epoch, Provider: int(pi),
		Crashed: time.Duration(s.now), Detected: time.Duration(s.now), Replaced: -1})
	j.live = 0
	j.o.prov = -1
	j.o.lost++
	if j.o.lost > s.cfg.MaxReschedules {
		s.omniFinish(r.job, scheduler.JobFailed, scheduler.ReasonLeasesLost,
			fmt.Sprintf("lost %d leases, the last on %s", j.o.lost, s.providers[pi].id))
		return
	}
	s.setState(r.job, scheduler.JobPlacing)
	j.since = s.now
	s.central.requeued = append(s.central.requeued, r.job)
}

// omniRequeue places again the jobs whose leases a crash took, once the
// crashed provider is down: at once where they fit, else in the queue. As
// a Placement re-placing a lost lease, one past its deadline gets this one
// chance.
func (s *sim) omniRequeue() {
	c := s.central
	for _, id := range c.requeued {
		switch {
		case s.jobs[id].o == nil, s.omniPlace(id):
		case s.now >= s.jobs[id].o.deadline:
			s.omniFinish(id, scheduler.JobFailed, scheduler.ReasonNotPlaced, "lease lost past the placement deadline, and no provider up had room for it")
		default:
			s.omniEnqueue(id)
		}
	}
	c.requeued = c.requeued[:0]
}

// omniResult carries a run's result to its requester. The omniscient
// scheduler knows when a run ends, so a result is never lost to it; it
// still takes its way back.
func (s *sim) omniResult(id int32, p *provider, ev scheduler.ResultReceived) {
	d, _ := s.oneWay(p.region, s.requesters[s.jobs[id].requester].region)
	s.q.push(event{at: s.now + d, kind: evToJob, job: id, msg: ev})
}

// omniDeliver takes a message reaching an omniscient job's requester: its
// lease accepted, or its result.
func (s *sim) omniDeliver(id int32, ev scheduler.Event) {
	j := &s.jobs[id]
	if j.o == nil {
		return
	}
	switch m := ev.(type) {
	case scheduler.LeaseAccepted:
		if m.Epoch == j.live {
			s.omniPlaced(id)
		}
	case scheduler.ResultReceived:
		if m.Epoch != j.live {
			return
		}
		s.omniPlaced(id) // a result may overtake the lease's answer
		if m.State == pb.LeaseState_LEASE_STATE_SUCCEEDED {
			s.omniFinish(id, scheduler.JobSucceeded, scheduler.ReasonNone, "")
			return
		}
		s.omniFinish(id, scheduler.JobFailed, scheduler.ReasonRunFailed, fmt.Sprintf("slot 0 failed on %s: %s", m.Provider, m.Detail))
	}
}

// omniPlaced records the job's current lease accepted, as report does for
// a Placement's slot running.
func (s *sim) omniPlaced(id int32) {
	j := &s.jobs[id]
	if j.epoch == j.live {
		return // told already
	}
	rec := &s.records[id]
	s.lossReplaced(j, j.live)
	j.epoch = j.live
	pv := &s.providers[j.o.prov]
	pr := PlacementRecord{Job: int(id), Epoch: j.live, Provider: int(j.o.prov), At: time.Duration(s.now),
		Latency: time.Duration(s.now - j.since), Quoted: float64(j.o.quoted.Nanos) / 1e9, Currency: j.o.quoted.Currency,
		Class: s.sc.Classes[pv.class].Name, Region: s.regions[pv.region]}
	s.placements = append(s.placements, pr)
	rec.Class, rec.Currency = pr.Class, pr.Currency
	if rec.Placed < 0 {
		rec.Placed = time.Duration(s.now)
	}
	rec.Epochs = j.live
	s.setState(id, scheduler.JobRunning)
}

// omniFinish ends a job, as report does for a Placement's last status.
func (s *sim) omniFinish(id int32, st scheduler.JobState, code scheduler.Reason, reason string) {
	j := &s.jobs[id]
	rec := &s.records[id]
	s.setState(id, st)
	rec.Ended = time.Duration(s.now)
	rec.Reason = reason
	if st != scheduler.JobSucceeded {
		rec.Code = code.String()
	}
	j.o, j.live = nil, 0
	s.active--
	s.ended++
	s.nextInTurn()
	s.maybeStop()
}

// setState moves a job to a state, keeping the counts of jobs placing and
// running, and its record's state.
func (s *sim) setState(id int32, st scheduler.JobState) {
	j := &s.jobs[id]
	if j.state != st {
		s.count(j.state, -1)
		s.count(st, +1)
		j.state = st
	}
	s.records[id].State = st.String()
}
