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
	cmd.AddCommand(newSimRunCmd(), newSimValidateCmd(), newSimConvertCmd())
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
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "run SCENARIO.yaml",
		Short: "Run a scenario and write its CSVs, plots and manifest",
		Long: `run simulates each variant of the scenario --runs times (seeds --seed,
--seed+1, ...) and writes into --out:

  manifest.json        the scenario, seeds, commit and each run's trace hash
  <variant>[-<seed>]/  jobs.csv, placements.csv, providers.csv, classes.csv,
                       timeseries.csv of each run
  *.png                plots comparing the variants

then prints a summary table, and a timing line with events per second and
bytes per provider. The same scenario and seed give the same trace hash.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			text, err := os.ReadFile(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			sc, err := simulations.LoadScenario(path)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if !cmd.Flags().Changed("seed") {
				seed = sc.Seed
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
			if err := simulations.WritePlots(out, results); err != nil {
				return err
			}
			m := simulations.NewManifest(path, text, buildCommit(), seed, runs, results, dirs)
			if err := simulations.WriteManifest(out, m); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			simulations.Summary(w, results)
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
	f.IntVar(&runs, "runs", 1, "runs of each variant, with seeds seed, seed+1, ...")
	f.IntVar(&parallel, "parallel", 0, "runs at once (default: one per core; 1 measures bytes per provider)")
	f.StringVarP(&out, "out", "o", "", "directory to write into (default results/<scenario name>)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
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
