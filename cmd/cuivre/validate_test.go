package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/bench"
)

// TestBenchValidateMeasured replays a devnet's measures (--measured): the
// simulation of devnet20 given its costs, and the table side by side, with
// the overhead fitted on its warm placements. No devnet is started.
func TestBenchValidateMeasured(t *testing.T) {
	ms := func(xs ...float64) []float64 { return xs }
	v := &bench.Validation{Nodes: 20, Servers: 21, StreamRTT: 0.05, NewStream: 0.13, WarmRate: 60,
		Warm: ms(6, 7, 8, 9, 10, 12, 15), Cold: ms(20, 25, 30), Dial: ms(3, 4, 5), OfferExchange: ms(0.3, 0.4, 0.5),
		OfferService: ms(0.05, 0.06), LeaseService: ms(1, 2, 3), DHTRPC: ms(1, 2, 4), RequesterSync: ms(0.5, 1, 2),
		Lookups: []bench.LookupTrace{{From: "client", Hops: 1, Found: 2, RPCs: 12, Ms: 5}, {From: "server", Hops: 0, Found: 2, RPCs: 10, Ms: 3}}}
	b, err := json.Marshal(validateReport{Devnets: []*bench.Validation{v}})
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "v.json")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.json")
	stdout, err := runStdout(t, "bench", "validate", "--nodes", "20", "--measured", in, "--seeds", "2", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	for _, want := range []string{"scenario costs fitted on 20 providers", "requesters.sync: {quantiles: [", "20         warm", "20         cold", "overhead fitted on 20 providers warm"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in:\n%s", want, stdout)
		}
	}
	var rep validateReport
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil || len(rep.Sims) != 1 || len(rep.Sims[0].Warm) != 2*len(v.Warm) || len(rep.Sims[0].Cold) == 0 {
		t.Fatalf("report %+v, %v", rep.Sims, err)
	}
	if rep.OverheadFrom != 20 || rep.Overhead < 0 {
		t.Errorf("overhead %v from %d", rep.Overhead, rep.OverheadFrom)
	}
	if _, err := runStdout(t, "bench", "validate", "--nodes", "30"); err == nil {
		t.Error("--nodes 30 has no scenario devnet30: want an error")
	}
}

// TestCostQuantiles: every 5% to the 95th percentile, then the 99th, less
// the shift and above a microsecond.
func TestCostQuantiles(t *testing.T) {
	var xs []float64
	for i := range 101 {
		xs = append(xs, float64(i)) // 0 to 100 ms
	}
	q := costQuantiles(xs, 1)
	if len(q) != 21 || q[0] != time.Microsecond || q[1] != 4*time.Millisecond || q[19] != 94*time.Millisecond || q[20] != 98*time.Millisecond {
		t.Errorf("quantiles %v", q)
	}
}
