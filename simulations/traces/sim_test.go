package traces

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cuivre/cuivre/internal/fuzzguard"
	"github.com/cuivre/cuivre/simulations"
)

// TestConvertedTraceSimulates converts each sample and replays it through
// the simulator, as a scenario's workload.trace: every job arrives at its
// converted time with its size and run time, every one ends, and two runs
// with the same seed give the same trace hash (virtual time only).
func TestConvertedTraceSimulates(t *testing.T) {
	for _, c := range []struct {
		name   string
		inputs []string
		o      Options
		jobs   int
	}{
		{"google2019", td("google2019-part0.json", "google2019-part1.json"), Options{Format: Google2019}, 9},
		{"alibaba2018 tasks", td("alibaba2018-batch_task.csv"), Options{Format: Alibaba2018}, 4},
		{"alibaba2018 instances", td("alibaba2018-batch_instance.csv"), Options{Format: Alibaba2018, MemoryScale: 128}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.o.Chunk, c.o.TempDir = 4, dir
			f, err := os.Create(filepath.Join(dir, "trace.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Convert(f, c.inputs, c.o); err != nil {
				t.Fatal(err)
			}
			f.Close()
			scenario := filepath.Join(dir, "replay.yaml")
			os.WriteFile(scenario, []byte(`name: replay
duration: 10m
network: {regions: [a, b], rtt_ms: [[1, 10], [10, 1]]}
classes:
  - {name: small, count: 8, capacity: {cpu: "4", memory: 8Gi}, pricing: {currency: EUR, cpu_per_hour: "0.03"}}
  - {name: big, count: 2, capacity: {cpu: "16", memory: 64Gi}, pricing: {currency: EUR, cpu_per_hour: "0.05"}}
workload:
  trace: trace.csv
`), 0o644)
			sc, err := simulations.LoadScenario(scenario)
			if err != nil {
				t.Fatal(err)
			}
			if len(sc.Workload.Trace) != c.jobs {
				t.Fatalf("the scenario replays %d jobs, want %d", len(sc.Workload.Trace), c.jobs)
			}
			res, err := simulations.Run(sc, nil, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Jobs) != c.jobs {
				t.Fatalf("%d jobs ran, want %d", len(res.Jobs), c.jobs)
			}
			for i, j := range res.Jobs {
				tj := sc.Workload.Trace[i]
				if j.Submitted != tj.At || j.Run != tj.Run || j.CPUMillis != tj.Resources.CPUMillis || j.MemoryBytes != tj.Resources.MemoryBytes {
					t.Errorf("job %d: submitted %s, run %s, %dm, %d bytes; the trace says %s, %s, %dm, %d bytes",
						i, j.Submitted, j.Run, j.CPUMillis, j.MemoryBytes, tj.At, tj.Run, tj.Resources.CPUMillis, tj.Resources.MemoryBytes)
				}
				if j.State != "succeeded" || j.Ended-j.Placed < j.Run || j.Ended-j.Placed > j.Run+time.Second {
					t.Errorf("job %d: %s, placed %s, ended %s; want succeeded after its run of %s", i, j.State, j.Placed, j.Ended, j.Run)
				}
			}
			again, err := simulations.Run(sc, nil, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			if again.TraceHash != res.TraceHash {
				t.Errorf("two runs with seed 1: trace hashes %s and %s", res.TraceHash, again.TraceHash)
			}
		})
	}
}

// FuzzConvert feeds arbitrary bytes to both formats: no panic, and whatever
// converts is a trace the simulator accepts.
func FuzzConvert(f *testing.F) {
	for _, name := range []string{"google2019-part0.json", "google2019.csv", "google2019-bad.json", "alibaba2018-batch_task.csv", "alibaba2018-batch_instance.csv", "alibaba2018-bad.csv"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	scenario := []byte(`name: fuzz
duration: 1m
network: {regions: [a], rtt_ms: [[1]]}
classes:
  - {name: all, count: 1, capacity: {cpu: "64", memory: 256Gi}, pricing: {currency: EUR, cpu_per_hour: "0.03"}}
workload:
  trace: trace.csv
`)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Start()()
		dir := t.TempDir()
		in := filepath.Join(dir, "in")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, format := range Formats {
			var out bytes.Buffer
			o := Options{Format: format, SkipBad: true, Chunk: 256, TempDir: dir, MaxCPUMillis: 64000, MaxMemoryBytes: 256 << 30}
			if _, err := Convert(&out, []string{in}, o); err != nil {
				continue
			}
			_, err := simulations.ParseScenario("fuzz.yaml", scenario, func(string) ([]byte, error) { return out.Bytes(), nil })
			if err != nil {
				t.Fatalf("%s: the simulator refuses the conversion of %q: %v\n%s", format, data, err, out.String())
			}
		}
	})
}
