package simulations

import (
	"os"
	"path/filepath"
	"testing"
)

// TestShippedScenarios checks that every scenario in scenarios/ parses.
func TestShippedScenarios(t *testing.T) {
	files, err := filepath.Glob("scenarios/*.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("scenarios: %v, %v", files, err)
	}
	for _, f := range files {
		if _, err := LoadScenario(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// TestSmallScenario runs the small scenario twice with its seed: the two
// traces hash the same, and the federation does its job: nearly every job
// placed, none left unfinished, utilisation near the load asked.
func TestSmallScenario(t *testing.T) {
	sc, err := LoadScenario("scenarios/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := RunAll(sc, RunOptions{Seed: sc.Seed, Runs: 1, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Run(sc, nil, sc.Seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.TraceHash != again.TraceHash {
		t.Fatalf("same seed, two traces: %s and %s", r.TraceHash, again.TraceHash)
	}
	st := map[string]int{}
	for i := range r.Jobs {
		st[r.Jobs[i].State]++
	}
	n := len(r.Jobs)
	if n != sc.Workload.Jobs {
		t.Fatalf("%d jobs arrived, want %d", n, sc.Workload.Jobs)
	}
	if st["succeeded"] < n*95/100 {
		t.Errorf("states %v: want 95%% succeeded", st)
	}
	if st["placing"]+st["running"] > 0 {
		t.Errorf("states %v: jobs left unfinished after the drain", st)
	}
	if len(r.Placements) < st["succeeded"] {
		t.Errorf("%d placements for %d jobs succeeded", len(r.Placements), st["succeeded"])
	}
	// The load asked holds between the first run times and the last arrival.
	lastArrival := r.Jobs[n-1].Submitted
	var util float64
	var k int
	for _, s := range r.Series {
		if s.At > lastArrival/3 && s.At < lastArrival {
			util += s.Utilisation
			k++
		}
	}
	util /= float64(k)
	if util < 0.4 || util > 0.8 {
		t.Errorf("mean utilisation %.2f while jobs arrive, want near the 0.6 asked", util)
	}
	t.Logf("%d events, states %v, utilisation %.2f, trace %s", r.Events, st, util, r.TraceHash[:16])
	dir := t.TempDir()
	if err := WriteRun(filepath.Join(dir, r.Variant), r); err != nil {
		t.Fatal(err)
	}
	if err := WritePlots(dir, rs); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"latency_cdf.png", "utilisation.png", "price_paid.png", "revenue_by_class.png", r.Variant + "/jobs.csv"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
