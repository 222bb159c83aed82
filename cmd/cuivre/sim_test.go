package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimValidate checks a good scenario, and a bad one exits 2 naming the
// line and column of each mistake.
func TestSimValidate(t *testing.T) {
	out, err := run(t, "sim", "validate", "../../simulations/scenarios/small.yaml")
	if err != nil || !strings.Contains(out, "ok: 1000 providers in 3 classes") {
		t.Fatalf("small.yaml: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: bad\nduration: 1m\nnetwork:\n  regions: [a]\n  rtt_ms: [[1]]\nclases: []\n"), 0o644)
	_, err = run(t, "sim", "validate", bad)
	var e *exitError
	if !errors.As(err, &e) || e.code != 2 {
		t.Fatalf("bad.yaml: %v, want exit code 2", err)
	}
	if !strings.Contains(err.Error(), "bad.yaml:6:1") || !strings.Contains(err.Error(), "classes") {
		t.Errorf("bad.yaml: %v: want the line of the misspelt key and a suggestion", err)
	}
}

// tinyScenario has two variants of 44 providers and a minute of jobs: a
// run takes a few tens of milliseconds.
const tinyScenario = `name: tiny
duration: 1m
network: {regions: [a, b], rtt_ms: [[1, 10], [10, 1]]}
classes:
  - {name: small, count: 40, capacity: {cpu: "4", memory: 8Gi}, pricing: {currency: EUR, cpu_per_hour: "0.03"}}
  - {name: big, count: 4, capacity: {cpu: "32", memory: 64Gi}, pricing: {currency: EUR, cpu_per_hour: "0.05"}}
workload:
  arrivals: {rate: 5}
  sizes: [{cpu: "1", memory: 1Gi}]
  duration: {mean: 20s}
variants:
  - {name: all}
  - {name: small-only, exclude: [big]}
`

func writeTiny(t *testing.T) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(path, []byte(tinyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// TestSimRun runs a scenario with two variants and two seeds, and checks what
// it writes.
func TestSimRun(t *testing.T) {
	dir, sc := writeTiny(t)
	out, err := run(t, "sim", "run", sc, "--runs", "2", "--seed", "5", "--out", filepath.Join(dir, "out"), "-q", "--format", "png,svg")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"all", "small-only", "events/s", "placed%", " ± ", "95% confidence interval"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	var m struct {
		Seed    uint64 `json:"seed"`
		Results []struct {
			Variant   string `json:"variant"`
			Seed      uint64 `json:"seed"`
			Dir       string `json:"dir"`
			TraceHash string `json:"trace_hash"`
		} `json:"results"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "out", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Seed != 5 || len(m.Results) != 4 {
		t.Fatalf("manifest: seed %d, %d results; want 5 and 4", m.Seed, len(m.Results))
	}
	for _, r := range m.Results {
		if len(r.TraceHash) != 64 {
			t.Errorf("%s seed %d: trace hash %q", r.Variant, r.Seed, r.TraceHash)
		}
		if _, err := os.Stat(filepath.Join(dir, "out", r.Dir, "jobs.csv")); err != nil {
			t.Error(err)
		}
	}
	for _, f := range []string{"latency_cdf", "utilisation", "price_paid", "revenue_by_class", "waiting"} {
		for _, ext := range []string{".png", ".svg"} {
			if _, err := os.Stat(filepath.Join(dir, "out", f+ext)); err != nil {
				t.Error(err)
			}
		}
	}
	summary := readLines(t, filepath.Join(dir, "out", "summary.csv"))
	if summary[0] != "variant,metric,n,mean,sd,ci_low,ci_high" || !strings.HasPrefix(summary[1], "all,jobs,2,") {
		t.Errorf("summary.csv starts %q", summary[:2])
	}
	if runs := readLines(t, filepath.Join(dir, "out", "runs.csv")); len(runs) != 5 || !strings.HasPrefix(runs[1], "all,5,") {
		t.Errorf("runs.csv: %q", runs)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestSimRunDefaults: ten runs unless told otherwise, the scenario's runs:
// when it has one, and with one run no interval, said so.
func TestSimRunDefaults(t *testing.T) {
	dir, sc := writeTiny(t)
	runs := func(out string) int {
		var m struct {
			Runs    int   `json:"runs"`
			Results []any `json:"results"`
		}
		data, err := os.ReadFile(filepath.Join(out, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Results) != 2*m.Runs {
			t.Errorf("%d results for %d runs of 2 variants", len(m.Results), m.Runs)
		}
		return m.Runs
	}
	out := filepath.Join(dir, "ten")
	if o, err := run(t, "sim", "run", sc, "-o", out, "-q", "--set", "duration=10s"); err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if n := runs(out); n != 10 {
		t.Errorf("%d runs by default, want 10", n)
	}
	three := filepath.Join(dir, "three.yaml")
	os.WriteFile(three, []byte("runs: 3\n"+tinyScenario), 0o644)
	out = filepath.Join(dir, "three")
	if o, err := run(t, "sim", "run", three, "-o", out, "-q"); err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if n := runs(out); n != 3 {
		t.Errorf("%d runs, want the scenario's 3", n)
	}
	out = filepath.Join(dir, "one")
	o, err := run(t, "sim", "run", three, "-o", out, "-q", "--runs", "1")
	if err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if n := runs(out); n != 1 {
		t.Errorf("%d runs, want --runs 1", n)
	}
	if !strings.Contains(o, "seed") || !strings.Contains(o, "no confidence interval") || strings.Contains(o, " ± ") {
		t.Errorf("one run: want each run's row and a word that there is no interval:\n%s", o)
	}
	for _, bad := range [][]string{
		{"--runs", "0"},
		{"--format", "gif"},
		{"--set", "scheduler.d=0"},
		{"--set", "nowhere.key=1"},
	} {
		_, err := run(t, append([]string{"sim", "run", sc, "-o", filepath.Join(dir, "bad"), "-q"}, bad...)...)
		var e *exitError
		if !errors.As(err, &e) || e.code != 2 {
			t.Errorf("%v: %v, want exit code 2", bad, err)
		}
	}
}

// TestSimSweep sweeps the tiny scenario over two values with two seeds and
// checks what it writes, then that bad parameters exit 2 with their reason.
func TestSimSweep(t *testing.T) {
	dir, sc := writeTiny(t)
	out := filepath.Join(dir, "sweep")
	o, err := run(t, "sim", "sweep", sc, "--param", "classes.big.count=2,8", "--runs", "2", "-o", out, "-q",
		"--format", "svg,pdf", "--metrics", "wait_p50_ms,util_mean")
	if err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	for _, want := range []string{"classes.big.count", "small-only", "wait_p50_ms", " ± ", "2 points, 8 runs"} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}
	lines := readLines(t, filepath.Join(out, "sweep.csv"))
	if lines[0] != "classes.big.count,variant,metric,n,mean,sd,ci_low,ci_high" {
		t.Errorf("sweep.csv header %q", lines[0])
	}
	var count int
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if f[2] == "util_mean" {
			count++
			if f[3] != "2" || f[6] == "" || f[7] == "" {
				t.Errorf("sweep.csv row %q: want n 2 and an interval", l)
			}
		}
	}
	if count != 4 {
		t.Errorf("%d util_mean rows, want 2 values x 2 variants", count)
	}
	for _, f := range []string{"sweep_wait_p50_ms.svg", "sweep_wait_p50_ms.pdf", "sweep_util_mean.svg", "sweep_util_mean.pdf", "sweep_runs.csv", "manifest.json"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "give one or two --param"},
		{[]string{"--param", "a=1", "--param", "b=1", "--param", "c=1"}, "give one or two --param"},
		{[]string{"--param", "scheduler.d"}, "want PATH=VALUES"},
		{[]string{"--param", "classes.bog.count=1"}, `classes has no entry named "bog": did you mean big?`},
		{[]string{"--param", "workload.arrivals.rat=1"}, "tiny.yaml:8:13: workload.arrivals.rat: unknown field: did you mean rate?"},
		{[]string{"--param", "classes.big.count=1,-1"}, "--param classes.big.count=-1: "},
		{[]string{"--param", "scheduler.d=1:0:1"}, "the end is below the start"},
		{[]string{"--param", "scheduler.d=1", "--metrics", "speed"}, `unknown metric "speed"`},
		{[]string{"--param", "scheduler.d=1", "--format", "gif"}, `unknown plot format "gif"`},
		{[]string{"--param", "scheduler.d=1", "--runs", "0"}, "--runs 0"},
	} {
		_, err := run(t, append([]string{"sim", "sweep", sc, "-o", filepath.Join(dir, "bad"), "-q"}, tt.args...)...)
		var e *exitError
		if !errors.As(err, &e) || e.code != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want exit code 2 and %q", tt.args, err, tt.want)
		}
	}
}
