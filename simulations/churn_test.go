package simulations

import (
	"slices"
	"testing"
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// loopback is ten providers of 4 vCPU on one machine (1 ms round trips) and
// one requester, with the daemon's heartbeats (500 ms, 3 missed), placing
// jobs of one vCPU that run runFor, rate a second for a minute. The
// providers never crash on their own (a session of 10,000 hours): the tests
// crash the one they choose, and check that no other did.
func loopback(rate float64, runFor time.Duration, churn Churn) *Scenario {
	churn.Session = 10_000 * time.Hour
	return &Scenario{
		Name:        "loopback",
		Seed:        1,
		Duration:    time.Minute,
		Drain:       10 * time.Minute,
		SampleEvery: 10 * time.Second,
		Network:     Network{Regions: []string{"lo"}, RTT: [][]time.Duration{{time.Millisecond}}, Jitter: 0.5},
		Discovery:   Discovery{RecordTTL: 10 * time.Minute, CacheTTL: 10 * time.Second},
		Scheduler: Scheduler{PolicyName: "balanced", Config: scheduler.Config{
			HeartbeatInterval: 500 * time.Millisecond, MissedHeartbeats: 3, PlacementTimeout: 2 * time.Minute,
		}},
		Requesters: Requesters{Count: 1, Regions: Weights{{"lo", 1}}},
		Classes: []Class{{
			Name: "daemon", Count: 10, Regions: Weights{{"lo", 1}},
			Capacity:    scheduler.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30},
			Pricing:     scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 10_000}},
			ServiceTime: Cost{Mean: 400 * time.Microsecond},
			Churn:       churn,
		}},
		Workload: Workload{
			Arrivals:      Arrivals{Process: "steady", Rate: rate},
			Sizes:         []Size{{Weight: 1, Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 256 << 20}}},
			Duration:      Dist{Kind: "fixed", Mean: runFor},
			TimeoutFactor: 2,
		},
	}
}

// runCrashing runs a scenario, crashing after the last event before crashAt
// the provider that then runs the most leases, and returns the result, the
// provider, the leases it ran (job and epoch) and when it crashed.
func runCrashing(t *testing.T, sc *Scenario, crashAt time.Duration) (*Result, int, [][2]uint64, time.Duration) {
	t.Helper()
	s, err := newSim(sc, nil, sc.Seed, false)
	if err != nil {
		t.Fatal(err)
	}
	for s.q.len() > 0 && s.q.h[0].at < int64(crashAt) {
		s.next()
	}
	victim := 0
	for i := range s.providers {
		if len(s.providers[i].runs) > len(s.providers[victim].runs) {
			victim = i
		}
	}
	var live [][2]uint64
	for _, r := range s.providers[victim].runs {
		live = append(live, [2]uint64{uint64(r.job), r.epoch})
	}
	crashed := time.Duration(s.now)
	s.onCrash(int32(victim))
	s.loop()
	res := s.result()
	crashes := 0
	for _, p := range res.Providers {
		crashes += p.Crashes
	}
	if crashes != 1 {
		t.Fatalf("%d crashes, want only the one the test made", crashes)
	}
	return res, victim, live, crashed
}

// TestCrashedProviderLeasesReplaced crashes a provider running leases, once
// for good and once with a restart under the heartbeat interval. Every
// lease it ran must be declared lost within heartbeat x missed + one
// interval of the crash (a heartbeat is sent at most an interval before it),
// and then re-placed, every job succeeding. A provider back at once is found
// by the requester's next watch, which it answers CODE_RUN_LOST, before the
// heartbeat rule fires; one that stays down, by the heartbeat rule.
func TestCrashedProviderLeasesReplaced(t *testing.T) {
	const hb, missed = 500 * time.Millisecond, 3
	tests := []struct {
		name      string
		churn     Churn
		byRestart bool
		within    [2]time.Duration // detection bounds
	}{
		{"stays down", Churn{Downtime: time.Hour}, false, [2]time.Duration{hb * (missed - 1), hb*missed + hb}},
		// A restart within 200 ms is seen by the first watch again, a
		// heartbeat interval after the stream broke, plus round trips.
		{"restarts at once", Churn{Fast: 1, FastDowntime: 100 * time.Millisecond}, true, [2]time.Duration{hb, hb + 5*time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := loopback(1.5, 20*time.Second, tt.churn) // 30 of 40 vCPUs busy
			res, victim, live, crashAt := runCrashing(t, sc, 30*time.Second)
			if len(live) < 3 {
				t.Fatalf("the crashed provider ran %d leases: too few to tell", len(live))
			}
			if len(res.Losses) != len(live) {
				t.Errorf("%d losses recorded, want the %d leases live at the crash", len(res.Losses), len(live))
			}
			for _, l := range res.Losses {
				if !slices.Contains(live, [2]uint64{uint64(l.Job), l.Epoch}) || l.Provider != victim || l.Crashed != crashAt {
					t.Errorf("loss %+v: not a lease live on p%d at %s", l, victim, crashAt)
					continue
				}
				if d := l.Detection(); l.Detected < 0 || d < tt.within[0] || d > tt.within[1] {
					t.Errorf("job %d: lease declared lost %s after the crash, want within [%s, %s]", l.Job, d, tt.within[0], tt.within[1])
				}
				if l.ByRestart != tt.byRestart {
					t.Errorf("job %d: found by the restarted provider %v, want %v", l.Job, l.ByRestart, tt.byRestart)
				}
				if l.Replaced < 0 {
					t.Errorf("job %d: lease lost at %s never re-placed", l.Job, l.Detected)
				}
				if j := res.Jobs[l.Job]; j.State != "succeeded" || j.Epochs != l.Epoch+1 {
					t.Errorf("job %d: %s after %d epochs, want succeeded on the next", l.Job, j.State, j.Epochs)
				}
			}
			if f := FaultsOf(res); f.JobsLost != 0 || f.NotReplaced != 0 || f.Undetected != 0 {
				t.Errorf("faults %+v: want every job, every lease, found and placed again", f)
			}
		})
	}
}

// TestNegativeCacheBoundsDeadAsks crashes a provider for good while its
// records stay findable (record_ttl 10m), under five jobs a second: every
// lookup still returns it. With the requester's negative cache, it costs a
// few asks each dead_for: those sent before the first one's deadline told
// the requester, and from candidates found just before. Without it (a
// dead_for of 1 ns), one job in five asks it for the rest of the run.
func TestNegativeCacheBoundsDeadAsks(t *testing.T) {
	const deadFor = 10 * time.Second
	crashAt := 10 * time.Second
	asks := func(deadFor time.Duration) (int, time.Duration) {
		sc := loopback(5, time.Second, Churn{Downtime: time.Hour})
		sc.Duration = 2 * time.Minute
		sc.Scheduler.DeadFor = deadFor
		res, victim, _, _ := runCrashing(t, sc, crashAt)
		if f := FaultsOf(res); f.JobsLost != 0 {
			t.Fatalf("dead_for %s: %d jobs lost", deadFor, f.JobsLost)
		}
		if res.DeadAsks != uint64(res.Providers[victim].DeadAsks) {
			t.Fatalf("%d dead asks, %d of them to the provider down: it was the only one", res.DeadAsks, res.Providers[victim].DeadAsks)
		}
		last := res.Jobs[len(res.Jobs)-1].Submitted
		return res.Providers[victim].DeadAsks, last - crashAt
	}
	cached, down := asks(deadFor)
	windows := int(down/deadFor) + 1
	// An ask goes unanswered for the offer timeout (500 ms) before the
	// requester knows; meanwhile 5 jobs a second ask it with probability
	// d/N = 1/5, a job's round probing up to an offer timeout after its
	// lookup: about 1 + 5 x 1/5 x 1 s = 2 asks a window. Three is the bound.
	if bound := 3 * windows; cached > bound {
		t.Errorf("with the negative cache, %d asks to the provider down over %s: want at most %d (3 per %s)", cached, down, bound, deadFor)
	}
	uncached, _ := asks(time.Nanosecond)
	if uncached < 3*cached {
		t.Errorf("without the negative cache, %d asks; with it, %d: the cache should cut them threefold at least", uncached, cached)
	}
	t.Logf("asks to a provider down for %s: %d with a %s negative cache, %d without", down, cached, deadFor, uncached)
}

// TestWaitingForCapacity saturates a federation: jobs of a whole provider
// arrive faster than they run. Full providers refuse with a retry-after
// hint, placements back off and wait until their placement timeout, and the
// results say which jobs waited and how long. A job not placed by then ends
// "not placed", at its deadline or the round after.
func TestWaitingForCapacity(t *testing.T) {
	sc := loopback(2, 10*time.Second, Churn{Downtime: time.Hour})
	sc.Duration = 30 * time.Second
	sc.Scheduler.Config.PlacementTimeout = 20 * time.Second
	sc.Workload.Sizes[0].Resources.CPUMillis = 4000 // a whole provider: 10 run at once, 20 arrive in 10 s
	res, err := Run(sc, nil, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := FaultsOf(res)
	var notPlaced, placedLate int
	for _, j := range res.Jobs {
		switch {
		case j.Code == scheduler.ReasonNotPlaced.String():
			notPlaced++
			waited := j.Ended - j.Submitted
			if waited < sc.Scheduler.Config.PlacementTimeout || waited > sc.Scheduler.Config.PlacementTimeout+time.Second {
				t.Errorf("job %d not placed after %s, want its placement timeout %s and at most a round more", j.ID, waited, sc.Scheduler.Config.PlacementTimeout)
			}
			if j.CapacityWait < sc.Scheduler.Config.PlacementTimeout/2 {
				t.Errorf("job %d not placed, but waited for capacity only %s", j.ID, j.CapacityWait)
			}
		case j.Placed >= 0 && j.Wait() > time.Second:
			placedLate++
			if j.CapacityWait <= 0 || j.CapacityWait > j.Wait() {
				t.Errorf("job %d placed after %s, having waited for capacity %s", j.ID, j.Wait(), j.CapacityWait)
			}
		}
	}
	if placedLate == 0 || notPlaced == 0 || f.Waited < placedLate+notPlaced {
		t.Errorf("%d jobs placed late, %d not placed, %d waited: want some of each, all counted as waiting", placedLate, notPlaced, f.Waited)
	}
	t.Logf("%d jobs: %d waited (p50 %s, p99 %s), %d placed after a second, %d not placed",
		len(res.Jobs), f.Waited, f.CapacityWaitP50, f.CapacityWaitP99, placedLate, notPlaced)
}
