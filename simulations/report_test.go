package simulations

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reportResult builds a synthetic result of n jobs, one submitted per
// second. Job i of the first n-unplaced waits (i+1)*step and succeeds after
// 30 minutes on 2 CPUs, paying 1 + (i%5)/10 per CPU-hour; the rest were
// never placed, and count as waiting their whole 2-minute placement
// timeout (censored). Waits are thus known exactly: with step 1ms and none
// unplaced, the nearest-rank p50 of 300 jobs is 150ms.
func reportResult(variant string, seed uint64, n int, step time.Duration, unplaced int) *Result {
	r := &Result{
		Scenario:         "synthetic",
		Variant:          variant,
		Seed:             seed,
		TraceHash:        "abc123",
		Events:           100_000,
		SimTime:          2 * time.Hour,
		Wall:             2 * time.Second,
		BytesPerProvider: 1234.5,
		Classes: []ClassRecord{
			{Class: "edge", Providers: 6, Leases: 10, Utilisation: 0.4, Revenue: 12.5, Subsidy: 3, Currency: "EUR"},
			{Class: "dc", Providers: 4, Leases: 20, Utilisation: 0.7, Revenue: 40, Subsidy: 0, Currency: "EUR"},
		},
	}
	for i := range 10 {
		class := "edge"
		if i >= 6 {
			class = "dc"
		}
		r.Providers = append(r.Providers, ProviderRecord{
			ID: i, Class: class, Region: "eu", Operator: "op", CPUMillis: 8000,
			Leases: 3, BusyCPUSecs: 1234.5678, Utilisation: 0.5, Revenue: 1.25, Currency: "EUR",
		})
	}
	run := 30 * time.Minute
	for i := range n {
		j := JobRecord{
			ID: i, Requester: i % 7, Submitted: time.Duration(i) * time.Second,
			Deadline: time.Duration(i)*time.Second + 2*time.Minute,
			Placed:   -1, Ended: -1, State: "placing",
			CPUMillis: 2000, MemoryBytes: 1 << 30, Run: run, Currency: "EUR",
		}
		if i < n-unplaced {
			j.Placed = j.Submitted + time.Duration(i+1)*step
			j.Ended = j.Placed + run
			j.State = "succeeded"
			j.Epochs = 1
			j.Class = r.Classes[i%2].Class
			j.Paid = 2 * 0.5 * (1 + float64(i%5)/10)
			j.CPUSeconds = 2 * run.Seconds()
			r.Placements = append(r.Placements, PlacementRecord{
				Job: i, Epoch: 1, Provider: i % 10, Class: j.Class, Region: "eu",
				At: j.Placed, Latency: j.Wait(), Quoted: j.Paid, Currency: "EUR",
			})
		}
		r.Jobs = append(r.Jobs, j)
	}
	for k := range 120 {
		u := 0.5 + 0.3*math.Sin(float64(k)/10)
		r.Series = append(r.Series, Sample{
			At: time.Duration(k) * time.Minute, Placing: k % 13, Running: k % 17,
			Done: k, Up: 10, Utilisation: u, ByClass: []float64{u / 2, u},
		})
	}
	return r
}

func reportResults() []*Result {
	return []*Result{
		reportResult("closed", 1, 300, time.Millisecond, 0),
		reportResult("open", 1, 300, 2*time.Millisecond, 100),
	}
}

// readCSV reads a whole CSV file and returns its header and rows.
func readCSV(t *testing.T, path string) (header []string, rows []map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: no header", path)
	}
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, h := range recs[0] {
			row[h] = rec[i]
		}
		rows = append(rows, row)
	}
	return recs[0], rows
}

func TestReportWriteRun(t *testing.T) {
	rs := reportResults()
	dir := t.TempDir()
	for _, r := range rs {
		if err := WriteRun(filepath.Join(dir, r.Variant), r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		file   string
		header []string
		rows   int
	}{
		{jobsCSV, []string{"id", "requester", "submitted_s", "placed_s", "ended_s", "wait_s", "state", "cpu_millis", "memory_bytes", "run_s", "constrained", "epochs", "class", "cpu_s", "paid", "subsidy", "currency", "reason", "code", "capacity_wait_s", "deadline_s", "censored"}, 300},
		{placementsCSV, []string{"job", "epoch", "provider", "class", "region", "at_s", "latency_s", "quoted", "currency"}, 200},
		{providersCSV, []string{"id", "class", "region", "operator", "cpu_millis", "leases", "crashes", "busy_cpu_s", "utilisation", "revenue", "subsidy", "currency", "dead_asks", "up_s", "wholesale", "site"}, 10},
		{classesCSV, []string{"class", "providers", "leases", "utilisation", "revenue", "subsidy", "currency", "wholesale", "site"}, 2},
		{timeseriesCSV, []string{"at_s", "placing", "running", "done", "up", "utilisation", "util_edge", "util_dc"}, 120},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			header, rows := readCSV(t, filepath.Join(dir, "open", tt.file))
			if diff := cmp.Diff(tt.header, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if len(rows) != tt.rows {
				t.Errorf("%d rows, want %d", len(rows), tt.rows)
			}
		})
	}

	t.Run("values", func(t *testing.T) {
		_, jobs := readCSV(t, filepath.Join(dir, "closed", jobsCSV))
		want := map[string]string{
			"id": "7", "requester": "0", "submitted_s": "7.000", "placed_s": "7.008",
			"ended_s": "1807.008", "wait_s": "0.008", "state": "succeeded",
			"cpu_millis": "2000", "cpu_s": "3600.000", "memory_bytes": "1073741824", "run_s": "1800.000",
			"constrained": "false", "epochs": "1", "class": "dc", "paid": "1.200000",
			"subsidy": "0.000000", "currency": "EUR", "reason": "", "code": "", "capacity_wait_s": "0.000",
			"deadline_s": "127.000", "censored": "false",
		}
		if diff := cmp.Diff(want, jobs[7]); diff != "" {
			t.Errorf("jobs.csv row 7 (-want +got):\n%s", diff)
		}
		_, jobs = readCSV(t, filepath.Join(dir, "open", jobsCSV))
		never := jobs[250]
		for _, col := range []string{"placed_s", "ended_s"} {
			if never[col] != "" {
				t.Errorf("unplaced job: %s = %q, want empty", col, never[col])
			}
		}
		// Never placed: it waited its whole placement timeout, censored.
		if never["wait_s"] != "120.000" || never["censored"] != "true" || never["deadline_s"] != "370.000" {
			t.Errorf("unplaced job: wait_s %q, censored %q, deadline_s %q; want 120.000, true, 370.000", never["wait_s"], never["censored"], never["deadline_s"])
		}
		_, ps := readCSV(t, filepath.Join(dir, "open", providersCSV))
		if got := ps[0]["busy_cpu_s"]; got != "1234.568" {
			t.Errorf("busy_cpu_s = %q, want 1234.568", got)
		}
		_, ts := readCSV(t, filepath.Join(dir, "open", timeseriesCSV))
		if got := ts[2]; got["at_s"] != "120.000" || got["util_dc"] != fmtRatio(0.5+0.3*math.Sin(0.2)) {
			t.Errorf("timeseries row 2 = %v", got)
		}
	})
}

func TestReportFmtSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.000"},
		{12345 * time.Millisecond, "12.345"},
		{999_999 * time.Microsecond, "1.000"},
		{1_499 * time.Microsecond, "0.001"},
		{-1500 * time.Millisecond, "-1.500"},
		{-1 * time.Millisecond, "-0.001"},
		{36 * time.Hour, "129600.000"},
	}
	for _, tt := range tests {
		if got := fmtSeconds(tt.d); got != tt.want {
			t.Errorf("fmtSeconds(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestReportPercentile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		p    float64
		want float64
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}, {0, 1}}
	for _, tt := range tests {
		if got := percentile(xs, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("p50 of nothing = %v, want NaN", got)
	}
}

func TestReportEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := WriteRun(dir, nil); err == nil {
		t.Error("WriteRun(nil): no error")
	}
	if err := WriteRun(dir, &Result{}); err != nil {
		t.Fatal(err)
	}
	_, rows := readCSV(t, filepath.Join(dir, jobsCSV))
	if len(rows) != 0 {
		t.Errorf("%d job rows, want 0", len(rows))
	}
	var b bytes.Buffer
	Summary(&b, nil)
	Summary(&b, []*Result{nil, {}, reportResult("none", 1, 50, time.Millisecond, 50)})
	if !strings.Contains(b.String(), "none") {
		t.Errorf("summary lacks the variant with no placed job:\n%s", b.String())
	}
}

func TestManifestRoundTrip(t *testing.T) {
	rs := reportResults()
	text := []byte("name: synthetic\nseed: 1\n")
	m := NewManifest("scenarios/synthetic.yaml", text, "abc123", 1, 1, rs, []string{"closed", "open"})
	if m.Scenario != "synthetic" || m.ScenarioFile != "synthetic.yaml" || m.ScenarioText != string(text) {
		t.Errorf("manifest scenario = %q %q %q", m.Scenario, m.ScenarioFile, m.ScenarioText)
	}
	// The hash of the text, as sha256sum prints it.
	if want := "10391d97587a0469f28e3578e3610b18422d4346753efd44b589ac012c728857"; m.ScenarioSHA256 != want {
		t.Errorf("scenario_sha256 = %q, want %q", m.ScenarioSHA256, want)
	}
	if len(m.Results) != 2 || m.Results[1].Dir != "open" || m.Results[1].Jobs != 300 ||
		m.Results[0].EventsPerSecond != 50_000 || m.Results[0].SimSeconds != 7200 {
		t.Errorf("manifest results = %+v", m.Results)
	}
	if m.Commit == "" || m.GoVersion == "" {
		t.Errorf("commit %q, go version %q: want both set", m.Commit, m.GoVersion)
	}
	dir := t.TempDir()
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, manifestJSON))
	if err != nil {
		t.Fatal(err)
	}
	var got Manifest
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-wrote +read):\n%s", diff)
	}
	for _, key := range []string{`"scenario_sha256"`, `"trace_hash"`, `"events_per_second"`, `"bytes_per_provider"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("manifest.json lacks %s", key)
		}
	}
}

var plotDir = flag.String("plotdir", "", "keep the plots of TestPlotWritePlots under this directory, to look at them")

func TestPlotWritePlots(t *testing.T) {
	tests := []struct {
		name string
		rs   []*Result
	}{
		{"two variants", reportResults()},
		{"pooled runs", append(reportResults(), reportResult("closed", 2, 300, 3*time.Millisecond, 10))},
		{"one variant", reportResults()[:1]},
		{"a variant with no placed job", []*Result{
			reportResult("closed", 1, 300, time.Millisecond, 0),
			reportResult("stuck", 1, 300, time.Millisecond, 300),
		}},
		{"zero waits", []*Result{reportResult("instant", 1, 300, 0, 0)}},
		{"nothing", nil},
		{"empty results", []*Result{nil, {Variant: "a"}, {Variant: "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if *plotDir != "" {
				dir = filepath.Join(*plotDir, strings.ReplaceAll(tt.name, " ", "_"))
			}
			if err := WritePlots(dir, tt.rs); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{latencyPNG, utilisationPNG, pricePNG, revenuePNG, waitingPNG} {
				f, err := os.Open(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				img, err := png.Decode(f)
				f.Close()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 500 {
					t.Errorf("%s: %v, want about 945x591", name, b)
				}
			}
		})
	}
}

func TestPlotCDF(t *testing.T) {
	xs := make([]float64, 10_000)
	for i := range xs {
		xs[i] = float64(len(xs) - i) // reversed: cdf sorts
	}
	got := cdf(xs, true)
	if len(got) != cdfPoints {
		t.Fatalf("%d points, want %d", len(got), cdfPoints)
	}
	if got[0].X != 1 || got[len(got)-1].X != 10_000 || got[len(got)-1].Y != 1 {
		t.Errorf("ends %v %v, want the minimum and (max, 1)", got[0], got[len(got)-1])
	}
	zeros := cdf([]float64{0, 0, 1, 2, math.NaN()}, true)
	if diff := cmp.Diff([]float64{1, 2}, []float64{zeros[0].X, zeros[1].X}); diff != "" || zeros[0].Y != 0.75 {
		t.Errorf("zeros: %v", zeros)
	}
}

func TestSummary(t *testing.T) {
	var b bytes.Buffer
	Summary(&b, reportResults())
	t.Logf("\n%s", b.String())
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header, 2 rows and a note on censored waits:\n%s", len(lines), b.String())
	}
	if !strings.Contains(lines[3], "100 jobs never placed count as waiting until their placement deadline (censored)") {
		t.Errorf("note %q: want it to count the 100 jobs never placed", lines[3])
	}
	header := strings.Fields(lines[0])
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	// closed: waits 1..300 ms; open: 200 placed, waits 2..400 ms, and 100
	// never placed, each counted as its 2-minute placement timeout.
	tests := []struct {
		variant, placed, p50, p90, p99, price string
	}{
		{"closed", "100.0", "150.0", "270.0", "297.0", "1.2000"},
		{"open", "66.7", "300.0", "120000.0", "120000.0", "1.2000"},
	}
	for i, tt := range tests {
		f := strings.Fields(lines[i+1])
		if len(f) != len(header) {
			t.Fatalf("row %q: %d fields, want %d", lines[i+1], len(f), len(header))
		}
		got := []string{f[col["variant"]], f[col["placed%"]], f[col["wait_p50_ms"]], f[col["wait_p90_ms"]], f[col["wait_p99_ms"]], f[col["price_cpu_h_p50"]]}
		want := []string{tt.variant, tt.placed, tt.p50, tt.p90, tt.p99, tt.price}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("row %d (-want +got):\n%s\n%s", i, diff, b.String())
		}
	}
	if w := len(lines[0]); len(lines[1]) != w || len(lines[2]) != w {
		t.Errorf("rows not fixed-width:\n%s", b.String())
	}
}

// reportBig is a result of n jobs, for the benchmarks.
func reportBig(n int) *Result {
	return reportResult("big", 1, n, time.Microsecond, n/10)
}

// BenchmarkReportWriteRun writes the CSVs of a million jobs. It should take
// well under 10 s an op.
func BenchmarkReportWriteRun(b *testing.B) {
	r := reportBig(1_000_000)
	dir := b.TempDir()
	for b.Loop() {
		if err := WriteRun(dir, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlotWritePlots draws the plots of two variants of a million jobs
// each. It should take well under 10 s an op.
func BenchmarkPlotWritePlots(b *testing.B) {
	rs := []*Result{reportBig(1_000_000), reportBig(1_000_000)}
	rs[1].Variant = "big2"
	dir := b.TempDir()
	for b.Loop() {
		if err := WritePlots(dir, rs); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFaults sums synthetic losses: 10 leases lost 1..10 s after their
// crash and re-placed 10..100 ms later, one never found and one never
// placed again; and writes them to losses.csv.
func TestFaults(t *testing.T) {
	r := reportResult("churn", 1, 300, time.Millisecond, 0)
	r.DeadAsks = 7
	r.Providers[3].Crashes = 4
	for i := range 10 {
		crashed := time.Duration(i) * time.Minute
		l := LossRecord{Job: i, Epoch: 1, Provider: 3, Crashed: crashed,
			Detected: crashed + time.Duration(i+1)*time.Second, Replaced: -1, ByRestart: i%2 == 0}
		l.Replaced = l.Detected + time.Duration(i+1)*10*time.Millisecond
		r.Losses = append(r.Losses, l)
	}
	r.Losses = append(r.Losses,
		LossRecord{Job: 20, Epoch: 2, Provider: 3, Crashed: time.Hour, Detected: time.Hour + 20*time.Second, Replaced: -1},
		LossRecord{Job: 21, Epoch: 1, Provider: 3, Crashed: time.Hour, Detected: -1, Replaced: -1})
	r.Jobs[20].State, r.Jobs[20].Code = "failed", "leases lost"
	r.Jobs[21].State, r.Jobs[21].Code = "failed", "run failed" // its own failure: not lost
	r.Jobs[22].State = "running"                               // cut off by the end of the run: lost
	r.Jobs[5].CapacityWait = 3 * time.Second

	f := FaultsOf(r)
	want := Faults{
		Crashes: 4, LeasesLost: 12, Undetected: 1, ByRestart: 5, NotReplaced: 1,
		DetectP50: 6 * time.Second, DetectP99: 20 * time.Second, // 1..10 s and 20 s
		ReplaceP50: 50 * time.Millisecond, ReplaceP99: 100 * time.Millisecond,
		JobsLost: 2, DeadAsks: 7, Waited: 1, CapacityWaitP50: 3 * time.Second, CapacityWaitP99: 3 * time.Second,
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("faults (-want +got):\n%s", diff)
	}
	var b bytes.Buffer
	Summary(&b, []*Result{r})
	if !strings.Contains(b.String(), "detect_p99_ms") || !strings.Contains(b.String(), "20000.0") {
		t.Errorf("summary lacks the faults table:\n%s", b.String())
	}

	dir := t.TempDir()
	if err := WriteRun(dir, r); err != nil {
		t.Fatal(err)
	}
	header, rows := readCSV(t, filepath.Join(dir, lossesCSV))
	if diff := cmp.Diff([]string{"job", "epoch", "provider", "crashed_s", "detected_s", "replaced_s", "detection_s", "replacement_s", "by_restart"}, header); diff != "" {
		t.Errorf("losses.csv header (-want +got):\n%s", diff)
	}
	if len(rows) != 12 || rows[1]["detection_s"] != "2.000" || rows[1]["replacement_s"] != "0.020" || rows[11]["detected_s"] != "" || rows[10]["replaced_s"] != "" {
		t.Errorf("losses.csv rows: %v", rows)
	}
}

func TestPlotFormats(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", []string{"png"}},
		{"png", []string{"png"}},
		{"SVG, pdf,svg", []string{"svg", "pdf"}},
		{"png,svg,pdf", []string{"png", "svg", "pdf"}},
	} {
		got, err := ParseFormats(tt.in)
		if err != nil || !cmp.Equal(got, tt.want) {
			t.Errorf("ParseFormats(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseFormats("png,jpeg"); err == nil || !strings.Contains(err.Error(), `unknown plot format "jpeg"`) {
		t.Errorf("jpeg: %v", err)
	}
	// Every plot in SVG and PDF, from several runs (bands and bars).
	dir := t.TempDir()
	rs := append(statsResults(), reportResult("closed", 4, 300, 2*time.Millisecond, 5))
	if err := WritePlotsAs(dir, rs, []string{"svg", "pdf"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{latencyPNG, utilisationPNG, pricePNG, revenuePNG, waitingPNG} {
		base := strings.TrimSuffix(name, ".png")
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s written, but not asked for", name)
		}
		for ext, magic := range map[string]string{"svg": "<svg", "pdf": "%PDF-"} {
			data, err := os.ReadFile(filepath.Join(dir, base+"."+ext))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data[:min(len(data), 512)], []byte(magic)) {
				t.Errorf("%s.%s does not start as one: %q", base, ext, data[:min(len(data), 40)])
			}
		}
	}
}

func TestPlotTimeAxis(t *testing.T) {
	// reportResult: 300 jobs, one a second; each ends 30 minutes after it
	// was placed; samples every minute for two hours. 99% of jobs have
	// ended a little after 34 minutes: the axis ends on the next tick.
	gs := groupByVariant([]*Result{
		reportResult("closed", 1, 300, time.Millisecond, 0),
		reportResult("closed", 2, 300, 2*time.Millisecond, 0),
	})
	ax := timeAxisOf(gs)
	if ax.unit != time.Minute || ax.lastArrival != 299*time.Second || ax.end != 119*time.Minute {
		t.Errorf("axis %+v: want minutes, the last arrival at 299s, the end at 119m", ax)
	}
	if ax.cut < 34*time.Minute || ax.cut > 36*time.Minute || ax.cutAt != endedShare {
		t.Errorf("cut at %v (%v), want about 35m", ax.cut, ax.cutAt)
	}
	if l := ax.label(); !strings.Contains(l, "time (min); cut once 99% of jobs had ended, the run went on to 1h59m") {
		t.Errorf("label %q", l)
	}
	// Without jobs the axis is the series.
	ax = timeAxisOf(groupByVariant([]*Result{{Variant: "a", Series: []Sample{{At: 0}, {At: 5 * time.Hour}}}}))
	if ax.unit != time.Hour || ax.cut != 5*time.Hour || ax.cutAt != 0 {
		t.Errorf("no jobs: %+v", ax)
	}
	for _, tt := range []struct {
		unit   time.Duration
		lo, hi float64
		want   []string // the labelled ticks
		minor  int
	}{
		{time.Minute, 0, 19, []string{"0", "5", "10", "15"}, 16},
		{time.Minute, 0, 125, []string{"0", "20", "40", "60", "80", "100", "120"}, 19},
		{time.Second, 0, 145, []string{"0", "20", "40", "60", "80", "100", "120", "140"}, 22},
		{time.Hour, 0, 13, []string{"0", "2", "4", "6", "8", "10", "12"}, 20},
		{time.Minute, 0, 3.5, []string{"0", "1", "2", "3"}, 14},
	} {
		var labels []string
		minor := 0
		for _, tk := range (timeTicks{unit: tt.unit}).Ticks(tt.lo, tt.hi) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			} else {
				minor++
			}
		}
		if !cmp.Equal(labels, tt.want) || minor != tt.minor {
			t.Errorf("%v ticks %v..%v: %v and %d minor, want %v and %d", tt.unit, tt.lo, tt.hi, labels, minor, tt.want, tt.minor)
		}
	}
	if got := (timeTicks{unit: time.Minute}).roundUp(18.3); got != 19 {
		t.Errorf("roundUp(18.3) = %v, want 19", got)
	}
	for d, want := range map[time.Duration]string{
		2*time.Hour + 41*time.Minute + 10*time.Second: "2h41m",
		3 * time.Hour:                   "3h",
		12*time.Minute + 30*time.Second: "12m30s",
		5 * time.Minute:                 "5m",
		1500 * time.Millisecond:         "1.5s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestPlotSeriesBand checks the mean and interval drawn at one sample time.
func TestPlotSeriesBand(t *testing.T) {
	rs := []*Result{
		{Series: []Sample{{At: 0, Placing: 1}, {At: time.Minute, Placing: 2}}},
		{Series: []Sample{{At: 0, Placing: 3}, {At: time.Minute, Placing: 4}, {At: 2 * time.Minute, Placing: 9}}},
	}
	pts := seriesStats(rs, func(s *Sample) float64 { return float64(s.Placing) }, time.Minute)
	if len(pts) != 2 {
		t.Fatalf("%d points, want 2 (the third is past the cut)", len(pts))
	}
	// 2 and 4: mean 3, sd sqrt(2), half-width 12.706.
	if pts[1].at != time.Minute || pts[1].iv.Mean != 3 || math.Abs(pts[1].iv.HalfWidth()-12.7062) > 1e-3 {
		t.Errorf("at 1m: %+v", pts[1])
	}
}
