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
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
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

// WritePlots writes PNG plots comparing the results into dir, creating it
// if needed. Results of the same variant (several runs) are pooled: their
// jobs together for distributions, the mean per sample time for time
// series, the mean per run for totals. Each variant keeps its colour and
// dash across plots, in the order of first appearance in rs.
//
//   - latency_cdf.png: CDF of the placement wait of placed jobs, log x in ms
//     (a wait of zero cannot sit on a log axis: it counts in the CDF, so the
//     curve starts above 0, but draws no point).
//   - utilisation.png: Sample.Utilisation in percent over time in minutes.
//   - price_paid.png: CDF of the price paid per CPU-hour of succeeded jobs,
//     Paid / (CPUMillis/1000 * Run in hours). A CDF rather than histograms:
//     overlaid histograms of several variants hide each other, while CDFs
//     show medians and tails side by side.
//   - revenue_by_class.png: a group of bars per provider class, one bar per
//     variant, revenue (solid) with subsidy stacked on it (light).
//   - waiting.png: Sample.Placing over time in minutes.
//
// A variant with no data for a plot is left out of it and named "(no data)"
// in its legend; a plot with no data at all is still written, with its
// title, axis labels and a "no data" note, so that the set of files is
// always the same.
func WritePlots(dir string, rs []*Result) error {
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
			err = savePNG(p, filepath.Join(dir, pl.name))
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
		"wait (ms, log scale)", "fraction of placed jobs")
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
		drawn = true
	}
	if !drawn {
		return noData(p), nil
	}
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
		drawn = true
	}
	if !drawn {
		return noData(p), nil
	}
	p.Y.Min, p.Y.Max = 0, 1
	bottomRight(p)
	return p, nil
}

func utilisationPlot(gs []variantGroup) (*plot.Plot, error) {
	p := newPlot("Utilisation: committed CPU over CPU of providers up",
		"time (min)", "utilisation (%)")
	return seriesPlot(p, gs, func(s *Sample) float64 { return 100 * s.Utilisation }, 100)
}

func waitingPlot(gs []variantGroup) (*plot.Plot, error) {
	p := newPlot("Jobs waiting for a lease", "time (min)", "jobs placing")
	return seriesPlot(p, gs, func(s *Sample) float64 { return float64(s.Placing) }, 0)
}

// seriesPlot draws value of the samples of each group over time, the mean
// over the group's runs at each sample time. The y axis starts at 0 and
// reaches at least yMax, with room on top for the legend.
func seriesPlot(p *plot.Plot, gs []variantGroup, value func(*Sample) float64, yMax float64) (*plot.Plot, error) {
	var drawn bool
	top := yMax
	for _, g := range gs {
		xys := meanSeries(g.rs, value)
		if len(xys) == 0 {
			addMissing(p, gs, g)
			continue
		}
		for _, xy := range xys {
			top = max(top, xy.Y)
		}
		if err := addLine(p, gs, g, thin(xys, seriesPoints)); err != nil {
			return nil, err
		}
		drawn = true
	}
	if !drawn {
		return noData(p), nil
	}
	p.Y.Min = 0
	if top <= 0 {
		top = 1
	}
	legend := 0
	if len(gs) > 1 {
		legend = len(gs)
	}
	p.Y.Max = withLegendRoom(legend, top)
	return p, nil
}

// meanSeries returns the mean of value at each sample time over rs, in time
// order, minutes on x; non-finite values are left out.
func meanSeries(rs []*Result, value func(*Sample) float64) plotter.XYs {
	type acc struct {
		sum float64
		n   int
	}
	byAt := map[time.Duration]*acc{}
	for _, r := range rs {
		for i := range r.Series {
			v := value(&r.Series[i])
			if !finite(v) {
				continue
			}
			a := byAt[r.Series[i].At]
			if a == nil {
				a = &acc{}
				byAt[r.Series[i].At] = a
			}
			a.sum += v
			a.n++
		}
	}
	ats := make([]time.Duration, 0, len(byAt))
	for at := range byAt {
		ats = append(ats, at)
	}
	slices.Sort(ats)
	xys := make(plotter.XYs, len(ats))
	for i, at := range ats {
		a := byAt[at]
		xys[i] = plotter.XY{X: at.Minutes(), Y: a.sum / float64(a.n)}
	}
	return xys
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
	for _, g := range gs {
		rev := make(plotter.Values, len(classes))
		sub := make(plotter.Values, len(classes))
		for _, r := range g.rs {
			for _, c := range r.Classes {
				if finite(c.Revenue) {
					rev[at[c.Class]] += c.Revenue / float64(len(g.rs))
				}
				if finite(c.Subsidy) {
					sub[at[c.Class]] += c.Subsidy / float64(len(g.rs))
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

// savePNG draws p at plotWidth x plotHeight and plotDPI into path.
func savePNG(p *plot.Plot, path string) error {
	c := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	p.Draw(draw.New(c))
	return writeFile(path, 64<<10, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
		return err
	})
}
