package scheduler

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// world is a test harness driving the core, beside the node and the
// simulator (docs/ARCHITECTURE.md): providers holding real Markets, a facet index standing in for the
// DHT, one Placement per job, and a queue of messages in flight that a script
// or a property test delivers, drops, or reorders.
type world struct {
	now       time.Time
	providers []*simProvider // sorted by name
	index     map[string][]string
	jobs      []*simJob
	queue     []message
	timers    []simTimer
	log       []string          // what happened, one line each
	accepted  map[string]string // leaseID/epoch -> provider that committed it
}

type simProvider struct {
	name   string
	market *Market
	dead   bool    // crashed: sends nothing, receives nothing
	cut    bool    // partitioned from the requester: messages both ways are lost
	leases []Lease // committed here and not ended
}

type simJob struct {
	name string
	p    *Placement
	last Status // the last status it reported
}

// message is an event in flight to a job (to == "") or an action in flight to
// a provider.
type message struct {
	job    *simJob
	to     string // provider, for actions
	action Action
	event  Event
}

type simTimer struct {
	job *simJob
	id  uint64
	at  time.Time
}

var epoch0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newWorld() *world {
	return &world{now: epoch0, index: map[string][]string{}, accepted: map[string]string{}}
}

func (w *world) logf(format string, args ...any) { w.log = append(w.log, fmt.Sprintf(format, args...)) }

// flush returns the log and empties it.
func (w *world) flush() string {
	s := strings.Join(w.log, "\n")
	w.log = w.log[:0]
	return s
}

func (w *world) provider(name string) *simProvider {
	i, ok := slices.BinarySearchFunc(w.providers, name, func(p *simProvider, n string) int { return cmp.Compare(p.name, n) })
	if !ok {
		return nil
	}
	return w.providers[i]
}

func (w *world) addProvider(cfg MarketConfig) error {
	m, err := NewMarket(cfg)
	if err != nil {
		return err
	}
	p := &simProvider{name: cfg.Provider, market: m}
	i, _ := slices.BinarySearchFunc(w.providers, p.name, func(p *simProvider, n string) int { return cmp.Compare(p.name, n) })
	w.providers = slices.Insert(w.providers, i, p)
	for _, k := range ProviderKeys(cfg.Provider, cfg.Labels, cfg.Executors, cfg.Capacity) {
		w.index[k.String()] = append(w.index[k.String()], cfg.Provider)
	}
	return nil
}

func (w *world) submit(name string, cfg Config, j Job, seed uint64) *simJob {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	sj := &simJob{name: name, p: NewPlacement(cfg, j, s)}
	w.jobs = append(w.jobs, sj)
	w.step(sj, Start{})
	return sj
}

// step feeds an event to a job and routes its actions.
func (w *world) step(j *simJob, ev Event) {
	for _, a := range j.p.Step(w.now, ev) {
		w.route(j, a)
	}
}

func (w *world) route(j *simJob, a Action) {
	switch a := a.(type) {
	case Lookup:
		var keys []string
		for _, k := range a.Keys {
			keys = append(keys, fmt.Sprintf("%s=%s/%d", k.Facet, k.Value, k.Shard))
		}
		w.logf("%s: lookup %s want=%d", j.name, strings.Join(keys, " "), a.Want)
		w.queue = append(w.queue, message{job: j, action: a})
	case RequestOffer:
		w.logf("%s: request-offer %s", j.name, a.Provider)
		w.queue = append(w.queue, message{job: j, to: a.Provider, action: a})
	case SendLease:
		w.logf("%s: send-lease %s epoch=%d", j.name, a.Provider, a.Lease.Epoch)
		w.queue = append(w.queue, message{job: j, to: a.Provider, action: a})
	case DeclineOffer:
		w.logf("%s: decline %s", j.name, a.Provider)
		w.queue = append(w.queue, message{job: j, to: a.Provider, action: a})
	case CancelLease:
		w.logf("%s: cancel-lease %s epoch=%d", j.name, a.Provider, a.Epoch)
		w.queue = append(w.queue, message{job: j, to: a.Provider, action: a})
	case SetTimer:
		w.timers = append(w.timers, simTimer{j, a.ID, a.At})
	case Report:
		j.last = a.Status
		w.logf("%s: report %s", j.name, describeStatus(a.Status))
	}
}

func describeStatus(s Status) string {
	var b strings.Builder
	b.WriteString(s.State.String())
	if s.Message != "" && s.Message != s.State.String() {
		fmt.Fprintf(&b, " (%s)", s.Message)
	}
	for i, sl := range s.Slots {
		if sl.Provider != "" || sl.State != SlotPending {
			fmt.Fprintf(&b, " [%d %s %s e%d]", i, sl.State, orDash(sl.Provider), sl.Epoch)
		}
	}
	if s.Reason != "" && s.State.Final() {
		fmt.Fprintf(&b, ": %s", s.Reason)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// deliver delivers message i of the queue.
func (w *world) deliver(i int) {
	m := w.queue[i]
	w.queue = slices.Delete(w.queue, i, i+1)
	if m.event != nil {
		if from := eventSender(m.event); from != "" {
			if p := w.provider(from); p != nil && p.cut {
				w.logf("%s: %T from %s lost: partitioned", m.job.name, m.event, from)
				return
			}
		}
		w.step(m.job, m.event)
		return
	}
	switch a := m.action.(type) {
	case Lookup:
		for _, k := range a.Keys {
			peers := w.index[k.String()]
			w.queue = append(w.queue, message{job: m.job, event: CandidatesFound{Key: k, Peers: peers[:min(len(peers), a.Want)], Done: true}})
		}
		return
	}
	p := w.provider(m.to)
	if p == nil || p.dead || p.cut {
		w.logf("%s: %s to %s lost", m.job.name, kindOf(m.action), m.to)
		return
	}
	switch a := m.action.(type) {
	case RequestOffer:
		o, err := p.market.Quote(w.now, a.Request)
		if err != nil {
			w.queue = append(w.queue, message{job: m.job, event: OfferRefused{Provider: p.name, RequestNonce: a.Request.Nonce, Code: protocol.CodeOf(err), Reason: err.Error(), RetryAfter: protocol.RetryAfterOf(err)}})
			return
		}
		w.queue = append(w.queue, message{job: m.job, event: OfferReceived{o}})
	case SendLease:
		if err := p.market.Commit(w.now, a.Lease); err != nil {
			w.queue = append(w.queue, message{job: m.job, event: LeaseRejected{p.name, a.Lease.ID, a.Lease.Epoch, protocol.CodeOf(err), err.Error()}})
			return
		}
		key := fmt.Sprintf("%x/%d", a.Lease.ID, a.Lease.Epoch)
		if prev, ok := w.accepted[key]; ok && prev != p.name {
			panic(fmt.Sprintf("lease %s held by %s and %s in the same epoch", key, prev, p.name))
		}
		w.accepted[key] = p.name
		p.leases = slices.DeleteFunc(p.leases, func(l Lease) bool { return l.ID == a.Lease.ID && l.Epoch <= a.Lease.Epoch })
		p.leases = append(p.leases, a.Lease)
		w.queue = append(w.queue, message{job: m.job, event: LeaseAccepted{p.name, a.Lease.ID, a.Lease.Epoch}})
	case DeclineOffer:
		_ = p.market.Decline(w.now, a.OfferNonce)
	case CancelLease:
		w.endLease(p, a.LeaseID, a.Epoch)
	}
}

// eventSender returns the provider an event comes from, if any.
func eventSender(ev Event) string {
	switch ev := ev.(type) {
	case OfferReceived:
		return ev.Offer.Provider
	case OfferRefused:
		return ev.Provider
	case LeaseAccepted:
		return ev.Provider
	case LeaseRejected:
		return ev.Provider
	case Heartbeat:
		return ev.Provider
	case ResultReceived:
		return ev.Provider
	}
	return ""
}

func kindOf(a Action) string {
	switch a.(type) {
	case RequestOffer:
		return "offer request"
	case SendLease:
		return "lease"
	case DeclineOffer:
		return "decline"
	case CancelLease:
		return "cancel"
	}
	return fmt.Sprintf("%T", a)
}

func (w *world) endLease(p *simProvider, leaseID string, epoch uint64) bool {
	k := slices.IndexFunc(p.leases, func(l Lease) bool { return l.ID == leaseID && l.Epoch == epoch })
	if k < 0 {
		return false
	}
	p.leases = slices.Delete(p.leases, k, k+1)
	if _, err := p.market.Release(w.now, leaseID, epoch); err != nil {
		panic(fmt.Sprintf("release of a committed lease: %v", err))
	}
	return true
}

// deliverAll delivers the queue in order, including what deliveries add,
// until it is empty.
func (w *world) deliverAll() {
	for len(w.queue) > 0 {
		w.deliver(0)
	}
}

// deliverTo delivers, in order, the messages in flight to or from a
// provider ("dht": the lookups and their answers), n of them or, with n < 0,
// until none is left, including those their deliveries add; the others stay
// in flight.
func (w *world) deliverTo(name string, n int) {
	for ; n != 0; n-- {
		i := slices.IndexFunc(w.queue, func(m message) bool {
			if name == "dht" {
				_, found := m.event.(CandidatesFound)
				return found || m.to == "" && m.action != nil
			}
			return m.to == name || m.event != nil && eventSender(m.event) == name
		})
		if i < 0 {
			return
		}
		w.deliver(i)
	}
}

// advance moves the clock by d, firing due timers in time order.
func (w *world) advance(d time.Duration) {
	end := w.now.Add(d)
	for {
		slices.SortStableFunc(w.timers, func(a, b simTimer) int { return a.at.Compare(b.at) })
		if len(w.timers) == 0 || w.timers[0].at.After(end) {
			break
		}
		t := w.timers[0]
		w.timers = w.timers[1:]
		w.now = t.at
		w.step(t.job, TimerFired{t.id})
	}
	w.now = end
}

// beat makes every live provider send a heartbeat for each lease it runs.
func (w *world) beat() {
	for _, p := range w.providers {
		if p.dead || p.cut {
			continue
		}
		for _, l := range p.leases {
			if j := w.jobOf(l.JobCID); j != nil {
				w.queue = append(w.queue, message{job: j, event: Heartbeat{p.name, l.ID, l.Epoch, pb.LeaseState_LEASE_STATE_RUNNING}})
			}
		}
	}
}

// finish makes a provider end its leases with a result.
func (w *world) finish(p *simProvider, exit int32, output string) {
	for _, l := range slices.Clone(p.leases) {
		j := w.jobOf(l.JobCID)
		if j == nil {
			continue
		}
		st := pb.LeaseState_LEASE_STATE_SUCCEEDED
		if exit != 0 {
			st = pb.LeaseState_LEASE_STATE_FAILED
		}
		w.endLease(p, l.ID, l.Epoch)
		w.queue = append(w.queue, message{job: j, event: ResultReceived{Provider: p.name, LeaseID: l.ID, Epoch: l.Epoch, State: st, ExitCode: exit, OutputCID: output}})
	}
}

func (w *world) jobOf(cid string) *simJob {
	for _, j := range w.jobs {
		if j.p.Job().CID == cid {
			return j
		}
	}
	return nil
}

// checkLedgers panics if a market over-commits.
func (w *world) checkLedgers() error {
	for _, p := range w.providers {
		st := p.market.State()
		if !st.Committed.Add(st.Reserved).Fits(st.Capacity) {
			return fmt.Errorf("%s over-commits: committed %+v + reserved %+v > capacity %+v", p.name, st.Committed, st.Reserved, st.Capacity)
		}
	}
	return nil
}

// testJob builds a Job from a YAML spec, resolving a module path to the CID of
// its name.
func testJob(name, spec string, requester string) (Job, error) {
	s, err := jobspec.ParseJobSpecFile(name, []byte(spec))
	if err != nil {
		return Job{}, err
	}
	pj, err := s.Job(func(path string) (cid.Cid, error) { return wire.SumCID([]byte(path)), nil })
	if err != nil {
		return Job{}, err
	}
	pj.Nonce = []byte(fmt.Sprintf("%016s", name))
	c, err := wire.JobCID(pj)
	if err != nil {
		return Job{}, err
	}
	return JobFromPB(string(c.Bytes()), requester, pj)
}

// rngFor returns a seeded source for property tests.
func rngFor(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
