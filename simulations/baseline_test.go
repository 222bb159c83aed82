package simulations

import (
	"slices"
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/scheduler"
)

// censoredP50 is the nearest-rank median of a run's waits, every job
// counted (a job never placed at its deadline), in milliseconds.
func censoredP50(r *Result) float64 {
	w := waitsMillis(r)
	slices.Sort(w)
	return percentile(w, 50)
}

// TestBaselinesScenario runs scenarios/baselines.yaml, cut to a few minutes
// of arrivals: cuivre, omniscient, random and sparrow on one workload at 80%
// load. It checks what holds by construction, not figures:
//
//   - every job ends, and a job never placed ends no sooner than its
//     deadline: customers retry (or wait in the omniscient queue) until
//     then, whatever the mechanism; its wait is censored there;
//   - the omniscient median wait is no worse than any other's. At 80% load
//     the median job fits somewhere on arrival, and the omniscient places
//     it after one lease round trip to its provider, while every other
//     mechanism first asks for an offer (one more round trip to providers
//     of the same regions) and cuivre also looks providers up;
//   - random waits for capacity more often than sparrow: a round asks one
//     provider instead of two, and is refused when that one is full.
func TestBaselinesScenario(t *testing.T) {
	sc, err := LoadScenario("scenarios/baselines.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Duration = 4 * time.Minute
	if testing.Short() {
		sc.Duration = 2 * time.Minute
	}
	rs, err := RunAll(sc, RunOptions{Seed: sc.Seed, Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]*Result{}
	for _, r := range rs {
		by[r.Variant] = r
		if r.Placement != r.Variant {
			t.Errorf("variant %s ran placement %q, want %q", r.Variant, r.Placement, r.Variant)
		}
		for i := range r.Jobs {
			j := &r.Jobs[i]
			if j.State != "succeeded" && j.State != "failed" {
				t.Errorf("%s: job %d %s when the run stopped", r.Variant, j.ID, j.State)
				continue
			}
			if j.Placed >= 0 {
				continue
			}
			if j.Code != scheduler.ReasonNotPlaced.String() || j.Ended < j.Deadline {
				t.Errorf("%s: job %d never placed ended %q at %s, before its deadline %s", r.Variant, j.ID, j.Code, j.Ended, j.Deadline)
			}
			if w, censored := j.CensoredWait(r.SimTime); !censored || w != j.Deadline-j.Submitted {
				t.Errorf("%s: job %d never placed: wait %s (censored %v), want %s censored", r.Variant, j.ID, w, censored, j.Deadline-j.Submitted)
			}
		}
		f := FaultsOf(r)
		t.Logf("%-10s %5d jobs, %5.1f%% placed, wait p50 %6.1f ms (censored), %4d waited for capacity, trace %s",
			r.Variant, len(r.Jobs), 100*float64(countPlaced(r))/float64(len(r.Jobs)), censoredP50(r), f.Waited, r.TraceHash[:12])
	}
	omni := by[PlacementOmniscient]
	for _, name := range []string{PlacementCuivre, PlacementRandom, PlacementSparrow} {
		if a, b := censoredP50(omni), censoredP50(by[name]); a > b {
			t.Errorf("omniscient median wait %.1f ms is worse than %s's %.1f ms", a, name, b)
		}
	}
	if a, b := FaultsOf(by[PlacementRandom]).Waited, FaultsOf(by[PlacementSparrow]).Waited; a <= b {
		t.Errorf("random: %d jobs waited for capacity, sparrow %d: one probe a round should be refused more often than two", a, b)
	}
	for _, name := range []string{PlacementOmniscient, PlacementRandom} {
		v := &sc.Variants[slices.IndexFunc(sc.Variants, func(v Variant) bool { return v.Name == name })]
		again, err := Run(sc, v, sc.Seed, nil)
		if err != nil {
			t.Fatal(err)
		}
		if again.TraceHash != by[name].TraceHash {
			t.Errorf("%s: same seed, two traces: %s and %s", name, by[name].TraceHash, again.TraceHash)
		}
	}
}

// twoProviders is one provider of each kind on one machine (1 ms each way,
// no jitter, no loss): "cheap", with no label, and "cert", certified and ten
// times dearer, each of 4 CPUs; jobs replayed from trace, placed by the
// omniscient scheduler with a 30 s placement timeout.
func twoProviders(trace []TraceJob) *Scenario {
	class := func(name string, cpuNanos uint64, labels scheduler.Labels) Class {
		return Class{Name: name, Count: 1, Regions: Weights{{"lo", 1}}, Labels: labels,
			Capacity: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 16 << 30},
			Pricing:  scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: cpuNanos}}}
	}
	return &Scenario{
		Name: "two", Seed: 1, Duration: time.Minute, Drain: 10 * time.Minute, SampleEvery: time.Second,
		Network:   Network{Regions: []string{"lo"}, RTT: [][]time.Duration{{2 * time.Millisecond}}},
		Discovery: Discovery{RecordTTL: 10 * time.Minute, CacheTTL: 10 * time.Second},
		Scheduler: Scheduler{PolicyName: "balanced", Placement: PlacementOmniscient,
			Config: scheduler.Config{PlacementTimeout: 30 * time.Second}},
		Requesters: Requesters{Count: 1, Regions: Weights{{"lo", 1}}},
		Classes: []Class{
			class("cheap", 2_777, nil),
			class("cert", 27_777, scheduler.NewLabels(scheduler.Label{Key: "certification", Value: "iso27001"})),
		},
		Workload: Workload{Trace: trace, TimeoutFactor: 2},
	}
}

// TestOmniscient replays eight jobs on two providers and checks the
// omniscient scheduler's every rule: the cheapest fitting provider under
// balanced ranking; constraints and ceilings as the markets apply them;
// a job that fits at once placed after one lease round trip, whatever waits
// before it (backfilling); the waiting served first come, first served as
// capacity frees; and a job that fits nowhere failed at its deadline.
func TestOmniscient(t *testing.T) {
	cpu := func(n uint64) scheduler.Resources {
		return scheduler.Resources{CPUMillis: n * 1000, MemoryBytes: 1 << 30}
	}
	notCert := []scheduler.Selector{{Key: "certification", Op: pb.Operator_OPERATOR_NOT_IN, Values: []string{"iso27001"}}}
	cert := []scheduler.Selector{{Key: "certification", Op: pb.Operator_OPERATOR_IN, Values: []string{"iso27001"}}}
	// A ceiling of 0.0003 EUR for one CPU over a 20 s timeout: cheap asks
	// 20 x 2,777 nano-EUR, cert 20 x 27,777.
	ceiling := scheduler.Amount{Currency: "EUR", Nanos: 300_000}
	s := time.Second
	trace := []TraceJob{
		{At: 0, Resources: cpu(2), Run: 10 * s},                                                   // 0: cheap, at once
		{At: 1 * s, Resources: cpu(4), Run: 10 * s, Constraints: notCert},                         // 1: only cheap, which is half full: waits
		{At: 2 * s, Resources: cpu(1), Run: 5 * s, Constraints: notCert},                          // 2: fits cheap now: ahead of 1
		{At: 3 * s, Resources: cpu(1), Run: 10 * s, Constraints: cert, MaxPrice: ceiling},         // 3: cert is above the ceiling: never
		{At: 4 * s, Resources: cpu(1), Run: 10 * s, Constraints: cert},                            // 4: cert, at once
		{At: 5 * s, Resources: cpu(1), Run: 10 * s, MaxPrice: ceiling},                            // 5: only cheap within the ceiling, which has room
		{At: 6 * s, Resources: cpu(4), Run: time.Second, Constraints: notCert},                    // 6: waits behind 1
		{At: 7 * s, Resources: cpu(1), Run: time.Second, Constraints: notCert, MaxPrice: ceiling}, // 7: cheap is full: waits, then goes ahead of 1 when 2 ends
	}
	res, err := Run(twoProviders(trace), nil, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	j := res.Jobs
	for i := range j {
		t.Logf("job %d: %s on %q, submitted %s, placed %s, ended %s, waited for capacity %s", i, j[i].State, j[i].Class,
			j[i].Submitted, j[i].Placed, j[i].Ended, j[i].CapacityWait)
	}
	const rtt = 2 * time.Millisecond
	for _, tt := range []struct {
		job   int
		class string
	}{{0, "cheap"}, {1, "cheap"}, {2, "cheap"}, {4, "cert"}, {5, "cheap"}, {6, "cheap"}, {7, "cheap"}} {
		if got := j[tt.job].Class; got != tt.class || j[tt.job].State != "succeeded" {
			t.Errorf("job %d %s on %q, want succeeded on %q", tt.job, j[tt.job].State, got, tt.class)
		}
	}
	// Zero decision cost: a job that fits somewhere waits one round trip.
	for _, k := range []int{0, 2, 4, 5} {
		if j[k].Wait() != rtt || j[k].CapacityWait != 0 {
			t.Errorf("job %d fitted on arrival, but waited %s (%s for capacity), want the lease's round trip %s", k, j[k].Wait(), j[k].CapacityWait, rtt)
		}
	}
	// Job 7 fits when job 2 ends (7 s; its requester hears of it a one-way
	// trip later), before job 1 can (job 5 holds a CPU until 15 s):
	// backfilled. Jobs 1 and 6 then go in their order.
	if j[7].Placed > j[2].Ended+rtt || j[7].Placed > j[1].Placed {
		t.Errorf("job 7 placed at %s: want when job 2 ended (%s), before job 1 (%s)", j[7].Placed, j[2].Ended, j[1].Placed)
	}
	if !(j[1].Placed > j[5].Ended-rtt && j[1].Placed < j[6].Placed && j[6].Placed > j[1].Ended-rtt) {
		t.Errorf("jobs 1 and 6 placed at %s and %s: want 1 once job 5 ended (%s), 6 once 1 ended (%s)", j[1].Placed, j[6].Placed, j[5].Ended, j[1].Ended)
	}
	if d := j[1].CapacityWait; d < 13*time.Second || d > j[1].Wait() {
		t.Errorf("job 1 waited %s for capacity of %s in all, want about 14 s", d, j[1].Wait())
	}
	// Job 3: fits nowhere within its ceiling; fails at its deadline.
	if j[3].Placed >= 0 || j[3].Code != scheduler.ReasonNotPlaced.String() || j[3].Ended != j[3].Deadline || j[3].Deadline != 33*time.Second {
		t.Errorf("job 3: placed %s, %q at %s, deadline %s: want never placed, not placed at 33 s", j[3].Placed, j[3].Code, j[3].Ended, j[3].Deadline)
	}
	if w, censored := j[3].CensoredWait(res.SimTime); w != 30*time.Second || !censored {
		t.Errorf("job 3: wait %s, censored %v: want 30s censored", w, censored)
	}
	// What was quoted is what the markets price: 20 s at cheap's or cert's rate.
	for _, p := range res.Placements {
		rate := map[string]float64{"cheap": 2_777e-9, "cert": 27_777e-9}[p.Class]
		want := rate * float64(trace[p.Job].Resources.CPUMillis) / 1000 * 2 * trace[p.Job].Run.Seconds()
		if d := p.Quoted - want; d > 1e-9 || d < -1e-9 {
			t.Errorf("job %d on %s quoted %.9f, want %.9f", p.Job, p.Class, p.Quoted, want)
		}
	}
}

// TestOmniscientCrash crashes the busiest of ten providers under the
// omniscient scheduler: it knows at once, so each lease is declared lost at
// the crash and placed again a round trip later, and every job succeeds.
func TestOmniscientCrash(t *testing.T) {
	sc := loopback(1.5, 20*time.Second, Churn{Downtime: time.Hour})
	sc.Scheduler.Placement = PlacementOmniscient
	res, victim, live, crashAt := runCrashing(t, sc, 30*time.Second)
	if len(live) < 3 || len(res.Losses) != len(live) {
		t.Fatalf("%d leases live on p%d at the crash, %d losses recorded", len(live), victim, len(res.Losses))
	}
	for _, l := range res.Losses {
		if l.Detected != crashAt || l.Replaced < l.Detected || l.Replacement() > 5*time.Millisecond {
			t.Errorf("loss %+v: want declared at the crash (%s), re-placed a round trip later", l, crashAt)
		}
		if j := res.Jobs[l.Job]; j.State != "succeeded" || j.Epochs != l.Epoch+1 || j.Class != "daemon" {
			t.Errorf("job %d: %s after %d epochs, want succeeded on the next", l.Job, j.State, j.Epochs)
		}
	}
	for _, p := range res.Placements {
		if p.Provider == victim && p.At > crashAt {
			t.Errorf("job %d placed on the crashed p%d at %s", p.Job, victim, p.At)
		}
	}
	if f := FaultsOf(res); f.JobsLost != 0 {
		t.Errorf("faults %+v: want every job placed again", f)
	}
}

// TestUnbundlingClosedQueues runs the closed federation of
// scenarios/unbundling.yaml (two sovereign sites under 120% of their
// capacity) for fifteen minutes of arrivals: once the sites fill, jobs
// queue rather than vanish. They wait for capacity, many are placed after
// waiting, and those never placed fail at their deadline, not sooner.
func TestUnbundlingClosedQueues(t *testing.T) {
	if testing.Short() {
		t.Skip("fifteen minutes of a thousand CPUs: a few seconds")
	}
	sc, err := LoadScenario("scenarios/unbundling.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Duration = 15 * time.Minute
	res, err := Run(sc, &sc.Variants[slices.IndexFunc(sc.Variants, func(v Variant) bool { return v.Name == "closed" })], sc.Seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	queued := 0
	for _, smp := range res.Series {
		queued = max(queued, smp.Placing)
	}
	var placedLate, notPlaced int
	for i := range res.Jobs {
		j := &res.Jobs[i]
		switch {
		case j.Placed < 0:
			notPlaced++
			if j.Ended >= 0 && j.Ended < j.Deadline {
				t.Errorf("job %d never placed ended %s, before its deadline %s", j.ID, j.Ended, j.Deadline)
			}
		case j.Wait() > 10*time.Second:
			placedLate++
		}
	}
	t.Logf("%d jobs: at most %d placing at once, %d placed after 10 s or more, %d never placed", len(res.Jobs), queued, placedLate, notPlaced)
	if queued < 50 || placedLate < 100 {
		t.Errorf("at most %d jobs placing at once, %d placed after waiting: want a queue", queued, placedLate)
	}
}
