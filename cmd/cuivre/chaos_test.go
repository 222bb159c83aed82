package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/chaos"
	"github.com/cuivre/cuivre/node/exec/exectest"
)

// TestChaosSmoke runs the chaos harness for a minute: five provider daemons
// and a requester, each a process of this test binary (see TestMain), under
// a job every two seconds and a few faults of each kind (a partition only
// as root with iproute2; else the skip is logged). No job may be lost, no
// lease epoch run on two providers, no receipt countersigned twice.
// Nothing here is timed: the harness waits on the daemons and their jobs,
// with deadlines far beyond a loaded machine's.
func TestChaosSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes for a minute")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := chaos.Options{
		Exe: exe, Env: append(os.Environ(), testMainEnv+"=1"),
		Providers: 5, Requesters: 1, Duration: time.Minute, Rate: 0.5, Faults: 8,
		Partitions: true, PartitionFor: 15 * time.Second,
		Module: exectest.Module(t, "sieve"), CacheDir: exectest.CacheDir(t),
		Log: testLog{t},
	}
	if s := os.Getenv("CUIVRE_CHAOS_SEED"); s != "" { // to replay a failed run's plan
		if o.Seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CUIVRE_CHAOS_SEED=%q: %v", s, err)
		}
	}
	if d := os.Getenv("CUIVRE_CHAOS_DIR"); d != "" {
		o.Dir = d // keep the data dirs and daemon logs
	}
	r, err := chaos.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	r.WriteText(&text)
	t.Logf("report:\n%s", text.String())
	if !r.Partitions {
		t.Logf("partitions skipped: %s", r.PartitionsSkipped)
	}

	if r.Jobs.Submitted == 0 || r.Jobs.Succeeded == 0 {
		t.Errorf("%d jobs submitted, %d succeeded: the stream did not run", r.Jobs.Submitted, r.Jobs.Succeeded)
	}
	for _, k := range chaos.Kinds {
		if k == chaos.Partition && !r.Partitions {
			continue
		}
		if r.Faults[k] == 0 {
			t.Errorf("no %s fault injected (plan %v, %d missed)", k, r.Plan, r.Missed)
		}
	}
	if r.Jobs.Lost != 0 {
		t.Errorf("%d jobs lost: %+v", r.Jobs.Lost, r.Lost)
	}
	if r.RunTwice != 0 {
		t.Errorf("%d lease epochs held by two providers: %v", r.RunTwice, r.RunTwiceLeases)
	}
	if r.BilledTwice != 0 {
		t.Errorf("%d lease epochs countersigned twice: %v", r.BilledTwice, r.BilledTwiceLeases)
	}
}

// testLog writes the harness's progress lines into the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
