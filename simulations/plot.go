package simulations

import (
	"fmt"
	"image/color"
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
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The plots WritePlots writes.
const (
	latencyPNG     = "latency_cdf.png"
	utilisationPNG = "utilisation.png"
	pricePNG       = "price_paid.png"
	revenuePNG     = "revenue_by_class.png"
	waitingPNG     = "waiting.png"
)

const (
	plotWidth  = 16 * vg.Centimeter
	plotHeight = 10 * vg.Centimeter
	plotDPI    = 150 // 945 x 591 pixels: sharp in a report, small on disk
	// cdfPoints bounds the points of a drawn CDF: beyond a few thousand the
	// eye sees no difference, and a million points would take seconds.
	cdfPoints = 2000
	// seriesPoints bounds the points of a drawn time series likewise.
	seriesPoints = 4000
)

// PlotFormats are the formats WritePlotsAs can write, by file extension.
var PlotFormats = []string{"png", "svg", "pdf"}

// ParseFormats reads a comma-separated list of plot formats ("png,svg"),
// each one of PlotFormats, duplicates dropped; empty means png.
func ParseFormats(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		if !slices.Contains(PlotFormats, f) {
			return nil, fmt.Errorf("unknown plot format %q: use %s, or several separated by commas", f, strings.Join(PlotFormats, ", "))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = []string{"png"}
	}
	return out, nil
}

// WritePlots writes the plots of WritePlotsAs as PNG.
func WritePlots(dir string, rs []*Result) error {
	return WritePlotsAs(dir, rs, nil)
}

// WritePlotsAs writes plots comparing the results into dir, creating it if
// needed, once in each of formats (file extensions of PlotFormats; none
// means png). Each variant keeps its colour and dash across plots, in the
// order of first appearance in rs. Results of the same variant (several
// runs, one per seed) are combined:
//
//   - time series are the mean over the runs at each sample time, with a
//     band of its 95% confidence interval (Student's t) where two runs or
//     more have the sample;
//   - distributions (CDFs) pool the jobs of the runs, and say so in their
//     title; horizontal bars give the 95% interval of the runs' own
//     percentiles (p50, p90, p99 of the wait, the median price);
//   - totals (income by class) are the mean per run, with error bars.
//
// The plots:
//
//   - latency_cdf: CDF of the placement wait of every job (one never placed
//     counted at its deadline), log x in ms
//     (a wait of zero cannot sit on a log axis: it counts in the CDF, so the
//     curve starts above 0, but draws no point).
//   - utilisation: Sample.Utilisation in percent over time.
//   - price_paid: CDF of the price paid per CPU-hour of succeeded jobs,
//     Paid / (CPUMillis/1000 * Run in hours). A CDF rather than histograms:
//     overlaid histograms of several variants hide each other, while CDFs
//     show medians and tails side by side.
//   - revenue_by_class: a group of bars per provider class, one bar per
//     variant, revenue (solid) with subsidy stacked on it (light).
//   - waiting: Sample.Placing over time.
//
// Time axes are in seconds, minutes or hours, whichever gives the axis a
// span of a few units to a few hundred, with ticks on round values. They
// end once 99% of the jobs of every run have ended (never before the last
// arrival), so that the long tail of the drain does not flatten the rest;
// the drain shown, after the last arrival, is shaded, and the axis label
// says where the axis was cut.
//
// A variant with no data for a plot is left out of it and named "(no data)"
// in its legend; a plot with no data at all is still written, with its
// title, axis labels and a "no data" note, so that the set of files is
// always the same.
func WritePlotsAs(dir string, rs []*Result, formats []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write plots: %w", err)
	}
	gs := groupByVariant(rs)
	for _, pl := range []struct {
		name string
		make func([]variantGroup) (*plot.Plot, error)
	}{
		{latencyPNG, latencyPlot},
		{utilisationPNG, utilisationPlot},
		{pricePNG, pricePlot},
		{revenuePNG, revenuePlot},
		{waitingPNG, waitingPlot},
	} {
		p, err := pl.make(gs)
		if err == nil {
			err = savePlot(p, filepath.Join(dir, strings.TrimSuffix(pl.name, ".png")), formats)
		}
		if err != nil {
			return fmt.Errorf("write plots %s: %w", pl.name, err)
		}
	}
	return nil
}

// variantGroup is the runs of one variant.
type variantGroup struct {
	name  string
	index int // colour and dash
	rs    []*Result
}

func groupByVariant(rs []*Result) []variantGroup {
	var gs []variantGroup
	at := map[string]int{}
	for _, r := range rs {
		if r == nil {
			continue
		}
		name := variantName(r)
		i, ok := at[name]
		if !ok {
			i = len(gs)
			at[name] = i
			gs = append(gs, variantGroup{name: name, index: i})
		}
		gs[i].rs = append(gs[i].rs, r)
	}
	return gs
}

func latencyPlot(gs []variantGroup) (*plot.Plot, error) {
	p := newPlot("Placement latency: submission to first lease",
		"wait (ms, log scale; never placed: at the deadline)", "fraction of jobs")
	lo, hi := math.Inf(1), math.Inf(-1)
	var drawn bool
	for _, g := range gs {
		var waits []float64
		for _, r := range g.rs {
			waits = append(waits, waitsMillis(r)...)
		}
		xys := cdf(waits, true)
		if len(xys) == 0 {
			if len(waits) > 0 && len(gs) > 1 {
				p.Legend.Add(g.name + " (every wait 0 ms)")
				continue
			}
			addMissing(p, gs, g)
			continue
		}
		lo, hi = min(lo, xys[0].X), max(hi, xys[len(xys)-1].X)
		if err := addLine(p, gs, g, xys); err != nil {
			return nil, err
		}
		if bars := percentileBars(g, func(st *summaryStats) []float64 {
			return []float64{st.waitP50, st.waitP90, st.waitP99}
		}, []float64{0.5, 0.9, 0.99}); bars != nil {
			p.Add(bars)
			for _, b := range bars.bars {
				if b.lo > 0 {
					lo = min(lo, b.lo)
				}
				hi = max(hi, b.hi)
			}
		}
		drawn = true
	}
	if !drawn {
		return noData(p), nil
	}
	pooledTitle(p, gs, "p50, p90 and p99")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks{}
	p.X.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.X.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.X.Max <= p.X.Min {
		p.X.Max = p.X.Min * 10
	}
	p.Y.Min, p.Y.Max = 0, 1
	bottomRight(p)
	return p, nil
}

func pricePlot(gs []variantGroup) (*plot.Plot, error) {
	cur := currencies{}
	for _, g := range gs {
		for _, r := range g.rs {
			for i := range r.Jobs {
				if r.Jobs[i].State == "succeeded" {
					cur.add(r.Jobs[i].Currency)
				}
			}
		}
	}
	p := newPlot("Price paid per CPU-hour, succeeded jobs",
		fmt.Sprintf("price (%s per CPU-hour)", cur.label()), "fraction of succeeded jobs")
	var drawn bool
	for _, g := range gs {
		var prices []float64
		for _, r := range g.rs {
			prices = append(prices, pricesPerCPUHour(r)...)
		}
		xys := cdf(prices, false)
		if len(xys) == 0 {
			addMissing(p, gs, g)
			continue
		}
		if err := addLine(p, gs, g, xys); err != nil {
			return nil, err
		}
		if bars := percentileBars(g, func(st *summaryStats) []float64 {
			return []float64{st.priceP50}
		}, []float64{0.5}); bars != nil {
			p.Add(bars)
		}
		drawn = true
	}
	if !drawn {
		return noData(p), nil
	}
	pooledTitle(p, gs, "median")
	p.Y.Min, p.Y.Max = 0, 1
	bottomRight(p)
	return p, nil
}

// pooledTitle adds to the title of a CDF that pools the jobs of several
// runs a line saying so, and what its bars are.
func pooledTitle(p *plot.Plot, gs []variantGroup, what string) {
	runs := 0
	for _, g := range gs {
		runs = max(runs, len(g.rs))
	}
	if runs > 1 {
		p.Title.Text += fmt.Sprintf("\njobs of %d runs pooled; bars: 95%% confidence interval of the runs' %s", runs, what)
	}
}

// percentileBars returns horizontal bars at heights ys of a CDF, each the
// 95% interval over g's runs of the percentile that figures returns at the
// same index, through a dot at their mean; nil with fewer than two runs.
func percentileBars(g variantGroup, figures func(*summaryStats) []float64, ys []float64) *errorBars {
	if len(g.rs) < 2 {
		return nil
	}
	per := make([][]float64, len(ys))
	for _, r := range g.rs {
		st := summarise(r)
		for i, x := range figures(&st) {
			per[i] = append(per[i], x)
		}
	}
	b := &errorBars{horizontal: true, color: plotutil.Color(g.index)}
	for i, y := range ys {
		iv := MeanCI(per[i])
		if iv.N < 2 {
			continue
		}
		b.bars = append(b.bars, errorBar{x: iv.Mean, y: y, lo: iv.Low, hi: iv.High})
	}
	if len(b.bars) == 0 {
		return nil
	}
	return b
}

// errorBar is one bar through (x, y), from lo to hi along x (horizontal)
// or y (vertical).
type errorBar struct {
	x, y, lo, hi float64
	dx           vg.Length // moves a vertical bar along x, besides errorBars.offset
}

// errorBars draws error bars with caps and a dot at the mean; vertical ones
// are moved offset along x, to sit on a bar of a group.
type errorBars struct {
	bars       []errorBar
	horizontal bool
	offset     vg.Length
	color      color.Color
}

func (b *errorBars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	sty := draw.LineStyle{Color: b.color, Width: vg.Points(1.2)}
	dot := draw.GlyphStyle{Color: b.color, Radius: vg.Points(2.2), Shape: draw.CircleGlyph{}}
	const capLen = 3 // points either side
	for _, e := range b.bars {
		if b.horizontal {
			// A log axis has no place for what is not positive.
			lo, mid, hi := e.lo, e.x, e.hi
			if _, log := plt.X.Scale.(plot.LogScale); log {
				lo, mid, hi = max(lo, plt.X.Min), max(mid, plt.X.Min), max(hi, plt.X.Min)
			}
			y := trY(e.y)
			x0, x1 := trX(lo), trX(hi)
			c.StrokeLines(sty, c.ClipLinesX([]vg.Point{{X: x0, Y: y}, {X: x1, Y: y}})...)
			for _, x := range []vg.Length{x0, x1} {
				if c.ContainsX(x) {
					c.StrokeLine2(sty, x, y-vg.Points(capLen), x, y+vg.Points(capLen))
				}
			}
			if pt := (vg.Point{X: trX(mid), Y: y}); c.Contains(pt) {
				c.DrawGlyph(dot, pt)
			}
			continue
		}
		x := trX(e.x) + b.offset + e.dx
		y0, y1 := trY(e.lo), trY(e.hi)
		c.StrokeLines(sty, c.ClipLinesY([]vg.Point{{X: x, Y: y0}, {X: x, Y: y1}})...)
		for _, y := range []vg.Length{y0, y1} {
			if c.ContainsY(y) {
				c.StrokeLine2(sty, x-vg.Points(capLen), y, x+vg.Points(capLen), y)
			}
		}
	}
}

func utilisationPlot(gs []variantGroup) (*plot.Plot, error) {
	p := newPlot("Utilisation: committed CPU over CPU of providers up",
		"time", "utilisation (%)")
	return seriesPlot(p, gs, func(s *Sample) float64 { return 100 * s.Utilisation }, 100)
}

func waitingPlot(gs []variantGroup) (*plot.Plot, error) {
	p := newPlot("Jobs waiting for a lease", "time", "jobs placing")
	return seriesPlot(p, gs, func(s *Sample) float64 { return float64(s.Placing) }, 0)
}

// seriesPlot draws value of the samples of each group over time: the mean
// over the group's runs at each sample time, and the band of its 95%
// interval where two runs or more have the sample. The time axis is
// timeAxisOf's; the y axis starts at 0 and reaches at least yMax, with
// room on top for the legend.
func seriesPlot(p *plot.Plot, gs []variantGroup, value func(*Sample) float64, yMax float64) (*plot.Plot, error) {
	ax := timeAxisOf(gs)
	pts := make([][]seriesPoint, len(gs))
	var drawn bool
	for i, g := range gs {
		pts[i] = seriesStats(g.rs, value, ax.cut)
		drawn = drawn || len(pts[i]) > 0
	}
	if !drawn {
		for _, g := range gs {
			addMissing(p, gs, g)
		}
		return noData(p), nil
	}
	legend := 0
	if len(gs) > 1 {
		legend = len(gs)
	}
	if ax.lastArrival > 0 && ax.lastArrival < ax.cut {
		// The drain, shaded under the lines (so added first), translucent
		// over the grid.
		span := &vspan{from: ax.x(ax.lastArrival), to: ax.x(ax.cut), color: color.NRGBA{A: 16}}
		p.Add(span)
		p.Legend.Add("after the last arrival", span)
		legend++
	}
	top := yMax
	runs := 0
	for i, g := range gs {
		if len(pts[i]) == 0 {
			addMissing(p, gs, g)
			continue
		}
		mean := make(plotter.XYs, len(pts[i]))
		for k, pt := range pts[i] {
			mean[k] = plotter.XY{X: ax.x(pt.at), Y: pt.iv.Mean}
			top = max(top, pt.iv.Mean)
		}
		if len(g.rs) > 1 {
			runs = max(runs, len(g.rs))
			lo := make(plotter.XYs, len(pts[i]))
			hi := make(plotter.XYs, len(pts[i]))
			for k, pt := range pts[i] {
				l, h := pt.iv.Mean, pt.iv.Mean
				if pt.iv.N > 1 {
					l, h = max(0, pt.iv.Low), pt.iv.High
				}
				lo[k] = plotter.XY{X: ax.x(pt.at), Y: l}
				hi[k] = plotter.XY{X: ax.x(pt.at), Y: h}
				top = max(top, h)
			}
			if err := addBand(p, g, thin(lo, seriesPoints), thin(hi, seriesPoints)); err != nil {
				return nil, err
			}
		}
		if err := addLine(p, gs, g, thin(mean, seriesPoints)); err != nil {
			return nil, err
		}
	}
	if runs > 1 {
		p.Title.Text += fmt.Sprintf("\nmean of %d runs, band: 95%% confidence interval", runs)
	}
	p.X.Min, p.X.Max = 0, ax.x(ax.cut)
	p.X.Tick.Marker = timeTicks{unit: ax.unit}
	p.X.Label.Text = ax.label()
	p.Y.Min = 0
	if top <= 0 {
		top = 1
	}
	p.Y.Max = withLegendRoom(legend, top)
	return p, nil
}

// seriesPoint is the runs' values at one sample time.
type seriesPoint struct {
	at time.Duration
	iv Interval
}

// seriesStats returns, in time order up to until, the mean and interval of
// value at each sample time over rs; non-finite values are left out.
func seriesStats(rs []*Result, value func(*Sample) float64, until time.Duration) []seriesPoint {
	byAt := map[time.Duration][]float64{}
	for _, r := range rs {
		for i := range r.Series {
			s := &r.Series[i]
			if s.At > until {
				continue
			}
			if v := value(s); finite(v) {
				byAt[s.At] = append(byAt[s.At], v)
			}
		}
	}
	ats := make([]time.Duration, 0, len(byAt))
	for at := range byAt {
		ats = append(ats, at)
	}
	slices.Sort(ats)
	out := make([]seriesPoint, len(ats))
	for i, at := range ats {
		out[i] = seriesPoint{at: at, iv: MeanCI(byAt[at])}
	}
	return out
}

// timeAxis is the time axis of the series plots: its unit, and where it
// ends.
type timeAxis struct {
	unit        time.Duration // second, minute or hour
	cut         time.Duration // where the axis ends
	end         time.Duration // the last sample of any run
	lastArrival time.Duration // of any run
	cutAt       float64       // share of jobs ended by cut, when cut < end
}

// endedShare is the share of jobs that must have ended, in every run, where
// the time axis ends.
const endedShare = 0.99

// timeAxisOf picks the time axis of the groups' series: it ends when
// endedShare of the jobs of every run have ended (a job never ended counts
// at its run's end), but not before the last arrival and a twentieth more,
// nor after the last sample. Its unit is the second up to 3 minutes, the
// minute up to 3 hours, the hour beyond; it ends on a tick.
func timeAxisOf(gs []variantGroup) timeAxis {
	var ax timeAxis
	var cut time.Duration
	for _, g := range gs {
		for _, r := range g.rs {
			if n := len(r.Series); n > 0 {
				ax.end = max(ax.end, r.Series[n-1].At)
			}
			if len(r.Jobs) == 0 {
				continue
			}
			ends := make([]time.Duration, len(r.Jobs))
			for i := range r.Jobs {
				j := &r.Jobs[i]
				ax.lastArrival = max(ax.lastArrival, j.Submitted)
				ends[i] = j.Ended
				if j.Ended < 0 {
					ends[i] = max(r.SimTime, j.Submitted)
				}
			}
			cut = max(cut, durationPercentile(ends, 100*endedShare))
		}
	}
	ax.cut = ax.end
	if cut > 0 {
		ax.cut = min(ax.end, max(cut, ax.lastArrival+ax.lastArrival/20))
	}
	if ax.cut < ax.end {
		ax.cutAt = endedShare
	}
	switch {
	case ax.cut <= 3*time.Minute:
		ax.unit = time.Second
	case ax.cut <= 3*time.Hour:
		ax.unit = time.Minute
	default:
		ax.unit = time.Hour
	}
	if ax.cut <= 0 {
		ax.cut = ax.unit
	}
	// End on a tick; the series stop at their last sample anyway.
	ax.cut = time.Duration(timeTicks{unit: ax.unit}.roundUp(ax.x(ax.cut)) * float64(ax.unit))
	return ax
}

// x is d in the axis's unit.
func (ax timeAxis) x(d time.Duration) float64 { return float64(d) / float64(ax.unit) }

func (ax timeAxis) label() string {
	name := map[time.Duration]string{time.Second: "s", time.Minute: "min", time.Hour: "h"}[ax.unit]
	l := "time (" + name + ")"
	if ax.cutAt > 0 {
		l += fmt.Sprintf("; cut once %.0f%% of jobs had ended, the run went on to %s", 100*ax.cutAt, fmtDuration(ax.end))
	}
	return l
}

// fmtDuration writes d rounded to what a reader needs: "2h41m", "12m30s",
// "45s", "1.5s".
func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Minute:
		d = d.Round(time.Second)
	case d >= 10*time.Second:
		d = d.Round(time.Second)
	default:
		d = d.Round(100 * time.Millisecond)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// timeTicks marks a time axis in unit (second, minute or hour) at round
// steps: every 1, 2, 5, 10, 15, 20 or 30 seconds or minutes, or 1, 2, 3, 6,
// 12 or 24 hours and their multiples of a day, the smallest step that
// leaves at most eight labelled ticks, with unlabelled ones between.
type timeTicks struct{ unit time.Duration }

func (t timeTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return nil
	}
	step, sub := t.steps(lo, hi)
	if step == 0 {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	var ts []plot.Tick
	for k := math.Ceil(lo/sub - 1e-9); ; k++ {
		v := k * sub
		if v > hi+1e-9 {
			break
		}
		if v == 0 {
			v = 0 // not -0
		}
		if major := math.Abs(v/step-math.Round(v/step)) < 1e-9; major {
			ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		} else {
			ts = append(ts, plot.Tick{Value: v})
		}
	}
	return ts
}

// steps returns the labelled and the unlabelled steps of an axis from lo
// to hi, or 0s when the span is too short or too long for round steps.
func (t timeTicks) steps(lo, hi float64) (step, sub float64) {
	steps := []float64{1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440}
	minor := map[float64]float64{1: 5, 2: 4, 5: 5, 10: 5, 15: 3, 20: 4, 30: 3, 60: 4, 120: 4, 180: 3, 240: 4, 360: 6, 480: 4, 720: 4, 1440: 4}
	if t.unit == time.Hour {
		steps = []float64{1, 2, 3, 6, 12, 24, 48, 72, 96, 168, 336, 720}
		minor = map[float64]float64{1: 4, 2: 4, 3: 3, 6: 6, 12: 4, 24: 4, 48: 4, 72: 3, 96: 4, 168: 7, 336: 2, 720: 5}
	}
	if hi-lo < 2 || (hi-lo)/steps[len(steps)-1] > 8 {
		return 0, 0
	}
	step = steps[len(steps)-1]
	for _, s := range steps {
		if (hi-lo)/s <= 8 {
			step = s
			break
		}
	}
	return step, step / minor[step]
}

// roundUp returns hi raised to the next unlabelled tick of an axis from 0,
// so that the axis ends on a tick.
func (t timeTicks) roundUp(hi float64) float64 {
	if _, sub := t.steps(0, hi); sub > 0 {
		return math.Ceil(hi/sub-1e-9) * sub
	}
	return hi
}

// vspan shades the plot's full height between two x values; it draws its
// own legend thumbnail.
type vspan struct {
	from, to float64
	color    color.Color
}

func (s *vspan) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, _ := plt.Transforms(&c)
	x0, x1 := max(trX(s.from), c.Min.X), min(trX(s.to), c.Max.X)
	if x1 <= x0 {
		return
	}
	c.FillPolygon(s.color, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
}

func (s *vspan) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.color, []vg.Point{c.Min, {X: c.Max.X, Y: c.Min.Y}, c.Max, {X: c.Min.X, Y: c.Max.Y}})
}

// addBand shades the area between lo and hi, which share their x values,
// in a light tint of group g's colour.
func addBand(p *plot.Plot, g variantGroup, lo, hi plotter.XYs) error {
	ring := make(plotter.XYs, 0, len(lo)+len(hi))
	ring = append(ring, lo...)
	for i := len(hi) - 1; i >= 0; i-- {
		ring = append(ring, hi[i])
	}
	poly, err := plotter.NewPolygon(ring)
	if err != nil {
		return err
	}
	poly.Color = translucent(plotutil.Color(g.index))
	poly.LineStyle.Width = 0
	p.Add(poly)
	return nil
}

// translucent is c at a quarter of its opacity, for a band under its line.
func translucent(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 64}
}

func revenuePlot(gs []variantGroup) (*plot.Plot, error) {
	// Classes in order of first appearance, so that the scenario's order
	// survives a variant that leaves some out.
	var classes []string
	at := map[string]int{}
	cur := currencies{}
	for _, g := range gs {
		for _, r := range g.rs {
			for _, c := range r.Classes {
				cur.add(c.Currency)
				if _, ok := at[c.Class]; !ok {
					at[c.Class] = len(classes)
					classes = append(classes, c.Class)
				}
			}
		}
	}
	ylabel := fmt.Sprintf("income per run (%s)", cur.label())
	p := newPlot("Income by provider class: revenue (solid), subsidy (light)",
		"provider class", ylabel)
	if len(classes) == 0 {
		return noData(p), nil
	}
	if len(gs) > 0 && slices.ContainsFunc(gs, func(g variantGroup) bool { return len(g.rs) > 1 }) {
		p.Y.Label.Text = fmt.Sprintf("income, mean per run (%s)", cur.label())
	}
	group := 13 * vg.Centimeter * 0.75 / vg.Length(len(classes))
	w := min(group/vg.Length(len(gs)), 2*vg.Centimeter)
	top := 0.0
	banded := false
	for _, g := range gs {
		rev := make(plotter.Values, len(classes))
		sub := make(plotter.Values, len(classes))
		// Per run and class, for the intervals: revenue, and revenue and
		// subsidy together (the top of the stack).
		runRev := make([][]float64, len(classes))
		runTotal := make([][]float64, len(classes))
		for i := range classes {
			runRev[i] = make([]float64, len(g.rs))
			runTotal[i] = make([]float64, len(g.rs))
		}
		for k, r := range g.rs {
			for _, c := range r.Classes {
				i := at[c.Class]
				if finite(c.Revenue) {
					rev[i] += c.Revenue / float64(len(g.rs))
					runRev[i][k] += c.Revenue
					runTotal[i][k] += c.Revenue
				}
				if finite(c.Subsidy) {
					sub[i] += c.Subsidy / float64(len(g.rs))
					runTotal[i][k] += c.Subsidy
				}
			}
		}
		rb, err := plotter.NewBarChart(rev, w)
		if err != nil {
			return nil, err
		}
		sb, err := plotter.NewBarChart(sub, w)
		if err != nil {
			return nil, err
		}
		rb.Offset = (vg.Length(g.index) - vg.Length(len(gs)-1)/2) * w
		rb.Color = plotutil.Color(g.index)
		rb.LineStyle.Width = vg.Points(0.5)
		sb.StackOn(rb)
		sb.Color = lighter(plotutil.Color(g.index))
		sb.LineStyle.Width = vg.Points(0.5)
		p.Add(rb, sb)
		p.Legend.Add(g.name+" revenue", rb)
		p.Legend.Add(g.name+" subsidy", sb)
		for i := range classes {
			top = max(top, rev[i]+sub[i])
		}
		if len(g.rs) > 1 {
			// Revenue's bar left of the bar's middle, the total's right, so
			// that the two stay apart when the subsidy is thin.
			// A class without subsidy has one bar, in the middle.
			bars := &errorBars{offset: rb.Offset, color: color.Black}
			for i := range classes {
				subsidised := sub[i] != 0
				for k, per := range [][]float64{runRev[i], runTotal[i]} {
					if k == 1 && !subsidised {
						break
					}
					dx := vg.Length(0)
					if subsidised {
						dx = vg.Length(2*k-1) * w / 6
					}
					if iv := MeanCI(per); iv.N > 1 && iv.High > 0 {
						bars.bars = append(bars.bars, errorBar{x: float64(i), y: iv.Mean, lo: iv.Low, hi: iv.High, dx: dx})
						top = max(top, iv.High)
					}
				}
			}
			p.Add(bars)
			banded = true
		}
	}
	if banded {
		p.Title.Text += "\nmean per run, 95% intervals of revenue and (right) of the total"
	}
	p.NominalX(classes...)
	p.X.Min, p.X.Max = -0.5, float64(len(classes))-0.5
	p.Y.Min = 0
	if top <= 0 {
		top = 1
	}
	p.Legend.Top = true
	p.Y.Max = withLegendRoom(2*len(gs), top)
	return p, nil
}

// newPlot returns an empty plot with its title and axis labels.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Title.Padding = vg.Points(6)
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	// Inset the legend from the frame, whichever corner it ends up in.
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = -vg.Points(4)
	return p
}

// bottomRight puts the legend in the bottom right corner, which a CDF
// leaves free: its curves are there already near 1.
func bottomRight(p *plot.Plot) {
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = vg.Points(6)
}

// addLine draws xys as the line of group g, with a legend entry when there
// is more than one variant.
func addLine(p *plot.Plot, gs []variantGroup, g variantGroup, xys plotter.XYs) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.Color = plotutil.Color(g.index)
	l.Dashes = plotutil.Dashes(g.index)
	l.Width = vg.Points(1.5)
	p.Add(l)
	if len(gs) > 1 {
		p.Legend.Add(g.name, l)
	}
	return nil
}

// addMissing names in the legend a variant that has no data for the plot,
// so that its absence reads as a result and not as a bug.
func addMissing(p *plot.Plot, gs []variantGroup, g variantGroup) {
	if len(gs) > 1 {
		p.Legend.Add(g.name + " (no data)")
	}
}

// noData turns p, which has nothing plotted, into a plot that says so.
func noData(p *plot.Plot) *plot.Plot {
	l, err := plotter.NewLabels(plotter.XYLabels{
		XYs:    []plotter.XY{{X: 0.5, Y: 0.5}},
		Labels: []string{"no data"},
	})
	if err != nil {
		panic(err) // one finite point and one label: cannot fail
	}
	l.TextStyle[0].XAlign = text.XCenter
	l.TextStyle[0].YAlign = text.YCenter
	l.TextStyle[0].Font.Size = vg.Points(16)
	p.Add(l)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.X.Tick.Marker = plot.ConstantTicks(nil)
	p.Y.Tick.Marker = plot.ConstantTicks(nil)
	return p
}

// withLegendRoom returns a y maximum above top that leaves a legend of n
// entries, in a top corner, clear of the data.
func withLegendRoom(n int, top float64) float64 {
	// An entry is about 0.45 cm of the roughly 8 cm of data area.
	frac := min(0.05+float64(n)*0.45/8, 0.6)
	return top / (1 - frac)
}

// cdf returns the empirical CDF of xs, which it sorts, as at most cdfPoints
// points: rank i of n is at height (i+1)/n. Non-finite values are dropped;
// with positive, non-positive values count in the ranks but get no point,
// for a log axis.
func cdf(xs []float64, positive bool) plotter.XYs {
	xs = slices.DeleteFunc(xs, func(x float64) bool { return !finite(x) })
	n := len(xs)
	if n == 0 {
		return nil
	}
	slices.Sort(xs)
	idx := func(k int) int { return k } // every rank
	m := n
	if n > cdfPoints {
		m = cdfPoints
		idx = func(k int) int {
			if k == 0 {
				return 0 // keep the minimum, where the curve starts
			}
			return (k+1)*n/m - 1 // the last is n-1: the maximum
		}
	}
	out := make(plotter.XYs, 0, m)
	for k := range m {
		i := idx(k)
		if positive && xs[i] <= 0 {
			continue
		}
		out = append(out, plotter.XY{X: xs[i], Y: float64(i+1) / float64(n)})
	}
	return out
}

// thin keeps at most limit points of xys, evenly by index, and the last.
func thin(xys plotter.XYs, limit int) plotter.XYs {
	n := len(xys)
	if n <= limit {
		return xys
	}
	out := make(plotter.XYs, 0, limit+1)
	step := float64(n-1) / float64(limit-1)
	for k := range limit {
		out = append(out, xys[int(math.Round(float64(k)*step))])
	}
	return out
}

// logTicks marks decades with labels and the 2..9 multiples between them
// without, for a log axis whose range is already whole decades. Unlike
// plot.LogTicks it writes 1000000 rather than 1e+06 and does not depend on
// float truncation for the first decade.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return nil
	}
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); ; e++ {
		d := math.Pow(10, e)
		if d > hi*(1+1e-9) {
			break
		}
		if d >= lo*(1-1e-9) {
			ts = append(ts, plot.Tick{Value: d, Label: strconv.FormatFloat(d, 'f', -1, 64)})
		}
		for k := 2; k < 10; k++ {
			if v := float64(k) * d; v > lo && v < hi {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
}

// currencies collects the currencies met, to name the unit of an axis.
type currencies map[string]bool

func (c currencies) add(cur string) {
	if cur != "" {
		c[cur] = true
	}
}

// label is the one currency met, or a generic unit when there were none or
// several (a mixed sum is not meaningful, and the axis should not pretend).
func (c currencies) label() string {
	if len(c) == 1 {
		for cur := range c {
			return cur
		}
	}
	if len(c) > 1 {
		return "mixed currencies"
	}
	return "currency units"
}

// lighter blends c halfway to white, for the subsidy stacked on a revenue.
func lighter(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8((v>>8 + 2*255) / 3) }
	return color.RGBA{R: mix(r), G: mix(g), B: mix(b), A: 255}
}

// savePlot draws p into base plus the extension of each format: PNG at
// plotDPI, SVG (fonts named, not embedded) and PDF (fonts embedded), all at
// plotWidth x plotHeight.
func savePlot(p *plot.Plot, base string, formats []string) error {
	if len(formats) == 0 {
		formats = []string{"png"}
	}
	for _, f := range formats {
		var c vg.CanvasWriterTo
		switch f {
		case "png":
			if err := savePNG(p, base+".png"); err != nil {
				return err
			}
			continue
		case "svg":
			c = vgsvg.New(plotWidth, plotHeight)
		case "pdf":
			c = vgpdf.New(plotWidth, plotHeight)
		default:
			return fmt.Errorf("unknown plot format %q", f)
		}
		p.Draw(draw.New(c))
		err := writeFile(base+"."+f, 64<<10, func(w io.Writer) error {
			_, err := c.WriteTo(w)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// savePNG draws p at plotWidth x plotHeight and plotDPI into path.
func savePNG(p *plot.Plot, path string) error {
	c := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	p.Draw(draw.New(c))
	return writeFile(path, 64<<10, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
		return err
	})
}
