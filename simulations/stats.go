package simulations

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Confidence is the level of every interval the simulator reports.
const Confidence = 0.95

// The files a run of several seeds writes beside its runs' directories.
const (
	summaryCSV = "summary.csv"
	runsCSV    = "runs.csv"
)

// TQuantile is the p-quantile of Student's t distribution with dof degrees
// of freedom (dof >= 1, 0 < p < 1): TQuantile(0.975, 9) is 2.262, the
// factor of a two-sided 95% interval on the mean of ten values.
func TQuantile(p float64, dof int) float64 {
	if dof < 1 || !(p > 0 && p < 1) {
		return math.NaN()
	}
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(dof)}.Quantile(p)
}

// Interval is the mean of a set of values with its two-sided Confidence
// interval, from Student's t with N-1 degrees of freedom: the runs of one
// variant are independent draws (their seeds differ), not a time series.
// Non-finite values (a metric with no data in some run) are left out, so N
// may be less than the runs made. With N = 0 every field but N is NaN;
// with N = 1, SD, Low and High are.
type Interval struct {
	N         int
	Mean, SD  float64
	Low, High float64
}

// HalfWidth is half the interval's width, NaN when there is none.
func (iv Interval) HalfWidth() float64 { return (iv.High - iv.Low) / 2 }

// MeanCI returns the mean of xs with its Confidence interval.
func MeanCI(xs []float64) Interval {
	nan := math.NaN()
	iv := Interval{Mean: nan, SD: nan, Low: nan, High: nan}
	var sum float64
	for _, x := range xs {
		if finite(x) {
			sum += x
			iv.N++
		}
	}
	if iv.N == 0 {
		return iv
	}
	iv.Mean = sum / float64(iv.N)
	if iv.N == 1 {
		return iv
	}
	var ss float64
	for _, x := range xs {
		if finite(x) {
			ss += (x - iv.Mean) * (x - iv.Mean)
		}
	}
	iv.SD = math.Sqrt(ss / float64(iv.N-1))
	h := TQuantile(1-(1-Confidence)/2, iv.N-1) * iv.SD / math.Sqrt(float64(iv.N))
	iv.Low, iv.High = iv.Mean-h, iv.Mean+h
	return iv
}

// metric is one figure computed for each run and aggregated across seeds.
type metric struct {
	name  string // column of the CSVs, snake_case
	col   string // header in the printed table
	prec  int    // decimals printed
	fault bool   // printed in the faults table rather than the summary
	// public marks the figures of subsidised classes, printed in a table of
	// their own when a class of the scenario is subsidised.
	public bool
	value  func(*runFigures) float64
}

// runFigures are the per-run figures the metrics read: what Summary and
// FaultsOf compute for one run, left as they compute it.
type runFigures struct {
	r  *Result
	st summaryStats
	f  Faults
	p  PublicFigures
}

// millis is a duration of Faults in milliseconds, NaN for its -1 of none.
func millis(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return float64(d) / float64(time.Millisecond)
}

// metrics are the figures aggregated across seeds, in the order of the
// tables and CSVs: those of Summary's first table (but for the wall-clock
// ones, which the timing line gives), then those of its faults table.
var metrics = []metric{
	{name: "jobs", col: "jobs", prec: 0, value: func(x *runFigures) float64 { return float64(len(x.r.Jobs)) }},
	{name: "placed_pct", col: "placed%", prec: 1, value: func(x *runFigures) float64 { return x.st.placedPct }},
	{name: "succeeded_pct", col: "succeeded%", prec: 1, value: func(x *runFigures) float64 { return x.st.succeededPct }},
	{name: "censored", col: "censored", prec: 1, value: func(x *runFigures) float64 { return float64(x.st.censored) }},
	{name: "wait_p50_ms", col: "wait_p50_ms", prec: 1, value: func(x *runFigures) float64 { return x.st.waitP50 }},
	{name: "wait_p90_ms", col: "wait_p90_ms", prec: 1, value: func(x *runFigures) float64 { return x.st.waitP90 }},
	{name: "wait_p99_ms", col: "wait_p99_ms", prec: 1, value: func(x *runFigures) float64 { return x.st.waitP99 }},
	{name: "price_cpu_h_p50", col: "price_cpu_h_p50", prec: 4, value: func(x *runFigures) float64 { return x.st.priceP50 }},
	{name: "util_mean", col: "util_mean", prec: 3, value: func(x *runFigures) float64 { return x.st.utilMean }},
	{name: "events", col: "events", prec: 0, value: func(x *runFigures) float64 { return float64(x.r.Events) }},
	{name: "crashes", col: "crashes", prec: 1, fault: true, value: func(x *runFigures) float64 { return float64(x.f.Crashes) }},
	{name: "leases_lost", col: "leases_lost", prec: 1, fault: true, value: func(x *runFigures) float64 { return float64(x.f.LeasesLost) }},
	{name: "by_restart", col: "by_restart", prec: 1, fault: true, value: func(x *runFigures) float64 { return float64(x.f.ByRestart) }},
	{name: "detect_p50_ms", col: "detect_p50_ms", prec: 1, fault: true, value: func(x *runFigures) float64 { return millis(x.f.DetectP50) }},
	{name: "detect_p99_ms", col: "detect_p99_ms", prec: 1, fault: true, value: func(x *runFigures) float64 { return millis(x.f.DetectP99) }},
	{name: "replace_p50_ms", col: "replace_p50_ms", prec: 1, fault: true, value: func(x *runFigures) float64 { return millis(x.f.ReplaceP50) }},
	{name: "replace_p99_ms", col: "replace_p99_ms", prec: 1, fault: true, value: func(x *runFigures) float64 { return millis(x.f.ReplaceP99) }},
	{name: "jobs_lost", col: "jobs_lost", prec: 1, fault: true, value: func(x *runFigures) float64 { return float64(x.f.JobsLost) }},
	{name: "dead_asks", col: "dead_asks", prec: 1, fault: true, value: func(x *runFigures) float64 { return float64(x.f.DeadAsks) }},
	{name: "waited", col: "waited", prec: 1, fault: true, value: func(x *runFigures) float64 { return float64(x.f.Waited) }},
	{name: "cap_wait_p50_ms", col: "cap_wait_p50_ms", prec: 1, fault: true, value: func(x *runFigures) float64 { return millis(x.f.CapacityWaitP50) }},
	{name: "cap_wait_p99_ms", col: "cap_wait_p99_ms", prec: 1, fault: true, value: func(x *runFigures) float64 { return millis(x.f.CapacityWaitP99) }},
	{name: "public_capacity_share", col: "capacity share", prec: 3, public: true, value: func(x *runFigures) float64 { return x.p.CapacityShare }},
	{name: "public_work_share", col: "work share", prec: 3, public: true, value: func(x *runFigures) float64 { return x.p.WorkShare }},
	{name: "public_work_over_capacity", col: "work / capacity", prec: 2, public: true, value: func(x *runFigures) float64 { return x.p.WorkShare / x.p.CapacityShare }},
	{name: "public_utilisation", col: "utilisation", prec: 3, public: true, value: func(x *runFigures) float64 { return x.p.Utilisation }},
	{name: "public_util_mean", col: "utilisation while jobs arrive", prec: 3, public: true, value: func(x *runFigures) float64 { return x.p.UtilArrivals }},
	{name: "subsidy", col: "subsidy", prec: 2, public: true, value: func(x *runFigures) float64 { return x.p.Subsidy }},
	{name: "subsidy_per_job_hour", col: "subsidy / job-hour", prec: 4, public: true, value: func(x *runFigures) float64 { return x.p.SubsidyPerJobHour }},
	{name: "subsidy_per_public_cpu_hour", col: "subsidy / public CPU-hour", prec: 4, public: true, value: func(x *runFigures) float64 { return x.p.SubsidyPerPublicCPUHour }},
	{name: "public_wholesale", col: "wholesale income", prec: 2, public: true, value: func(x *runFigures) float64 { return x.p.Wholesale }},
	{name: "price_cpu_h_mean", col: "customers' mean price / CPU-h", prec: 4, public: true, value: func(x *runFigures) float64 { return x.p.MeanPrice }},
}

// retailerMetrics are the figures of each kind of retailer, aggregated
// across seeds as the metrics are, in a table and rows of their own
// (named retailer.<kind>.<metric> in summary.csv).
var retailerMetrics = []struct {
	name, col string
	prec      int
	value     func(*RetailerFigures) float64
}{
	{"work_share", "work share", 4, func(f *RetailerFigures) float64 { return f.WorkShare }},
	{"utilisation", "slice utilisation", 3, func(f *RetailerFigures) float64 { return f.Utilisation }},
	{"revenue", "revenue", 2, func(f *RetailerFigures) float64 { return f.Revenue }},
	{"tariff", "tariff paid", 2, func(f *RetailerFigures) float64 { return f.Tariff }},
	{"margin", "margin", 2, func(f *RetailerFigures) float64 { return f.Margin }},
}

// RetailerStats is a kind of retailer's figures over a variant's runs,
// per retailer of the kind: Runs[k][i] is retailerMetrics[i] of run k,
// Stats[i] their mean with its interval.
type RetailerStats struct {
	Name  string
	Runs  [][]float64
	Stats []Interval
}

// MetricNames are the names of the metrics aggregated across seeds, in the
// order of summary.csv.
func MetricNames() []string {
	out := make([]string, len(metrics))
	for i, m := range metrics {
		out[i] = m.name
	}
	return out
}

func metricIndex(name string) int {
	for i, m := range metrics {
		if m.name == name {
			return i
		}
	}
	return -1
}

// RunMetrics computes every metric of one run, in the order of
// MetricNames; NaN means no data (no job placed, no lease lost).
func RunMetrics(r *Result) []float64 {
	x := runFigures{r: r, st: summarise(r), f: FaultsOf(r), p: PublicOf(r)}
	out := make([]float64, len(metrics))
	for i, m := range metrics {
		out[i] = m.value(&x)
	}
	return out
}

// VariantStats is a variant's metrics over its runs: one value a run,
// and their mean with its interval.
type VariantStats struct {
	Variant string
	Seeds   []uint64
	Runs    [][]float64 // Runs[k] is RunMetrics of the run of Seeds[k]
	Stats   []Interval  // Stats[i] aggregates metric i over Runs
	faulty  bool        // a run had crashes, dead asks or jobs waiting
	public  bool        // a run had subsidised classes
	// Retailers are the kinds of retailer of the runs' sites, in order of
	// first appearance.
	Retailers []RetailerStats
}

// Aggregate groups the results by variant, in order of first appearance,
// and aggregates each variant's metrics across its runs.
func Aggregate(rs []*Result) []VariantStats {
	gs := groupByVariant(rs)
	out := make([]VariantStats, len(gs))
	for i, g := range gs {
		out[i].Variant = g.name
		for _, r := range g.rs {
			out[i].add(r)
		}
	}
	for i := range out {
		out[i].aggregate()
	}
	return out
}

// add takes one run's metrics in.
func (v *VariantStats) add(r *Result) {
	v.Seeds = append(v.Seeds, r.Seed)
	run := RunMetrics(r)
	v.Runs = append(v.Runs, run)
	for _, name := range []string{"crashes", "dead_asks", "waited"} {
		v.faulty = v.faulty || run[metricIndex(name)] > 0
	}
	v.public = v.public || finite(run[metricIndex("public_capacity_share")])
	for _, f := range RetailersOf(r) {
		i := slices.IndexFunc(v.Retailers, func(rs RetailerStats) bool { return rs.Name == f.Name })
		if i < 0 {
			i = len(v.Retailers)
			v.Retailers = append(v.Retailers, RetailerStats{Name: f.Name})
		}
		row := make([]float64, len(retailerMetrics))
		for m, rm := range retailerMetrics {
			row[m] = rm.value(&f)
		}
		v.Retailers[i].Runs = append(v.Retailers[i].Runs, row)
	}
}

func (v *VariantStats) aggregate() {
	v.Stats = columnsCI(v.Runs, len(metrics))
	for i := range v.Retailers {
		v.Retailers[i].Stats = columnsCI(v.Retailers[i].Runs, len(retailerMetrics))
	}
}

// columnsCI is the mean and interval of each of the n columns of runs.
func columnsCI(runs [][]float64, n int) []Interval {
	out := make([]Interval, n)
	col := make([]float64, len(runs))
	for m := range n {
		for k, run := range runs {
			col[k] = run[m]
		}
		out[m] = MeanCI(col)
	}
	return out
}

// Stat returns the interval of the named metric, and false if there is no
// such metric.
func (v *VariantStats) Stat(name string) (Interval, bool) {
	i := metricIndex(name)
	if i < 0 || i >= len(v.Stats) {
		return Interval{}, false
	}
	return v.Stats[i], true
}

// SummaryStats writes the table of the variants' metrics over their runs:
// one row per metric, one column per variant, each cell the mean and the
// half-width of its 95% interval ("56.4 ± 0.7"). A cell over fewer runs
// than its variant made (some had no data) is marked "*"; one over a single
// run has no interval. When a run had crashes, asks to dead providers or
// jobs waiting for capacity, a table of the faults follows in the same form.
func SummaryStats(w io.Writer, vs []VariantStats) {
	single, partial := false, false
	table := func(first string, fault, public bool) [][]string {
		header := []string{first}
		runs := []string{"runs"}
		for _, v := range vs {
			header = append(header, v.Variant)
			runs = append(runs, strconv.Itoa(len(v.Runs)))
		}
		rows := [][]string{header}
		if !fault && !public {
			rows = append(rows, runs)
		}
		for i, m := range metrics {
			if m.fault != fault || m.public != public || m.name == "events" {
				continue
			}
			row := []string{m.col}
			for _, v := range vs {
				iv := v.Stats[i]
				cell := fmtInterval(iv, m.prec)
				if iv.N > 0 && iv.N < len(v.Runs) {
					cell += "*"
					partial = true
				}
				single = single || iv.N == 1
				row = append(row, cell)
			}
			rows = append(rows, row)
		}
		return rows
	}
	writeTable(w, table("metric", false, false))
	if slices.ContainsFunc(vs, func(v VariantStats) bool { return v.faulty }) {
		io.WriteString(w, "\n")
		writeTable(w, table("faults", true, false))
	}
	if slices.ContainsFunc(vs, func(v VariantStats) bool { return v.public }) {
		io.WriteString(w, "\n")
		writeTable(w, table("public sites", false, true))
		io.WriteString(w, "\npublic sites: the subsidised classes; shares of CPU, work in busy CPU-seconds, on their hardware (their retailers' slices included); subsidy in the currency of their prices, per hour of job run and per CPU-hour they served; customers' mean price: their total paid over their CPU-hours")
	}
	if slices.ContainsFunc(vs, func(v VariantStats) bool { return len(v.Retailers) > 0 }) {
		io.WriteString(w, "\n")
		writeTable(w, retailerTable(vs))
		io.WriteString(w, "\nretailers: per retailer of each kind; work share of the federation's busy CPU-seconds; margin: revenue less the tariff paid for its slice, over the whole slice")
	}
	io.WriteString(w, "\nwaits: submission to first lease, every job; one never placed (censored) counts as waiting until its placement deadline")
	io.WriteString(w, "\nmean ± half-width of its 95% confidence interval (Student's t) over the runs")
	if single {
		io.WriteString(w, "; one value alone has no interval")
	}
	if partial {
		io.WriteString(w, "; * over fewer runs: the others had no data for it")
	}
	io.WriteString(w, "\n")
}

// retailerTable is the table of the retailers' figures: a row per kind
// and metric, a column per variant, empty where a variant has no such
// retailer.
func retailerTable(vs []VariantStats) [][]string {
	header := []string{"retailers"}
	var kinds []string
	for _, v := range vs {
		header = append(header, v.Variant)
		for _, rs := range v.Retailers {
			if !slices.Contains(kinds, rs.Name) {
				kinds = append(kinds, rs.Name)
			}
		}
	}
	rows := [][]string{header}
	for _, k := range kinds {
		for m, rm := range retailerMetrics {
			row := []string{k + " " + rm.col}
			for _, v := range vs {
				cell := ""
				if i := slices.IndexFunc(v.Retailers, func(rs RetailerStats) bool { return rs.Name == k }); i >= 0 {
					cell = fmtInterval(v.Retailers[i].Stats[m], rm.prec)
				}
				row = append(row, cell)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// fmtInterval writes "mean ± half-width", the mean alone when there is no
// interval, "-" when there is no data.
func fmtInterval(iv Interval, prec int) string {
	if iv.N == 0 {
		return "-"
	}
	s := strconv.FormatFloat(iv.Mean, 'f', prec, 64)
	if h := iv.HalfWidth(); finite(h) {
		s += " ± " + strconv.FormatFloat(h, 'f', prec, 64)
	}
	return s
}

// fmtStatCSV writes x for a CSV: six decimals, or empty for NaN.
func fmtStatCSV(x float64) string {
	if !finite(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'f', 6, 64)
}

// WriteStats writes summary.csv and runs.csv into dir:
//
//   - summary.csv: variant, metric, n, mean, sd, ci_low, ci_high; one row
//     per variant and metric, n the runs with data for it, the interval
//     Student's t at 95%; sd and the interval are empty when n < 2.
//   - runs.csv: variant, seed, then one column per metric; one row per run.
func WriteStats(dir string, vs []VariantStats) error {
	err := writeCSV(filepath.Join(dir, summaryCSV), func(w *csv.Writer) error {
		if err := w.Write([]string{"variant", "metric", "n", "mean", "sd", "ci_low", "ci_high"}); err != nil {
			return err
		}
		row := func(variant, name string, iv Interval) error {
			return w.Write([]string{variant, name, strconv.Itoa(iv.N),
				fmtStatCSV(iv.Mean), fmtStatCSV(iv.SD), fmtStatCSV(iv.Low), fmtStatCSV(iv.High)})
		}
		for _, v := range vs {
			for i, m := range metrics {
				if err := row(v.Variant, m.name, v.Stats[i]); err != nil {
					return err
				}
			}
			for _, rs := range v.Retailers {
				for i, rm := range retailerMetrics {
					if err := row(v.Variant, "retailer."+rs.Name+"."+rm.name, rs.Stats[i]); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", summaryCSV, err)
	}
	err = writeCSV(filepath.Join(dir, runsCSV), func(w *csv.Writer) error {
		if err := w.Write(append([]string{"variant", "seed"}, MetricNames()...)); err != nil {
			return err
		}
		for _, v := range vs {
			if err := v.writeRuns(w, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", runsCSV, err)
	}
	return nil
}

// metricList parses a comma-separated list of metric names, for the plots
// of a sweep; empty means the summary table's.
func metricList(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		var out []int
		for i, m := range metrics {
			if !m.fault && !m.public && m.name != "events" && m.name != "jobs" {
				out = append(out, i)
			}
		}
		return out, nil
	}
	var out []int
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		i := metricIndex(name)
		if i < 0 {
			return nil, fmt.Errorf("unknown metric %q: use one of %s", name, strings.Join(MetricNames(), ", "))
		}
		out = append(out, i)
	}
	return out, nil
}

// writeRuns writes a row per run of v: prefix, the variant, the seed, then
// every metric.
func (v *VariantStats) writeRuns(w *csv.Writer, prefix []string) error {
	for k, run := range v.Runs {
		row := append(slices.Clone(prefix), v.Variant, strconv.FormatUint(v.Seeds[k], 10))
		for _, x := range run {
			row = append(row, fmtStatCSV(x))
		}
		if err := w.Write(row); err != nil {
			return err
		}
	}
	return nil
}
