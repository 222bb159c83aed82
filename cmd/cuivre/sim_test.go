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

// TestSimRun runs a scenario with two variants and two seeds, and checks what
// it writes.
func TestSimRun(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "tiny.yaml")
	os.WriteFile(sc, []byte(`name: tiny
duration: 1m
network: {regions: [a, b], rtt_ms: [[1, 10], [10, 1]]}
classes:
  - {name: small, count: 40, capacity: {cpu: "4", memory: 8Gi}, pricing: {currency: EUR, cpu_hour: "0.03"}}
  - {name: big, count: 4, capacity: {cpu: "32", memory: 64Gi}, pricing: {currency: EUR, cpu_hour: "0.05"}}
workload:
  arrivals: {rate: 5}
  sizes: [{cpu: "1", memory: 1Gi}]
  duration: {mean: 20s}
variants:
  - {name: all}
  - {name: small-only, exclude: [big]}
`), 0o644)
	out, err := run(t, "sim", "run", sc, "--runs", "2", "--seed", "5", "--out", filepath.Join(dir, "out"), "-q")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"all", "small-only", "events/s"} {
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
	for _, f := range []string{"latency_cdf.png", "utilisation.png", "price_paid.png", "revenue_by_class.png", "waiting.png"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f)); err != nil {
			t.Error(err)
		}
	}
}
