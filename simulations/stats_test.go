package simulations

import (
	"bytes"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStatsTQuantile checks the t quantiles against the tables.
func TestStatsTQuantile(t *testing.T) {
	for _, tt := range []struct {
		p    float64
		dof  int
		want float64
	}{
		{0.975, 1, 12.706},
		{0.975, 2, 4.303},
		{0.975, 4, 2.776},
		{0.975, 9, 2.262},
		{0.975, 19, 2.093},
		{0.975, 29, 2.045},
		{0.975, 1000, 1.962},
		{0.95, 9, 1.833},
		{0.5, 5, 0},
	} {
		if got := TQuantile(tt.p, tt.dof); math.Abs(got-tt.want) > 5e-4 {
			t.Errorf("TQuantile(%v, %d) = %.4f, want %.3f", tt.p, tt.dof, got, tt.want)
		}
	}
	if !math.IsNaN(TQuantile(0.975, 0)) || !math.IsNaN(TQuantile(1, 5)) {
		t.Error("TQuantile out of its domain is not NaN")
	}
}

// TestStatsMeanCI checks the interval on data worked by hand.
func TestStatsMeanCI(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-3 }
	// 1..10: mean 5.5, sd sqrt(55/6) = 3.02765, t(0.975, 9) = 2.26216,
	// half-width 2.26216 * 3.02765 / sqrt(10) = 2.16585.
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	iv := MeanCI(xs)
	if iv.N != 10 || !near(iv.Mean, 5.5) || !near(iv.SD, 3.02765) || !near(iv.Low, 3.33415) || !near(iv.High, 7.66585) {
		t.Errorf("1..10: %+v", iv)
	}
	if !near(iv.HalfWidth(), 2.16585) {
		t.Errorf("half-width %v", iv.HalfWidth())
	}
	// NaN (no data in a run) is left out: the same as 1..10.
	if got := MeanCI(append(xs, math.NaN(), math.Inf(1))); got != iv {
		t.Errorf("with NaN and Inf: %+v, want %+v", got, iv)
	}
	// Two values 10 and 12: mean 11, sd sqrt(2), t(0.975, 1) = 12.7062,
	// half-width 12.7062 * sqrt(2) / sqrt(2) = 12.7062.
	iv = MeanCI([]float64{10, 12})
	if !near(iv.Mean, 11) || !near(iv.HalfWidth(), 12.7062) {
		t.Errorf("10, 12: %+v", iv)
	}
	// Equal values: a zero-width interval.
	iv = MeanCI([]float64{3, 3, 3})
	if iv.Mean != 3 || iv.Low != 3 || iv.High != 3 {
		t.Errorf("3, 3, 3: %+v", iv)
	}
	one := MeanCI([]float64{4})
	if one.N != 1 || one.Mean != 4 || !math.IsNaN(one.SD) || !math.IsNaN(one.HalfWidth()) {
		t.Errorf("one value: %+v", one)
	}
	none := MeanCI([]float64{math.NaN()})
	if none.N != 0 || !math.IsNaN(none.Mean) {
		t.Errorf("no value: %+v", none)
	}
	for _, tt := range []struct {
		iv   Interval
		want string
	}{
		{MeanCI([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}), "5.5 ± 2.2"},
		{one, "4.0"},
		{none, "-"},
	} {
		if got := fmtInterval(tt.iv, 1); got != tt.want {
			t.Errorf("fmtInterval(%+v) = %q, want %q", tt.iv, got, tt.want)
		}
	}
}

// statsResults are three seeds of two variants; closed's median waits are
// 150, 300 and 450 ms (steps of 1, 2 and 3 ms), open places no job in its
// third seed, so that none succeeds and there is no price paid.
func statsResults() []*Result {
	return []*Result{
		reportResult("closed", 1, 300, time.Millisecond, 0),
		reportResult("open", 1, 300, 2*time.Millisecond, 100),
		reportResult("closed", 2, 300, 2*time.Millisecond, 0),
		reportResult("open", 2, 300, 2*time.Millisecond, 100),
		reportResult("closed", 3, 300, 3*time.Millisecond, 0),
		reportResult("open", 3, 300, 2*time.Millisecond, 300),
	}
}

func TestStatsAggregate(t *testing.T) {
	vs := Aggregate(statsResults())
	if len(vs) != 2 || vs[0].Variant != "closed" || vs[1].Variant != "open" {
		t.Fatalf("variants %+v", vs)
	}
	if got := vs[0].Seeds; len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Errorf("closed seeds %v", got)
	}
	p50, _ := vs[0].Stat("wait_p50_ms")
	// 150, 300, 450: mean 300, sd 150, half-width 4.30265 * 150 / sqrt(3).
	if p50.N != 3 || p50.Mean != 300 || math.Abs(p50.HalfWidth()-372.621) > 1e-2 {
		t.Errorf("closed wait p50: %+v", p50)
	}
	// Open's third seed succeeded no job: its price is over the other two.
	open, _ := vs[1].Stat("price_cpu_h_p50")
	if open.N != 2 || math.Abs(open.Mean-1.2) > 1e-9 || open.HalfWidth() > 1e-9 {
		t.Errorf("open price over the two seeds that succeeded jobs: %+v", open)
	}
	placed, _ := vs[1].Stat("placed_pct")
	if placed.N != 3 || math.Abs(placed.Mean-100*(2.0/3+2.0/3+0)/3) > 1e-9 {
		t.Errorf("open placed: %+v", placed)
	}
	if _, ok := vs[0].Stat("nonsense"); ok {
		t.Error("a metric that does not exist has a value")
	}

	var b bytes.Buffer
	SummaryStats(&b, vs)
	out := b.String()
	t.Logf("\n%s", out)
	for _, want := range []string{"closed", "300.0 ± 372.6", "open", "1.2000 ± 0.0000*", "95% confidence interval", "* over fewer runs"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	lines := strings.Split(out, "\n")
	if f := strings.Fields(lines[0]); len(f) != 3 || f[0] != "metric" || f[1] != "closed" || f[2] != "open" {
		t.Errorf("header %q, want metric and a column per variant", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) != 3 || f[0] != "runs" || f[1] != "3" {
		t.Errorf("second row %q, want the runs", lines[1])
	}
	for _, l := range lines[1:] {
		if l == "" {
			break // the end of the table
		}
		if len([]rune(l)) != len([]rune(lines[0])) {
			t.Errorf("rows not fixed-width:\n%s", out)
			break
		}
	}
}

// TestStatsCSV checks summary.csv and runs.csv.
func TestStatsCSV(t *testing.T) {
	dir := t.TempDir()
	if err := WriteStats(dir, Aggregate(statsResults())); err != nil {
		t.Fatal(err)
	}
	header, rows := readCSV(t, filepath.Join(dir, summaryCSV))
	if got := strings.Join(header, ","); got != "variant,metric,n,mean,sd,ci_low,ci_high" {
		t.Fatalf("header %s", got)
	}
	if len(rows) != 2*len(metrics) {
		t.Fatalf("%d rows, want %d", len(rows), 2*len(metrics))
	}
	find := func(variant, metric string) map[string]string {
		for _, r := range rows {
			if r["variant"] == variant && r["metric"] == metric {
				return r
			}
		}
		t.Fatalf("no row %s %s", variant, metric)
		return nil
	}
	r := find("closed", "wait_p50_ms")
	if r["n"] != "3" || r["mean"] != "300.000000" || r["sd"] != "150.000000" {
		t.Errorf("closed wait_p50_ms: %v", r)
	}
	lo, _ := strconv.ParseFloat(r["ci_low"], 64)
	hi, _ := strconv.ParseFloat(r["ci_high"], 64)
	if math.Abs((hi-lo)/2-372.621) > 1e-2 || math.Abs((hi+lo)/2-300) > 1e-6 {
		t.Errorf("closed wait_p50_ms interval [%v, %v]", lo, hi)
	}
	if r := find("open", "detect_p50_ms"); r["n"] != "0" || r["mean"] != "" || r["ci_low"] != "" {
		t.Errorf("a metric without data: %v", r)
	}
	header, runs := readCSV(t, filepath.Join(dir, runsCSV))
	if len(header) != 2+len(metrics) || header[0] != "variant" || header[1] != "seed" || len(runs) != 6 {
		t.Fatalf("runs.csv: header %v, %d rows", header, len(runs))
	}
	if r := runs[2]; r["variant"] != "closed" || r["seed"] != "3" || r["wait_p50_ms"] != "450.000000" {
		t.Errorf("runs.csv row 3: %v", r)
	}
	if r := runs[5]; r["variant"] != "open" || r["price_cpu_h_p50"] != "" || r["placed_pct"] != "0.000000" {
		t.Errorf("runs.csv row 6: %v", r)
	}
}
