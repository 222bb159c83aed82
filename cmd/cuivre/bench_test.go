package main

import (
	"encoding/json"
	"testing"

	"github.com/cuivre/cuivre/node/bench"
)

// TestBenchSmoke runs `cuivre bench` at tiny sizes, so that the command
// cannot rot: one JSON document on stdout, with every figure measured.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet and a daemon process")
	}
	t.Setenv(testMainEnv, "1") // for the daemon, which runs os.Executable()
	out, err := runStdout(t, "bench", "--nodes", "3", "--jobs", "5", "--repeat", "1", "--idle", "1s", "--transfer-mib", "4", "-o", "json")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	var r bench.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
	}
	if r.Machine.Cores == 0 || r.Commit == "" || r.Options.Nodes != 3 || !r.Options.Daemon {
		t.Errorf("report head: %+v %q %+v", r.Machine, r.Commit, r.Options)
	}
	got := map[string]bench.Figure{}
	for _, f := range r.Figures {
		got[f.Name] = f
	}
	for _, d := range bench.Defs {
		f, ok := got[d.Name]
		switch {
		case !ok:
			t.Errorf("figure %s missing", d.Name)
		case len(f.Values) != 1 || (f.Median <= 0 && d.Name != "daemon_cpu_percent") || f.Median < 0:
			t.Errorf("figure %s: %+v", d.Name, f)
		case (d.Goal != "") != (f.Met != nil):
			t.Errorf("figure %s: goal %q, verdict %v", d.Name, d.Goal, f.Met)
		}
	}
}

// runStdout runs the command line and returns its standard output alone.
func runStdout(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, errOut, err := execute(args...)
	t.Log(errOut)
	return out, err
}
