package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/simulations"
)

func newSimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate a federation with the production scheduler",
		Long: `sim runs a discrete-event simulation of a federation described by a
scenario file: providers holding the scheduler's market, jobs driven by the
scheduler's placement, a network, DHT, workload and churn model. Scenarios
ship in simulations/scenarios; docs/SIMULATOR.md describes the file and the
models.`,
	}
	cmd.AddCommand(newSimRunCmd(), newSimSweepCmd(), newSimValidateCmd(), newSimConvertCmd())
	return cmd
}

func newSimValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate SCENARIO.yaml",
		Short: "Check a scenario file, with the line and column of each error",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := simulations.LoadScenario(args[0])
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			n := 0
			for _, c := range sc.Classes {
				n += c.Count
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d providers in %d classes, %d regions, %d variants\n",
				args[0], n, len(sc.Classes), len(sc.Network.Regions), max(1, len(sc.Variants)))
			return nil
		},
	}
}

func newSimRunCmd() *cobra.Command {
	var (
		seed     uint64
		runs     int
		parallel int
		out      string
		format   string
		perRun   bool
		sets     []string
		variants []string
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "run SCENARIO.yaml",
		Short: "Run a scenario and write its CSVs, plots and manifest",
		Long: `run simulates each variant of the scenario --runs times, with seeds
--seed, --seed+1, ... (10 runs unless the scenario's "runs:" or --runs says
otherwise), and writes into --out:

  manifest.json        the scenario, seeds, commit and each run's trace hash
  summary.csv          per variant and metric: runs, mean, sd and the 95%
                       confidence interval (Student's t) over the runs
  runs.csv             every metric of every run
  <variant>[-<seed>]/  jobs.csv, placements.csv, providers.csv, classes.csv,
                       timeseries.csv and losses.csv of each run
  *.png (.svg, .pdf)   plots comparing the variants: time series as the mean
                       with a 95% band, CDFs pooling the runs

then prints the table of each metric's mean ± the half-width of its 95%
interval, and a timing line with events per second and bytes per provider.
With --runs 1 it prints each run's figures, with no interval. The same
scenario and seed give the same trace hash.`,
		Example: `  cuivre sim run simulations/scenarios/small.yaml
  cuivre sim run simulations/scenarios/unbundling.yaml --runs 20 --format png,pdf
  cuivre sim run simulations/scenarios/small.yaml --runs 1    # a quick look
  cuivre sim run simulations/scenarios/small.yaml --set scheduler.d=4 --set classes.sme.count=500`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			text, err := os.ReadFile(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fixed, err := parseSets(sets)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			sc, err := simulations.LoadScenarioSet(path, fixed)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := sc.KeepVariants(variants); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--variants: %w", err)}
			}
			if !cmd.Flags().Changed("seed") {
				seed = sc.Seed
			}
			if !cmd.Flags().Changed("runs") && sc.Runs > 0 {
				runs = sc.Runs
			}
			formats, err := simulations.ParseFormats(format)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--format: %w", err)}
			}
			if runs < 1 {
				return &exitError{code: 2, err: fmt.Errorf("--runs %d: must be at least 1", runs)}
			}
			if out == "" {
				out = filepath.Join("results", sc.Name)
			}
			opts := simulations.RunOptions{Seed: seed, Runs: runs, Parallel: parallel}
			plan := simulations.Plan(sc, opts)
			var bar *progressBar
			if !quiet {
				bar = newProgressBar(cmd.ErrOrStderr(), plan, sc.Duration)
				opts.Progress = bar.update
			}
			start := time.Now()
			results, err := simulations.RunAll(sc, opts)
			if bar != nil {
				bar.done()
			}
			if err != nil {
				return err
			}
			wall := time.Since(start)
			dirs := make([]string, len(results))
			for i, r := range results {
				dirs[i] = r.Variant
				if runs > 1 {
					dirs[i] = fmt.Sprintf("%s-%d", r.Variant, r.Seed)
				}
				if err := simulations.WriteRun(filepath.Join(out, dirs[i]), r); err != nil {
					return err
				}
			}
			if err := simulations.WritePlotsAs(out, results, formats); err != nil {
				return err
			}
			stats := simulations.Aggregate(results)
			if err := simulations.WriteStats(out, stats); err != nil {
				return err
			}
			m := simulations.NewManifest(path, text, buildCommit(), seed, runs, results, dirs)
			m.Sets = sets
			if err := simulations.WriteManifest(out, m); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if runs == 1 || perRun {
				simulations.Summary(w, results)
			}
			if runs == 1 {
				fmt.Fprintf(w, "\none run of each variant: no confidence interval (give --runs 2 or more, 10 by default)\n")
			} else {
				if perRun {
					fmt.Fprintln(w)
				}
				simulations.SummaryStats(w, stats)
			}
			var events uint64
			var bytes float64
			for _, r := range results {
				events += r.Events
				bytes = max(bytes, r.BytesPerProvider)
			}
			fmt.Fprintf(w, "\n%d runs: %d events in %s (%.0f events/s)", len(results), events, wall.Round(time.Millisecond), float64(events)/wall.Seconds())
			if bytes > 0 {
				fmt.Fprintf(w, ", %.0f bytes per provider", bytes)
			}
			fmt.Fprintf(w, "\nwrote %s\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&seed, "seed", 1, "seed of the first run (default: the scenario's)")
	f.IntVar(&runs, "runs", defaultRuns, "runs of each variant, with seeds seed, seed+1, ... (default: the scenario's runs, else 10)")
	f.IntVar(&parallel, "parallel", 0, "runs at once (default: one per core; 1 measures bytes per provider)")
	f.StringVarP(&out, "out", "o", "", "directory to write into (default results/<scenario name>)")
	f.StringVar(&format, "format", "png", "plot formats, comma-separated: png, svg, pdf")
	f.BoolVar(&perRun, "per-run", false, "print each run's figures too, not only their means")
	f.StringArrayVar(&sets, "set", nil, "PATH=VALUE: set a key of the scenario file first, as sim sweep --param does (repeatable; an empty VALUE leaves the key out)")
	f.StringSliceVar(&variants, "variants", nil, "run only these variants, comma-separated (default: every one)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// parseSets reads the --set flags.
func parseSets(sets []string) ([]simulations.SweepParam, error) {
	var out []simulations.SweepParam
	for _, s := range sets {
		p, err := simulations.ParseSet(s)
		if err != nil {
			return nil, fmt.Errorf("--set %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// defaultRuns is how many seeds sim run and sim sweep run when neither the
// scenario nor --runs says: enough for a 95% interval to mean something
// (t = 2.26 at 9 degrees of freedom, against 12.7 at 1).
const defaultRuns = 10

func newSimSweepCmd() *cobra.Command {
	var (
		params   []string
		seed     uint64
		runs     int
		parallel int
		out      string
		format   string
		metrics  string
		sets     []string
		variants []string
		logY     bool
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "sweep SCENARIO.yaml --param PATH=VALUES [--param PATH=VALUES]",
		Short: "Run a scenario over a range of one or two parameters, and plot each metric against them",
		Long: `sweep sets one or two keys of the scenario file to each of their values in
turn, runs every variant of each point --runs times (seeds --seed, --seed+1,
...; 10 runs unless the scenario's "runs:" or --runs says otherwise), and
writes into --out:

  manifest.json        the scenario, parameters, seeds, commit, and each
                       point's runs with their trace hashes
  sweep.csv            per point, variant and metric: runs, mean, sd and the
                       95% confidence interval (Student's t)
  sweep_runs.csv       every metric of every run
  sweep_<metric>.png   each metric's mean against the first parameter, with
                       error bars: one line per variant, or with two
                       parameters one per value of the second

PATH names a key of the scenario file as its error messages do: sections
and keys separated by dots, an entry of a list by its name or its index
(classes.sovereign.subsidy, classes[0].count, workload.sizes[1].cpu). A key
the file leaves out is added. Every point is checked by the scenario parser
before anything runs; an unknown key or a bad value is an error naming the
parameter, the value and the line.

VALUES are separated by commas; lo:hi:step stands for lo, lo+step, ... up
to hi (numbers, or durations such as 1s:5s:1s). --set PATH=VALUE sets a key
at every point, and with an empty VALUE leaves it out (to sweep the load of
a scenario that gives a rate, say).`,
		Example: `  cuivre sim sweep simulations/scenarios/small.yaml --param workload.arrivals.load=0.4:1.0:0.2
  cuivre sim sweep simulations/scenarios/unbundling.yaml --param classes.sovereign.subsidy=0,0.25,0.5,0.75
  cuivre sim sweep simulations/scenarios/churn.yaml --param scheduler.d=1,2,3,4 \
      --param workload.arrivals.load=0.5,0.7,0.9 --runs 5 --format png,pdf
  cuivre sim sweep small.yaml --param scheduler.policy=balanced,cheapest,least-loaded,best-fit
  cuivre sim sweep small.yaml --param scheduler.max_attempts=1,3,10 --metrics placed_pct,jobs_lost
  cuivre sim sweep chaos.yaml --set workload.arrivals.rate= --param workload.arrivals.load=0.5:1.5:0.25`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			usage := func(err error) error { return &exitError{code: 2, err: err} }
			if len(params) == 0 || len(params) > 2 {
				return usage(fmt.Errorf("give one or two --param PATH=VALUES, not %d", len(params)))
			}
			var ps []simulations.SweepParam
			for _, s := range params {
				p, err := simulations.ParseSweepParam(s)
				if err != nil {
					return usage(fmt.Errorf("--param %w", err))
				}
				ps = append(ps, p)
			}
			formats, err := simulations.ParseFormats(format)
			if err != nil {
				return usage(fmt.Errorf("--format: %w", err))
			}
			names, err := simulations.ParseMetrics(metrics)
			if err != nil {
				return usage(fmt.Errorf("--metrics: %w", err))
			}
			if cmd.Flags().Changed("runs") && runs < 1 {
				return usage(fmt.Errorf("--runs %d: must be at least 1", runs))
			}
			text, err := os.ReadFile(path)
			if err != nil {
				return usage(err)
			}
			fixed, err := parseSets(sets)
			if err != nil {
				return usage(err)
			}
			points, err := simulations.LoadSweep(path, ps, fixed)
			if err != nil {
				return usage(err)
			}
			for _, p := range points {
				if err := p.Scenario.KeepVariants(variants); err != nil {
					return usage(fmt.Errorf("--variants: %w", err))
				}
			}
			base := points[0].Scenario
			if !cmd.Flags().Changed("seed") {
				seed = base.Seed
			}
			if !cmd.Flags().Changed("runs") {
				runs = defaultRuns
				if base.Runs > 0 {
					runs = base.Runs
				}
			}
			if out == "" {
				out = filepath.Join("results", base.Name+"-sweep")
			}
			sr := &simulations.SweepResult{Params: ps}
			start := time.Now()
			var events uint64
			total := 0
			for i, pt := range points {
				opts := simulations.RunOptions{Seed: seed, Runs: runs, Parallel: parallel}
				plan := simulations.Plan(pt.Scenario, opts)
				var bar *progressBar
				if !quiet {
					var at []string
					for k, p := range ps {
						at = append(at, p.Path+"="+pt.Values[k])
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "point %d of %d: %s\n", i+1, len(points), strings.Join(at, ", "))
					bar = newProgressBar(cmd.ErrOrStderr(), plan, pt.Scenario.Duration)
					opts.Progress = bar.update
				}
				results, err := simulations.RunAll(pt.Scenario, opts)
				if bar != nil {
					bar.done()
				}
				if err != nil {
					return err
				}
				for _, r := range results {
					events += r.Events
				}
				total += len(results)
				sr.Add(pt, results)
			}
			wall := time.Since(start)
			m := simulations.NewManifest(path, text, buildCommit(), seed, runs, nil, nil)
			m.Sets = sets
			if err := simulations.WriteSweep(out, sr, m, simulations.SweepPlots{Metrics: names, Formats: formats, LogY: logY}); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			simulations.SweepTable(w, sr, names)
			fmt.Fprintf(w, "\n%d points, %d runs: %d events in %s (%.0f events/s)\nwrote %s\n",
				len(points), total, events, wall.Round(time.Millisecond), float64(events)/wall.Seconds(), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&params, "param", nil, "PATH=VALUES to sweep, such as workload.arrivals.load=0.4,0.6 or scheduler.d=1:4:1; once or twice")
	f.Uint64Var(&seed, "seed", 1, "seed of the first run of each point (default: the scenario's)")
	f.IntVar(&runs, "runs", defaultRuns, "runs of each variant at each point (default: the scenario's runs, else 10)")
	f.IntVar(&parallel, "parallel", 0, "runs at once (default: one per core)")
	f.StringVarP(&out, "out", "o", "", "directory to write into (default results/<scenario name>-sweep)")
	f.StringVar(&format, "format", "png", "plot formats, comma-separated: png, svg, pdf")
	f.StringVar(&metrics, "metrics", "", "metrics to print and plot, comma-separated (default: the summary table's; sweep.csv has them all): "+strings.Join(simulations.MetricNames(), ", "))
	f.BoolVar(&logY, "log-y", false, "plot the metrics on a log scale (for waits that grow by decades)")
	f.StringArrayVar(&sets, "set", nil, "PATH=VALUE: set a key at every point (repeatable; an empty VALUE leaves the key out, such as workload.arrivals.rate= to sweep the load of a scenario that gives a rate)")
	f.StringSliceVar(&variants, "variants", nil, "run only these variants, comma-separated (default: every one)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return cmd
}

// progressBar draws one line on a terminal: how far the runs have got, by
// virtual time or by jobs ended, whichever is further.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	plan  []simulations.RunSpec
	frac  []float64
	end   time.Duration
	last  time.Time
	width int
}

func newProgressBar(w io.Writer, plan []simulations.RunSpec, end time.Duration) *progressBar {
	b := &progressBar{w: w, plan: plan, frac: make([]float64, len(plan)), end: end, width: 30}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
		}
	}
	if !b.tty {
		fmt.Fprintf(w, "simulating %d run(s)...\n", len(plan))
	}
	return b
}

func (b *progressBar) update(i int, now time.Duration, ended, expected int) {
	f := 0.0
	if b.end > 0 {
		f = min(1, float64(now)/float64(b.end))
	}
	if expected > 0 {
		f = max(f, float64(ended)/float64(expected))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frac[i] = f
	if !b.tty || time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	var total float64
	for _, x := range b.frac {
		total += x
	}
	total /= float64(len(b.frac))
	n := int(total * float64(b.width))
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%%  %s at %s, %d jobs ended ", strings.Repeat("=", n), strings.Repeat(" ", b.width-n),
		100*total, b.plan[i].Name, now.Round(time.Second), ended)
}

func (b *progressBar) done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", b.width+60))
	}
}
