package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const traceTestdata = "../../simulations/traces/testdata/"

// TestSimConvert converts the Google sample through the CLI, checks the file
// against the package's expected output, and replays it with sim run.
func TestSimConvert(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.csv")
	out, err := run(t, "sim", "convert", "--from", "google2019", "--tmp", dir,
		traceTestdata+"google2019-part0.json", traceTestdata+"google2019-part1.json", "-o", trace)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"read 43 events from 2 file(s)", "wrote 9 jobs", "dropped 1: instances submitted before the trace began", "wrote " + trace} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	got, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(traceTestdata + "google2019.want.csv")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("trace.csv:\n%s\nwant\n%s", got, want)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("files left beside the trace: %v", left)
	}

	sc := filepath.Join(dir, "replay.yaml")
	os.WriteFile(sc, []byte(`name: replay
duration: 5m
network: {regions: [a], rtt_ms: [[2]]}
classes:
  - {name: small, count: 10, capacity: {cpu: "4", memory: 8Gi}, pricing: {currency: EUR, cpu_per_hour: "0.03"}}
workload:
  trace: trace.csv
`), 0o644)
	if out, err := run(t, "sim", "validate", sc); err != nil || !strings.Contains(out, "ok: 10 providers") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	out, err = run(t, "sim", "run", sc, "--out", filepath.Join(dir, "out"), "-q", "--runs", "1")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	jobs, err := os.ReadFile(filepath.Join(dir, "out", "replay", "jobs.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(jobs), "\n") - 1; n != 9 {
		t.Errorf("jobs.csv has %d jobs, want 9:\n%s", n, jobs)
	}
}

// TestSimConvertErrors checks that bad inputs and options exit 2, say where,
// and leave no output file.
func TestSimConvertErrors(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace.csv")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad lines", []string{"--from", "alibaba2018", traceTestdata + "alibaba2018-bad.csv"}, "alibaba2018-bad.csv:3: start_time \"soon\""},
		{"no format", []string{traceTestdata + "google2019-part0.json"}, "no format: give --from google2019 or alibaba2018"},
		{"unknown format", []string{"--from", "borg2011", traceTestdata + "google2019-part0.json"}, `unknown format "borg2011"`},
		{"no input", []string{"--from", "google2019"}, "no input"},
		{"missing file", []string{"--from", "google2019", filepath.Join(dir, "nothing.json.gz")}, "nothing.json.gz: open"},
		{"bad start", []string{"--from", "google2019", "--start", "soon", traceTestdata + "google2019-part0.json"}, `--start: bad time "soon"`},
		{"bad max memory", []string{"--from", "google2019", "--max-memory", "1GB", traceTestdata + "google2019-part0.json"}, `--max-memory: bad quantity "1GB"`},
		{"zero sample", []string{"--from", "google2019", "--sample", "0", traceTestdata + "google2019-part0.json"}, "--sample 0"},
		{"cpu scale for alibaba", []string{"--from", "alibaba2018", "--cpu-scale", "32", traceTestdata + "alibaba2018-batch_task.csv"}, "takes no scale"},
		{"nothing left", []string{"--from", "google2019", "--start", "1h", traceTestdata + "google2019-part0.json"}, "no job left to write"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := run(t, append([]string{"sim", "convert", "-o", trace}, c.args...)...)
			var e *exitError
			if !errors.As(err, &e) || e.code != 2 {
				t.Fatalf("%v, want exit code 2\n%s", err, out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("files left: %v", left)
			}
		})
	}

	// --skip-bad converts the good line and says what it skipped.
	out, err := run(t, "sim", "convert", "--from", "alibaba2018", "--skip-bad", traceTestdata+"alibaba2018-bad.csv", "-o", trace)
	if err != nil || !strings.Contains(out, "skipped "+traceTestdata+"alibaba2018-bad.csv:2: 6 fields") || !strings.Contains(out, "wrote 1 jobs") {
		t.Errorf("--skip-bad: %v\n%s", err, out)
	}
}
