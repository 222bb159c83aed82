package simulations

import (
	"math"
	"testing"
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// equalFederation is n equal providers in one region and a workload of n
// jobs of one CPU that never end, arriving one at a time: balls into bins.
func equalFederation(n int) *Scenario {
	return &Scenario{
		Name:        "bins",
		Seed:        1,
		Duration:    time.Duration(2*n) * time.Second,
		Drain:       time.Second,
		SampleEvery: time.Hour,
		Network:     Network{Regions: []string{"here"}, RTT: [][]time.Duration{{time.Millisecond}}},
		Discovery:   Discovery{RecordTTL: 10 * time.Minute},
		Scheduler:   Scheduler{PolicyName: "least-loaded", Config: scheduler.Config{HeartbeatInterval: time.Hour}},
		Requesters:  Requesters{Count: 1, Regions: Weights{{"here", 1}}},
		Classes: []Class{{
			Name: "bin", Count: n, Regions: Weights{{"here", 1}},
			Capacity: scheduler.Resources{CPUMillis: 100_000, MemoryBytes: 64 << 30},
			Pricing:  scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 10_000}},
		}},
		Workload: Workload{
			Jobs:          n,
			Arrivals:      Arrivals{Process: "poisson", Rate: 1},
			Sizes:         []Size{{Weight: 1, Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 256 << 20}}},
			Duration:      Dist{Kind: "fixed", Mean: 1000 * time.Hour},
			TimeoutFactor: 2,
		},
	}
}

// maxLoad is the most jobs any provider ran.
func maxLoad(r *Result) int {
	m := 0
	for _, p := range r.Providers {
		m = max(m, p.Leases)
	}
	return m
}

// TestBallsIntoBins places n jobs on n equal providers, once asking a single
// random candidate each (d = 1) and once the least loaded of two (d = 2). The
// maximum load must follow the balls-into-bins results: about
// ln n / ln ln n for one choice, ln ln n / ln 2 + O(1) for two (Azar, Broder,
// Karlin and Upfal, "Balanced allocations", 1999).
func TestBallsIntoBins(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 1000
	}
	ln := math.Log(float64(n))
	one := ln / math.Log(ln)
	two := math.Log(ln) / math.Ln2
	for seed := uint64(1); seed <= 3; seed++ {
		sc := equalFederation(n)
		r1, err := Run(sc, &Variant{Name: "d1", D: 1}, seed, nil)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Run(sc, &Variant{Name: "d2", D: 2}, seed, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []*Result{r1, r2} {
			if placed := countPlaced(r); placed != n {
				t.Fatalf("%s: %d of %d jobs placed", r.Variant, placed, n)
			}
		}
		m1, m2 := maxLoad(r1), maxLoad(r2)
		t.Logf("n=%d seed=%d: max load d=1 %d (ln n/ln ln n = %.2f), d=2 %d (ln ln n/ln 2 = %.2f)", n, seed, m1, one, m2, two)
		// One choice: Θ(ln n / ln ln n); the constant is about 1 to 2 at
		// these sizes (Raab and Steger, 1998).
		if float64(m1) < 0.9*one || float64(m1) > 2.5*one {
			t.Errorf("d=1: max load %d, want within [0.9, 2.5] x %.2f", m1, one)
		}
		// Two choices: ln ln n / ln 2 + O(1), with a small constant.
		if float64(m2) > two+2 {
			t.Errorf("d=2: max load %d, want at most %.2f + 2", m2, two)
		}
		if m2 >= m1 {
			t.Errorf("d=2 max load %d is not below d=1's %d", m2, m1)
		}
	}
}

// TestDeterminism runs a scenario with churn, loss and jitter twice with one
// seed and once with another: the first two traces must hash the same, the
// third differently.
func TestDeterminism(t *testing.T) {
	sc := churnyFederation()
	a, err := Run(sc, nil, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(sc, nil, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Run(sc, nil, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.TraceHash != b.TraceHash || a.Events != b.Events {
		t.Fatalf("same seed, different traces: %s (%d events) and %s (%d events)", a.TraceHash, a.Events, b.TraceHash, b.Events)
	}
	if a.TraceHash == c.TraceHash {
		t.Fatalf("seeds 7 and 8 gave the same trace %s", a.TraceHash)
	}
	for i := range a.Jobs {
		if st := a.Jobs[i].State; st != "succeeded" && st != "failed" {
			t.Errorf("job %d ended the run %s: every job should end within the drain", i, st)
		}
		if a.Jobs[i] != b.Jobs[i] {
			t.Fatalf("job %d differs: %+v and %+v", i, a.Jobs[i], b.Jobs[i])
		}
	}
	t.Logf("%d events, %d jobs, trace %s", a.Events, len(a.Jobs), a.TraceHash[:16])
}

// churnyFederation is a small federation in three regions whose providers
// crash, with message loss and jitter.
func churnyFederation() *Scenario {
	ms := time.Millisecond
	sc := &Scenario{
		Name:        "churny",
		Duration:    10 * time.Minute,
		Drain:       time.Hour,
		SampleEvery: 10 * time.Second,
		Network: Network{
			Regions: []string{"fr", "de", "es"},
			RTT:     [][]time.Duration{{1 * ms, 10 * ms, 30 * ms}, {10 * ms, 1 * ms, 25 * ms}, {30 * ms, 25 * ms, 1 * ms}},
			Jitter:  0.2, Loss: 0.01,
		},
		Discovery:  Discovery{RecordTTL: 10 * time.Minute, CacheTTL: 5 * time.Second},
		Scheduler:  Scheduler{PolicyName: "balanced", Config: scheduler.Config{HeartbeatInterval: 5 * time.Second}},
		Requesters: Requesters{Count: 3, Regions: Weights{{"fr", 1}, {"de", 1}, {"es", 1}}},
		Classes: []Class{{
			Name: "sme", Count: 200, Regions: Weights{{"fr", 1}, {"de", 1}, {"es", 1}},
			Capacity: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 16 << 30},
			Pricing:  scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 10_000}, LoadFactorPermille: 1000},
			Churn:    Churn{Session: 20 * time.Minute, Downtime: 2 * time.Minute},
		}},
		Workload: Workload{
			Jobs:          3000,
			Arrivals:      Arrivals{Process: "poisson", Load: 0.7},
			Sizes:         []Size{{Weight: 3, Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 512 << 20}}, {Weight: 1, Resources: scheduler.Resources{CPUMillis: 2000, MemoryBytes: 2 << 30}}},
			Duration:      Dist{Kind: "exponential", Mean: time.Minute},
			TimeoutFactor: 2,
			FailureRate:   0.01,
		},
	}
	return sc
}
