package simulations

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSweepParseParam(t *testing.T) {
	for _, tt := range []struct {
		in     string
		path   string
		keys   []pathKey
		values []string
	}{
		{"workload.arrivals.load=0.4,0.6,0.8", "workload.arrivals.load",
			[]pathKey{{name: "workload"}, {name: "arrivals"}, {name: "load"}}, []string{"0.4", "0.6", "0.8"}},
		// Ranges, without float artefacts, the end included.
		{"workload.arrivals.load=0.5:1.5:0.25", "workload.arrivals.load", nil, []string{"0.5", "0.75", "1", "1.25", "1.5"}},
		{"x=0.1:0.3:0.1", "x", nil, []string{"0.1", "0.2", "0.3"}},
		{"scheduler.d=1:4:1", "scheduler.d", nil, []string{"1", "2", "3", "4"}},
		{"x=1:2:0.3", "x", nil, []string{"1", "1.3", "1.6", "1.9"}},
		{"scheduler.backoff=100ms:300ms:100ms", "scheduler.backoff", nil, []string{"100ms", "200ms", "300ms"}},
		// A range among plain values.
		{"scheduler.d=1,3:5:1,8", "scheduler.d", nil, []string{"1", "3", "4", "5", "8"}},
		// Lists by name, index, after a dot or in brackets.
		{"classes.sovereign.subsidy=0,0.5", "classes.sovereign.subsidy",
			[]pathKey{{name: "classes"}, {name: "sovereign"}, {name: "subsidy"}}, []string{"0", "0.5"}},
		{"classes[sovereign].count=1", "classes[sovereign].count",
			[]pathKey{{name: "classes"}, {name: "sovereign", bracketed: true}, {name: "count"}}, []string{"1"}},
		{"network.rtt_ms[0][1]=5", "network.rtt_ms[0][1]",
			[]pathKey{{name: "network"}, {name: "rtt_ms"}, {name: "0", bracketed: true}, {name: "1", bracketed: true}}, []string{"5"}},
		// Commas inside brackets and quotes belong to the value.
		{`variants.v.exclude=[a, b],[c]`, "variants.v.exclude", nil, []string{"[a, b]", "[c]"}},
		{`workload.ceilings[1]={currency: EUR, cpu_per_hour: "0.05"}, {weight: 2}`, "workload.ceilings[1]", nil,
			[]string{`{currency: EUR, cpu_per_hour: "0.05"}`, "{weight: 2}"}},
		{`scheduler.policy=cheapest, "best-fit"`, "scheduler.policy", nil, []string{"cheapest", `"best-fit"`}},
	} {
		p, err := ParseSweepParam(tt.in)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if p.Path != tt.path {
			t.Errorf("%s: path %q, want %q", tt.in, p.Path, tt.path)
		}
		if tt.keys != nil {
			if diff := cmp.Diff(tt.keys, p.keys, cmp.AllowUnexported(pathKey{})); diff != "" {
				t.Errorf("%s: keys (-want +got):\n%s", tt.in, diff)
			}
		}
		if diff := cmp.Diff(tt.values, p.Values); diff != "" {
			t.Errorf("%s: values (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"workload.arrivals.load", "want PATH=VALUES"},
		{"=1,2", "want PATH=VALUES"},
		{"x=", "an empty value"},
		{"x=1,,2", "an empty value"},
		{"x=1,1", "value 1 given twice"},
		{"x=1:0:1", "the end is below the start"},
		{"x=0:1:0", "the step must be above 0"},
		{"x=0:1000000:1", "more than 1000 values"},
		{"x=[1", "not closed"},
		{"x=1]", "without its opening"},
		{"a..b=1", "a key is missing around a dot"},
		{".a=1", "a key is missing around a dot"},
		{"a.=1", "a key is missing around a dot"},
		{"[0].a=1", "name the list first"},
		{"a[=1", "a [ without its ]"},
		{"a[]=1", "empty brackets"},
		{"a]=1", "a ] without its ["},
		{"a[0]b=1", "a dot is missing after ]"},
	} {
		if _, err := ParseSweepParam(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

// sweepScenario is a tiny scenario for sweeps: two classes, two variants,
// a minute of jobs.
const sweepScenario = `name: tiny
duration: 1m
network: {regions: [a, b], rtt_ms: [[1, 10], [10, 1]]}
scheduler: {d: 2}
classes:
  - {name: small, count: 40, capacity: {cpu: "4", memory: 8Gi}, pricing: {currency: EUR, cpu_per_hour: "0.03"}}
  - name: big
    count: 4
    capacity: {cpu: "32", memory: 64Gi}
    pricing: {currency: EUR, cpu_per_hour: "0.05"}
workload:
  arrivals: {rate: 5}
  sizes: [{cpu: "1", memory: 1Gi}]
  duration: {mean: 20s}
variants:
  - {name: all}
  - {name: small-only, exclude: [big]}
`

func writeSweepScenario(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(path, []byte(sweepScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustParams(t *testing.T, ss ...string) []SweepParam {
	t.Helper()
	var out []SweepParam
	for _, s := range ss {
		p, err := ParseSweepParam(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestSweepLoad sets keys that exist, keys left out, list entries by name
// and index, and checks the parsed scenarios.
func TestSweepLoad(t *testing.T) {
	path := writeSweepScenario(t)
	points, err := LoadSweep(path, mustParams(t, "classes.big.count=1,8", "scheduler.max_attempts=3,5,7"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(points) != 6 {
		t.Fatalf("%d points, want 2 x 3", len(points))
	}
	for i, want := range []struct {
		values   []string
		count    int
		attempts int
	}{
		{[]string{"1", "3"}, 1, 3}, {[]string{"1", "5"}, 1, 5}, {[]string{"1", "7"}, 1, 7},
		{[]string{"8", "3"}, 8, 3}, {[]string{"8", "5"}, 8, 5}, {[]string{"8", "7"}, 8, 7},
	} {
		pt := points[i]
		if diff := cmp.Diff(want.values, pt.Values); diff != "" {
			t.Errorf("point %d values (-want +got):\n%s", i, diff)
		}
		if got := pt.Scenario.Classes[1].Count; got != want.count {
			t.Errorf("point %d: big count %d, want %d", i, got, want.count)
		}
		if got := pt.Scenario.Scheduler.Config.MaxAttempts; got != want.attempts {
			t.Errorf("point %d: max_attempts %d, want %d", i, got, want.attempts)
		}
		if pt.Scenario.Classes[0].Count != 40 || pt.Scenario.Scheduler.Config.D != 2 {
			t.Errorf("point %d: the rest changed: %+v", i, pt.Scenario.Classes[0])
		}
	}

	for _, tt := range []struct {
		params []string
		sets   []string
		check  func(*Scenario) bool
	}{
		{[]string{"classes[0].capacity.cpu=8"}, nil, func(s *Scenario) bool { return s.Classes[0].Capacity.CPUMillis == 8000 }},
		{[]string{"classes.1.subsidy=0.25"}, nil, func(s *Scenario) bool { return s.Classes[1].Subsidy == 0.25 }},
		{[]string{"workload.sizes[0].cpu=2"}, nil, func(s *Scenario) bool { return s.Workload.Sizes[0].Resources.CPUMillis == 2000 }},
		{[]string{"variants.small-only.d=4"}, nil, func(s *Scenario) bool { return s.Variants[1].D == 4 }},
		{[]string{"drain=10m"}, nil, func(s *Scenario) bool { return s.Drain == 10*time.Minute }},
		{[]string{"discovery.cache_ttl=1s"}, nil, func(s *Scenario) bool { return s.Discovery.CacheTTL == time.Second }},
		// The rate left out, the load swept instead.
		{[]string{"workload.arrivals.load=0.5"}, []string{"workload.arrivals.rate="}, func(s *Scenario) bool {
			return s.Workload.Arrivals.Load == 0.5 && s.Workload.Arrivals.Rate == 0
		}},
		{[]string{"scheduler.policy=cheapest"}, []string{"scheduler.d=3"}, func(s *Scenario) bool {
			return s.Scheduler.PolicyName == "cheapest" && s.Scheduler.Config.D == 3
		}},
	} {
		var sets []SweepParam
		for _, s := range tt.sets {
			p, err := ParseSet(s)
			if err != nil {
				t.Fatal(err)
			}
			sets = append(sets, p)
		}
		points, err := LoadSweep(path, mustParams(t, tt.params...), sets)
		if err != nil {
			t.Errorf("%v %v: %v", tt.params, tt.sets, err)
			continue
		}
		if !tt.check(points[0].Scenario) {
			t.Errorf("%v %v: not set", tt.params, tt.sets)
		}
	}
}

// TestSweepLoadErrors: unknown paths and bad values are errors that name
// the parameter, its value and, from the parser, the line.
func TestSweepLoadErrors(t *testing.T) {
	path := writeSweepScenario(t)
	for _, tt := range []struct {
		params []string
		sets   []string
		want   []string
	}{
		{[]string{"workload.arrivals.rat=1,2"}, nil,
			[]string{"--param workload.arrivals.rat=1:", "tiny.yaml:12:13: workload.arrivals.rat: unknown field: did you mean rate?"}},
		{[]string{"classes.bog.count=1"}, nil, []string{`--param classes.bog.count: classes has no entry named "bog": did you mean big?`}},
		{[]string{"classes.tiny.count=1"}, nil, []string{`classes has no entry named "tiny": the names are small, big`}},
		{[]string{"classes[5].count=1"}, nil, []string{"classes has 2 entries: index 5 is out of range"}},
		{[]string{"workload.sizes.one.cpu=1"}, nil, []string{"workload.sizes is a list without names: choose its entry by index, from 0 to 0"}},
		{[]string{"name.x=1"}, nil, []string{`x: name is a value (the string "tiny"), not a section or a list`}},
		{[]string{"scheduler[d]=1"}, nil, []string{"[d]: scheduler is a section, not a list"}},
		// A bad value: the parser's message, at the line of the value.
		{[]string{"classes.big.count=2,0"}, nil, []string{"--param classes.big.count=0: ", "tiny.yaml:8:5: classes[1].count: 0 is out of range"}},
		{[]string{"scheduler.policy=fastest"}, nil, []string{`tiny.yaml:4:12: scheduler.policy: unknown ranking policy "fastest"`}},
		{[]string{"workload.arrivals.load=0.5"}, nil, []string{"workload.arrivals: both a rate and a load"}},
		{[]string{"scheduler.d=2"}, []string{"scheduler.d=3"}, []string{"scheduler.d set twice"}},
		{[]string{"scheduler.d=2", "scheduler.d=3"}, nil, []string{"scheduler.d set twice"}},
		{[]string{"scheduler.d={a: b: c}"}, nil, []string{"is not YAML"}},
		{[]string{"scheduler.d=2"}, []string{"workload.arrivals.rat="}, []string{"--set workload.arrivals.rat= --param scheduler.d=2:", "unknown field"}},
		{nil, nil, []string{"no --param"}},
	} {
		var sets []SweepParam
		for _, s := range tt.sets {
			p, err := ParseSet(s)
			if err != nil {
				t.Fatal(err)
			}
			sets = append(sets, p)
		}
		_, err := LoadSweep(path, mustParams(t, tt.params...), sets)
		if err == nil {
			t.Errorf("%v: no error", tt.params)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error\n%v\nwant it to contain\n%s", tt.params, err, w)
			}
		}
	}
	if _, err := LoadSweep(filepath.Join(t.TempDir(), "none.yaml"), mustParams(t, "scheduler.d=1"), nil); err == nil {
		t.Error("a missing file: no error")
	}
}

// TestSweepWrite checks sweep.csv, sweep_runs.csv, the manifest and the
// plots of a sweep of synthetic results.
func TestSweepWrite(t *testing.T) {
	params := mustParams(t, "scheduler.d=1,2")
	s := &SweepResult{Params: params}
	for k, d := range []string{"1", "2"} {
		step := time.Duration(k+1) * time.Millisecond
		s.Add(SweepPoint{Values: []string{d}}, []*Result{
			reportResult("closed", 1, 300, step, 0),
			reportResult("closed", 2, 300, 2*step, 0),
			reportResult("open", 1, 300, step, 0),
			reportResult("open", 2, 300, step, 0),
		})
	}
	dir := t.TempDir()
	names, err := ParseMetrics("")
	if err != nil {
		t.Fatal(err)
	}
	m := NewManifest("tiny.yaml", []byte(sweepScenario), "abc", 1, 2, nil, nil)
	if err := WriteSweep(dir, s, m, SweepPlots{Metrics: names, Formats: []string{"png", "svg"}}); err != nil {
		t.Fatal(err)
	}
	header, rows := readCSV(t, filepath.Join(dir, sweepCSV))
	if got := strings.Join(header, ","); got != "scheduler.d,variant,metric,n,mean,sd,ci_low,ci_high" {
		t.Fatalf("header %s", got)
	}
	if len(rows) != 2*2*len(metrics) {
		t.Fatalf("%d rows, want %d", len(rows), 4*len(metrics))
	}
	for _, r := range rows {
		if r["scheduler.d"] == "2" && r["variant"] == "closed" && r["metric"] == "wait_p50_ms" {
			// 300 and 600 ms: mean 450, sd 212.13.
			if r["n"] != "2" || r["mean"] != "450.000000" || r["sd"] != "212.132034" {
				t.Errorf("d=2 closed wait_p50_ms: %v", r)
			}
		}
	}
	header, runs := readCSV(t, filepath.Join(dir, sweepRunsCSV))
	if header[0] != "scheduler.d" || header[1] != "variant" || header[2] != "seed" || len(runs) != 8 {
		t.Errorf("sweep_runs.csv: header %v, %d rows", header[:3], len(runs))
	}
	var sm struct {
		Scenario string `json:"scenario"`
		Params   []struct {
			Path   string   `json:"path"`
			Values []string `json:"values"`
		} `json:"params"`
		Points []struct {
			Values  []string `json:"values"`
			Results []struct {
				Seed      uint64 `json:"seed"`
				TraceHash string `json:"trace_hash"`
			} `json:"results"`
		} `json:"points"`
		Results any `json:"results"`
	}
	data, err := os.ReadFile(filepath.Join(dir, manifestJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &sm); err != nil {
		t.Fatal(err)
	}
	if sm.Scenario != "tiny" || len(sm.Params) != 1 || sm.Params[0].Path != "scheduler.d" || len(sm.Points) != 2 ||
		len(sm.Points[1].Results) != 4 || sm.Points[1].Results[1].Seed != 2 || sm.Results != nil {
		t.Errorf("manifest: %s", data)
	}
	for _, name := range names {
		for _, ext := range []string{"png", "svg"} {
			if fi, err := os.Stat(filepath.Join(dir, "sweep_"+name+"."+ext)); err != nil || fi.Size() == 0 {
				t.Errorf("sweep_%s.%s: %v", name, ext, err)
			}
		}
	}
	// Nominal values (policies) and two parameters plot too.
	s.Params = mustParams(t, "scheduler.policy=cheapest,balanced", "scheduler.d=1")
	for i := range s.Points {
		s.Points[i].Values = []string{[]string{"cheapest", "balanced"}[i], "1"}
	}
	if err := WriteSweep(t.TempDir(), s, m, SweepPlots{Metrics: []string{"wait_p99_ms", "detect_p50_ms"}}); err != nil {
		t.Fatal(err)
	}
	// On a log scale, the metric without data (detection: no crash) too.
	if err := WriteSweep(t.TempDir(), s, m, SweepPlots{Metrics: []string{"wait_p99_ms", "detect_p50_ms"}, LogY: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseMetrics("wait_p50_ms,nonsense"); err == nil || !strings.Contains(err.Error(), `unknown metric "nonsense"`) {
		t.Errorf("unknown metric: %v", err)
	}
}
