package simulations

import (
	"testing"
	"time"
)

// TestChaosScenario runs scenarios/chaos.yaml, the federation of a chaos run
// on real daemons: about one crash every 3 s for 10 minutes, half of them
// restarts under a second. No job may be lost, and a lease that dies must
// be found within 2 s at the 99th percentile: the heartbeat rule's 1.5 s,
// sooner for a provider back at once.
func TestChaosScenario(t *testing.T) {
	sc, err := LoadScenario("scenarios/chaos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(sc, nil, sc.Seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Jobs) != 601 {
		t.Errorf("%d jobs, want 601: one a second, steady, from 0 to 10m", len(res.Jobs))
	}
	f := FaultsOf(res)
	t.Logf("%d jobs, %d crashes: %d leases lost (%d found by a restart), detection p50 %s p99 %s, re-placement p50 %s p99 %s, %d jobs lost, %d asks to providers down",
		len(res.Jobs), f.Crashes, f.LeasesLost, f.ByRestart, f.DetectP50, f.DetectP99, f.ReplaceP50, f.ReplaceP99, f.JobsLost, f.DeadAsks)
	if f.Crashes < 120 || f.Crashes > 300 {
		t.Errorf("%d crashes in 10 minutes, want about 200 (one every 3 s)", f.Crashes)
	}
	if f.LeasesLost < 30 || f.ByRestart == 0 || f.ByRestart == f.LeasesLost-f.Undetected {
		t.Errorf("%d leases lost, %d found by a restart: want both ways of finding them", f.LeasesLost, f.ByRestart)
	}
	if f.JobsLost != 0 || f.NotReplaced != 0 {
		t.Errorf("%d jobs lost, %d leases never re-placed: want none", f.JobsLost, f.NotReplaced)
	}
	if f.DetectP99 > 2*time.Second || f.DetectP99 < 0 {
		t.Errorf("detection p99 %s, want at most 2s", f.DetectP99)
	}
}
