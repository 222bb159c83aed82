package simulations

import (
	"slices"
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/scheduler"
)

// lookupSim is a federation of equal providers with its queue emptied, and
// n placeholder jobs of requester 0 (ended: what is handed to them falls on
// the floor), for driving lookups by hand.
func lookupSim(t *testing.T, jobs int) *sim {
	t.Helper()
	sc := equalFederation(8)
	sc.Discovery.CacheTTL = 10 * time.Second
	s, err := newSim(sc, nil, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	s.q = queue{}
	for range jobs {
		s.jobs = append(s.jobs, job{requester: 0, loss: -1, waitFrom: -1})
	}
	return s
}

// lookups counts the DHT lookups in the queue, and those of them that
// refresh a stale answer (no job waits for them).
func lookups(s *sim) (all, refreshes int) {
	for _, e := range s.q.h {
		if e.kind == evLookup {
			all++
			if e.job < 0 {
				refreshes++
			}
		}
	}
	return all, refreshes
}

// drain processes every event due by at, then sets the clock to at.
func drain(s *sim, at time.Duration) {
	for s.q.len() > 0 && s.q.h[0].at <= int64(at) {
		s.next()
	}
	s.now = int64(at)
}

// TestLookupCache holds the simulated requester's cache to the daemon's
// rules (node/requester/lookup.go): concurrent misses share one lookup; an
// answer is fresh for the TTL from the lookup's start, then served stale
// while one refresh runs behind it, for up to CandidateStaleFor; an empty
// answer of a lookup that ran to its end is kept EmptyCandidateTTL.
func TestLookupCache(t *testing.T) {
	s := lookupSim(t, 4)
	var key protocol.FacetKey
	for k, ps := range s.index {
		if len(ps) >= 2 {
			key = k
			break
		}
	}
	s.lookup(0, 0, key, 16, 1)
	s.lookup(1, 0, key, 16, 1)
	if n, _ := lookups(s); n != 1 {
		t.Fatalf("two misses of one key started %d lookups, want 1 shared", n)
	}
	e := s.requesters[0].cache[key]
	if len(e.waiters) != 1 || e.waiters[0] != 1 {
		t.Fatalf("waiters %v, want job 1", e.waiters)
	}
	drain(s, 5*time.Second)
	if e.busy || len(e.waiters) != 0 || len(e.peers) < 2 || e.expires != int64(10*time.Second) {
		t.Fatalf("after the lookup: %+v, want its providers until 10 s after its start", *e)
	}
	s.lookup(2, 0, key, 16, 1)
	if n, _ := lookups(s); n != 0 {
		t.Fatal("a fresh answer was looked up again")
	}
	drain(s, 11*time.Second)
	s.lookup(2, 0, key, 16, 1)
	s.lookup(3, 0, key, 16, 1)
	if n, r := lookups(s); n != 1 || r != 1 {
		t.Fatalf("a stale answer twice: %d lookups (%d refreshes), want one refresh behind it", n, r)
	}
	drain(s, 12*time.Second)
	if e.expires != int64(21*time.Second) {
		t.Fatalf("refreshed at 11 s: fresh until %v, want 21s", time.Duration(e.expires))
	}
	drain(s, 21*time.Second+scheduler.CandidateStaleFor+time.Millisecond)
	s.lookup(0, 0, key, 16, 1)
	if n, r := lookups(s); n != 1 || r != 0 {
		t.Fatalf("an answer stale by more than %v: %d lookups (%d refreshes), want one a job waits for", scheduler.CandidateStaleFor, n, r)
	}

	// A key no one announces: the lookup runs to its end, its empty answer
	// kept a second, then looked up again.
	empty := protocol.FacetKey{Facet: protocol.FacetJurisdiction, Value: "zz"}
	s = lookupSim(t, 1)
	s.lookup(0, 0, empty, 16, 1)
	drain(s, 500*time.Millisecond)
	e = s.requesters[0].cache[empty]
	if !e.answered || len(e.peers) != 0 || e.expires != int64(scheduler.EmptyCandidateTTL) {
		t.Fatalf("an empty key: %+v, want an empty answer kept %v", *e, scheduler.EmptyCandidateTTL)
	}
	s.lookup(0, 0, empty, 16, 1)
	if n, _ := lookups(s); n != 0 {
		t.Fatal("an empty answer was looked up again within its TTL")
	}
	drain(s, 1100*time.Millisecond)
	s.lookup(0, 0, empty, 16, 1)
	if n, _ := lookups(s); n != 1 {
		t.Fatal("an empty answer is not served stale: want a new lookup")
	}
}

// TestLookupTime: a lookup that finds what it needs costs its hops to the
// first holder and the grace; one of a key with too few records, its walk to
// the end; each hop a round trip and the servers' service.
func TestLookupTime(t *testing.T) {
	s := lookupSim(t, 0)
	s.sc.Discovery.HopService = Cost{Mean: time.Millisecond}
	var key protocol.FacetKey
	for k, ps := range s.index {
		if len(ps) >= 2 {
			key = k
			break
		}
	}
	rtt := int64(time.Millisecond) // equalFederation's one region
	for range 50 {
		d, peers, complete := s.walk(&s.requesters[0], key, 16, 1, scheduler.LookupGrace)
		if complete || len(peers) < 2 || d != int64(scheduler.LookupGrace)+rtt+int64(time.Millisecond) {
			t.Fatalf("8 servers: %v, %d peers, complete %v; want one hop and the grace", time.Duration(d), len(peers), complete)
		}
		d, peers, complete = s.walk(&s.requesters[0], protocol.FacetKey{Facet: protocol.FacetJurisdiction, Value: "zz"}, 16, 1, scheduler.LookupGrace)
		if !complete || len(peers) != 0 || d < 2*(rtt+int64(time.Millisecond)) {
			t.Fatalf("an empty key: %v, %d peers, complete %v; want a walk of 2 rounds or more to its end", time.Duration(d), len(peers), complete)
		}
	}
}

// TestProviderQueue: asks sent to one provider at once are answered one
// after another, each its service time after the last.
func TestProviderQueue(t *testing.T) {
	s := lookupSim(t, 3)
	s.connects = false
	s.sc.Classes[0].ServiceTime = Cost{Mean: 10 * time.Millisecond}
	s.sc.Classes[0].LeaseTime = Cost{Mean: 30 * time.Millisecond}
	r := &s.requesters[0]
	req := scheduler.Request{ExpiresAt: time.Unix(0, int64(time.Minute))}
	s.send(0, r, "p0", scheduler.RequestOffer{Provider: "p0", Request: req})
	s.send(1, r, "p0", scheduler.RequestOffer{Provider: "p0", Request: req})
	s.send(2, r, "p0", scheduler.SendLease{Provider: "p0"})
	var at []time.Duration
	for _, e := range s.q.h {
		if e.kind == evToProv {
			at = append(at, time.Duration(e.at))
		}
	}
	slices.Sort(at)
	half := 500 * time.Microsecond // half of the region's round trip
	want := []time.Duration{half + 10*time.Millisecond, half + 20*time.Millisecond, half + 50*time.Millisecond}
	if len(at) != 3 {
		t.Fatalf("%d asks queued, want 3", len(at))
	}
	for i := range at {
		if at[i] != want[i] {
			t.Errorf("ask %d answered at %v, want %v", i, at[i], want[i])
		}
	}
}

// TestRequesterStore: a requester's writes share bbolt's batches: a write
// opens one that commits batch_delay later and is synced after sync, the
// lease waits for the batch its write joins, and batches commit one at a
// time.
func TestRequesterStore(t *testing.T) {
	s := lookupSim(t, 1)
	s.sc.Requesters.BatchDelay = 2 * time.Millisecond
	s.sc.Requesters.Sync = Cost{Mean: time.Millisecond}
	r := &s.requesters[0]
	if done := s.write(r); done != int64(3*time.Millisecond) {
		t.Fatalf("a write at 0: synced at %v, want 3ms", time.Duration(done))
	}
	s.now = int64(500 * time.Microsecond)
	if done := s.write(r); done != int64(3*time.Millisecond) {
		t.Fatalf("a write at 0.5 ms joins the open batch: synced at %v, want 3ms", time.Duration(done))
	}
	s.now = int64(2500 * time.Microsecond) // the first batch is committing
	if done := s.write(r); done != int64(5500*time.Microsecond) {
		t.Fatalf("a write at 2.5 ms: synced at %v, want its own batch at 4.5 ms, then 1 ms", time.Duration(done))
	}
	s.connects = false
	s.now = int64(3 * time.Millisecond)
	s.send(0, r, "p0", scheduler.SendLease{Provider: "p0"})
	for _, e := range s.q.h {
		if e.kind == evToProv && e.at != int64(5500*time.Microsecond+500*time.Microsecond) {
			t.Errorf("the lease reached its provider at %v, want once its write synced (5.5 ms) and half a round trip", time.Duration(e.at))
		}
	}
}

// TestCostDraws: a quantile cost draws within its quantiles, with their
// mean; a lognormal one has its mean.
func TestCostDraws(t *testing.T) {
	s := lookupSim(t, 0)
	q := QuantileCost([]time.Duration{time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond})
	if q.Mean != 3750*time.Microsecond {
		t.Fatalf("mean of the quantiles %v, want 3.75ms", q.Mean)
	}
	var sum, lsum float64
	const n = 20000
	for range n {
		d := s.cost(q)
		if d < int64(time.Millisecond) || d > int64(10*time.Millisecond) {
			t.Fatalf("draw %v outside the quantiles", time.Duration(d))
		}
		sum += float64(d)
		lsum += float64(s.cost(Cost{Mean: 2 * time.Millisecond, Sigma: 0.8}))
	}
	if m := sum / n; m < 3.6e6 || m > 3.9e6 {
		t.Errorf("mean of quantile draws %v, want about 3.75ms", time.Duration(m))
	}
	if m := lsum / n; m < 1.9e6 || m > 2.1e6 {
		t.Errorf("mean of lognormal draws %v, want about 2ms", time.Duration(m))
	}
}

// TestSequentialArrivals: a sequential workload submits each job once the
// last has ended.
func TestSequentialArrivals(t *testing.T) {
	sc := equalFederation(4)
	sc.Workload.Jobs = 20
	sc.Workload.Arrivals = Arrivals{Process: "sequential"}
	sc.Workload.Duration = Dist{Kind: "fixed", Mean: 50 * time.Millisecond}
	r, err := Run(sc, nil, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Jobs) != 20 {
		t.Fatalf("%d jobs, want 20", len(r.Jobs))
	}
	for i := 1; i < len(r.Jobs); i++ {
		if r.Jobs[i].Submitted != r.Jobs[i-1].Ended {
			t.Fatalf("job %d submitted at %v, the last ended at %v", i, r.Jobs[i].Submitted, r.Jobs[i-1].Ended)
		}
	}
}
