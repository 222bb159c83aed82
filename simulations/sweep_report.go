package simulations

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// The files a sweep writes.
const (
	sweepCSV     = "sweep.csv"
	sweepRunsCSV = "sweep_runs.csv"
)

// SweepResult is what a sweep measured: at each point, each variant's
// metrics over its runs.
type SweepResult struct {
	Params []SweepParam
	Points []SweepPointStats
}

// SweepPointStats is one point of a sweep, aggregated.
type SweepPointStats struct {
	Values   []string // one per parameter
	Variants []VariantStats
	Runs     []ManifestResult // each run's seed and trace hash, for the manifest
}

// Add aggregates the results of one point's runs; the results can then be
// dropped, so that a sweep holds no more than one point's runs at a time.
func (s *SweepResult) Add(p SweepPoint, rs []*Result) {
	ps := SweepPointStats{Values: p.Values, Variants: Aggregate(rs)}
	ps.Runs = NewManifest("", nil, "", 0, 0, rs, nil).Results
	s.Points = append(s.Points, ps)
}

// ParseMetrics reads a comma-separated list of metric names (MetricNames);
// empty means those of the summary table: placed_pct, succeeded_pct, the
// wait percentiles, price_cpu_h_p50 and util_mean.
func ParseMetrics(s string) ([]string, error) {
	idx, err := metricList(s)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(idx))
	for i, k := range idx {
		out[i] = metrics[k].name
	}
	return out, nil
}

// SweepTable writes one row per point and variant: the parameters' values,
// the variant, its runs, and each of the named metrics as mean ±
// half-width of its 95% interval.
func SweepTable(w io.Writer, s *SweepResult, names []string) {
	header := []string{}
	for _, p := range s.Params {
		header = append(header, p.Path)
	}
	header = append(header, "variant", "runs")
	for _, name := range names {
		header = append(header, metrics[metricIndex(name)].col)
	}
	rows := [][]string{header}
	for _, pt := range s.Points {
		for _, v := range pt.Variants {
			row := append(slices.Clone(pt.Values), v.Variant, strconv.Itoa(len(v.Runs)))
			for _, name := range names {
				i := metricIndex(name)
				row = append(row, fmtInterval(v.Stats[i], metrics[i].prec))
			}
			rows = append(rows, row)
		}
	}
	writeTable(w, rows)
	io.WriteString(w, "\nmean ± half-width of its 95% confidence interval (Student's t) over the runs\n")
}

// SweepManifest describes a sweep for reproduction: the scenario file
// verbatim, the parameters, and each point's runs with their trace hashes.
type SweepManifest struct {
	Manifest
	Results []ManifestResult     `json:"results,omitempty"` // none: they are by point
	Params  []SweepManifestParam `json:"params"`
	Points  []SweepManifestPoint `json:"points"`
}

// SweepManifestParam is one parameter of a sweep.
type SweepManifestParam struct {
	Path   string   `json:"path"`
	Values []string `json:"values"`
}

// SweepManifestPoint is one point of a sweep: its values and its runs.
type SweepManifestPoint struct {
	Values  []string         `json:"values"`
	Results []ManifestResult `json:"results"`
}

// WriteSweep writes into dir, creating it if needed:
//
//   - manifest.json: the scenario file, parameters, seed, runs, commit, and
//     each point's runs with their trace hashes;
//   - sweep.csv: one column per parameter (named by its path), then
//     variant, metric, n, mean, sd, ci_low, ci_high: one row per point,
//     variant and metric (every metric, not only those plotted);
//   - sweep_runs.csv: the parameters, variant, seed and every metric of
//     each run;
//   - sweep_<metric> plots in each of o.Formats (none means png), for each
//     of o.Metrics: the metric's mean against the first parameter with
//     error bars of its 95% interval, one line per variant, and with two
//     parameters one per value of the second (per variant, if several).
func WriteSweep(dir string, s *SweepResult, m Manifest, o SweepPlots) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write sweep: %w", err)
	}
	sm := SweepManifest{Manifest: m}
	for _, p := range s.Params {
		sm.Params = append(sm.Params, SweepManifestParam{Path: p.Path, Values: p.Values})
	}
	for _, pt := range s.Points {
		sm.Points = append(sm.Points, SweepManifestPoint{Values: pt.Values, Results: pt.Runs})
	}
	b, err := json.MarshalIndent(sm, "", "  ")
	if err != nil {
		return fmt.Errorf("write sweep manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifestJSON), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write sweep manifest: %w", err)
	}
	var params []string
	for _, p := range s.Params {
		params = append(params, p.Path)
	}
	err = writeCSV(filepath.Join(dir, sweepCSV), func(w *csv.Writer) error {
		if err := w.Write(append(slices.Clone(params), "variant", "metric", "n", "mean", "sd", "ci_low", "ci_high")); err != nil {
			return err
		}
		for _, pt := range s.Points {
			for _, v := range pt.Variants {
				for i, m := range metrics {
					iv := v.Stats[i]
					row := append(slices.Clone(pt.Values), v.Variant, m.name, strconv.Itoa(iv.N),
						fmtStatCSV(iv.Mean), fmtStatCSV(iv.SD), fmtStatCSV(iv.Low), fmtStatCSV(iv.High))
					if err := w.Write(row); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", sweepCSV, err)
	}
	err = writeCSV(filepath.Join(dir, sweepRunsCSV), func(w *csv.Writer) error {
		if err := w.Write(append(append(slices.Clone(params), "variant", "seed"), MetricNames()...)); err != nil {
			return err
		}
		for _, pt := range s.Points {
			for _, v := range pt.Variants {
				if err := v.writeRuns(w, pt.Values); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", sweepRunsCSV, err)
	}
	for _, name := range o.Metrics {
		p, err := sweepPlot(s, name, o.LogY)
		if err == nil {
			err = savePlot(p, filepath.Join(dir, "sweep_"+name), o.Formats)
		}
		if err != nil {
			return fmt.Errorf("write sweep plot %s: %w", name, err)
		}
	}
	return nil
}

// SweepPlots says which plots of a sweep to draw, and how.
type SweepPlots struct {
	Metrics []string // metric names (ParseMetrics)
	Formats []string // file extensions (ParseFormats); none means png
	// LogY draws the metrics on a log scale, for waits that grow by
	// decades; what is not above 0 cannot be drawn there and is left out.
	LogY bool
}

// metricLabels are the axis labels of the metrics, with their units.
var metricLabels = map[string]string{
	"jobs":            "jobs",
	"placed_pct":      "jobs placed (%)",
	"succeeded_pct":   "jobs succeeded (%)",
	"wait_p50_ms":     "placement wait, median (ms)",
	"wait_p90_ms":     "placement wait, p90 (ms)",
	"wait_p99_ms":     "placement wait, p99 (ms)",
	"price_cpu_h_p50": "price paid per CPU-hour, median",
	"util_mean":       "mean utilisation while jobs arrive",
	"events":          "events",
	"crashes":         "provider crashes",
	"leases_lost":     "leases lost",
	"by_restart":      "leases lost, found by a restart",
	"detect_p50_ms":   "crash detection, median (ms)",
	"detect_p99_ms":   "crash detection, p99 (ms)",
	"replace_p50_ms":  "re-placement, median (ms)",
	"replace_p99_ms":  "re-placement, p99 (ms)",
	"jobs_lost":       "jobs lost",
	"dead_asks":       "asks to providers down",
	"waited":          "jobs that waited for capacity",
	"cap_wait_p50_ms": "wait for capacity, median (ms)",
	"cap_wait_p99_ms": "wait for capacity, p99 (ms)",
}

// sweepX maps the first parameter's values to x: numbers as they are,
// durations in seconds; otherwise each value is a category at its index.
func sweepX(values []string) (xs []float64, unit string, nominal bool) {
	xs = make([]float64, len(values))
	for i, v := range values {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || !finite(x) {
			nominal = true
			break
		}
		xs[i] = x
	}
	if !nominal {
		return xs, "", false
	}
	nominal = false
	for i, v := range values {
		d, err := time.ParseDuration(v)
		if err != nil {
			nominal = true
			break
		}
		xs[i] = d.Seconds()
	}
	if !nominal {
		return xs, " (s)", false
	}
	for i := range xs {
		xs[i] = float64(i)
	}
	return xs, "", true
}

// sweepPlot draws one metric of a sweep against its first parameter.
func sweepPlot(s *SweepResult, name string, logY bool) (*plot.Plot, error) {
	mi := metricIndex(name)
	p1 := s.Params[0]
	xs, unit, nominal := sweepX(p1.Values)
	xAt := map[string]float64{}
	for i, v := range p1.Values {
		xAt[v] = xs[i]
	}
	label := metricLabels[name]
	if label == "" {
		label = name
	}
	p := newPlot(strings.ToUpper(label[:1])+label[1:]+" against "+p1.Path, p1.Path+unit, label)
	// One series per variant and value of the second parameter, in order
	// of first appearance.
	type series struct {
		name string
		pts  []errorBar
	}
	var ss []*series
	byName := map[string]*series{}
	variants := map[string]bool{}
	runs := 0
	for _, pt := range s.Points {
		for _, v := range pt.Variants {
			variants[v.Variant] = true
		}
	}
	for _, pt := range s.Points {
		for _, v := range pt.Variants {
			var parts []string
			if len(s.Params) > 1 {
				parts = append(parts, s.Params[1].Path+" = "+pt.Values[1])
			}
			if len(variants) > 1 || len(parts) == 0 {
				parts = append(parts, v.Variant)
			}
			key := strings.Join(parts, ", ")
			sr := byName[key]
			if sr == nil {
				sr = &series{name: key}
				byName[key] = sr
				ss = append(ss, sr)
			}
			iv := v.Stats[mi]
			runs = max(runs, len(v.Runs))
			if iv.N == 0 {
				continue
			}
			// Every metric is a count, share, time or price: an interval
			// reaching below 0 is drawn from 0 (sweep.csv has it whole).
			lo, hi := max(0, iv.Low), iv.High
			if iv.N < 2 {
				lo, hi = iv.Mean, iv.Mean
			}
			if logY && !(iv.Mean > 0) {
				continue
			}
			sr.pts = append(sr.pts, errorBar{x: xAt[pt.Values[0]], y: iv.Mean, lo: lo, hi: hi})
		}
	}
	var drawn bool
	for i, sr := range ss {
		if nominal && len(ss) > 1 {
			// Categories: the series side by side within each, not joined.
			dx := (float64(i) - float64(len(ss)-1)/2) * 0.5 / float64(len(ss))
			for k := range sr.pts {
				sr.pts[k].x += dx
			}
		}
		if len(sr.pts) == 0 {
			if len(ss) > 1 {
				p.Legend.Add(sr.name + " (no data)")
			}
			continue
		}
		slices.SortStableFunc(sr.pts, func(a, b errorBar) int {
			switch {
			case a.x < b.x:
				return -1
			case a.x > b.x:
				return 1
			}
			return 0
		})
		xys := make(plotter.XYs, len(sr.pts))
		for k, e := range sr.pts {
			xys[k] = plotter.XY{X: e.x, Y: e.y}
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		l.Width = vg.Points(1.5)
		pts.Color = plotutil.Color(i)
		pts.Shape = plotutil.Shape(i)
		pts.Radius = vg.Points(3)
		bars := &errorBars{bars: sr.pts, color: plotutil.Color(i)}
		if nominal {
			p.Add(pts, bars)
		} else {
			p.Add(l, pts, bars)
		}
		if len(ss) > 1 {
			if nominal {
				p.Legend.Add(sr.name, pts)
			} else {
				p.Legend.Add(sr.name, l, pts)
			}
		}
		drawn = true
	}
	if !drawn {
		return noData(p), nil
	}
	var sub []string
	if len(s.Params) > 1 {
		sub = append(sub, "one series per "+s.Params[1].Path)
	}
	if runs > 1 {
		sub = append(sub, fmt.Sprintf("mean of %d runs a point, bars: 95%% confidence interval", runs))
	}
	if len(sub) > 0 {
		p.Title.Text += "\n" + strings.Join(sub, "; ")
	}
	if nominal {
		p.NominalX(p1.Values...)
		p.X.Min, p.X.Max = -0.5, float64(len(p1.Values))-0.5
	} else {
		if len(xs) <= 12 {
			// A tick at each value swept, written as it was given.
			ticks := make([]plot.Tick, len(xs))
			for i, x := range xs {
				ticks[i] = plot.Tick{Value: x, Label: p1.Values[i]}
			}
			p.X.Tick.Marker = plot.ConstantTicks(ticks)
		}
		lo, hi := slices.Min(xs), slices.Max(xs)
		pad := (hi - lo) * 0.05
		if pad == 0 {
			pad = max(0.5, hi*0.05)
		}
		p.X.Min, p.X.Max = lo-pad, hi+pad
	}
	legend := 0
	if len(ss) > 1 {
		legend = len(ss)
	}
	frac := min(0.05+float64(legend)*0.45/8, 0.6)
	if logY {
		// Whole decades around the means and bars, with room on top for
		// the legend; a bar's end at or below 0 stops at the axis.
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, sr := range ss {
			for _, e := range sr.pts {
				for _, y := range []float64{e.lo, e.y, e.hi} {
					if y > 0 {
						lo, hi = min(lo, y), max(hi, y)
					}
				}
			}
		}
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
		// gonum centres an axis label at the linear middle of its range,
		// near the top of a log axis, and pads the plot to fit it there:
		// the title names the metric and its unit instead.
		p.Y.Label.Text = ""
		p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
		p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)+frac/(1-frac)*math.Log10(hi/p.Y.Min)))
		if p.Y.Max <= p.Y.Min {
			p.Y.Max = p.Y.Min * 10
		}
		for _, sr := range ss {
			for k := range sr.pts {
				sr.pts[k].lo = max(sr.pts[k].lo, p.Y.Min)
			}
		}
		return p, nil
	}
	// Room for the error bars and, on top, the legend.
	lo, hi := p.Y.Min, p.Y.Max
	for _, sr := range ss {
		for _, e := range sr.pts {
			lo, hi = min(lo, e.lo), max(hi, e.hi)
		}
	}
	span := hi - lo
	if span <= 0 {
		span = max(1, math.Abs(hi))
	}
	p.Y.Min = lo - 0.05*span
	p.Y.Max = hi + span*frac/(1-frac)
	return p, nil
}
