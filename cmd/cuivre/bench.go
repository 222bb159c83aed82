package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/bench"
	"github.com/cuivre/cuivre/simulations"
)

func newBenchCmd() *cobra.Command {
	var (
		o           bench.Options
		output      format
		out         string
		transferMiB int64
	)
	var figures strings.Builder
	for _, d := range bench.Defs {
		goal := ""
		if d.Goal != "" {
			goal = " (goal " + d.Goal + ")"
		}
		fmt.Fprintf(&figures, "  %-34s %s%s\n", d.Name, d.Doc, goal)
	}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the federation on this machine against its own floor",
		Long: `bench starts a devnet of --nodes providers and a requester on loopback and
measures the federation, and in the same run the floor it stands on (a raw
libp2p stream, a raw DHT lookup), so that the figures hold as ratios on a
noisy machine. It also drives the scheduler's core alone, the simulator, and
an idle ` + "`cuivre daemon`" + ` in its own process (this executable) joined to the
devnet. Each measure is repeated --repeat times; a figure is the min, median
and max over the repeats of each repeat's own statistic, and a goal is met
when its median meets it. Progress goes to standard error; with -o json or
yaml, standard output holds one document and nothing else (wide is the table).

The figures:
` + figures.String() + `
The goals are for 50 nodes. The simulator's own goal, 10^5 providers and
10^6 jobs in 5 minutes, is ` + "`make simbench`" + `.`,
		Example: "  cuivre bench\n  cuivre bench --nodes 20 --jobs 100 --repeat 1 -o json > bench.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Nodes < 2 || o.Jobs < 1 || o.Repeat < 1 || o.Idle <= 0 || transferMiB < 1 {
				return &exitError{code: 2, err: fmt.Errorf("--nodes %d --jobs %d --repeat %d --idle %s --transfer-mib %d: give at least 2 nodes, 1 job, 1 repeat, a positive idle time and 1 MiB",
					o.Nodes, o.Jobs, o.Repeat, o.Idle, transferMiB)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("the idle daemon runs this executable: %w", err)
			}
			o.Executable, o.Progress = exe, cmd.ErrOrStderr()
			o.TransferBytes = transferMiB << 20
			o.Sim = func() (uint64, time.Duration, float64, error) {
				sc, err := simulations.BenchScenario()
				if err != nil {
					return 0, 0, 0, err
				}
				r, err := simulations.Run(sc, nil, 1, nil)
				if err != nil {
					return 0, 0, 0, err
				}
				return r.Events, r.Wall, r.BytesPerProvider, nil
			}
			start := time.Now()
			r, err := bench.Run(ctx, o)
			if err != nil {
				return err
			}
			r.Commit, r.Version = buildCommit(), version
			fmt.Fprintf(cmd.ErrOrStderr(), "bench took %s\n", time.Since(start).Round(time.Second))
			if out != "" {
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			if output.machine() {
				return render(cmd.OutOrStdout(), output, r, nil)
			}
			return r.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.AddCommand(newBenchValidateCmd())
	f := cmd.Flags()
	f.IntVarP(&o.Nodes, "nodes", "n", 50, "providers in the devnet")
	f.IntVar(&o.Jobs, "jobs", 500, "jobs of each placement measure (half as many for the first-instruction ones)")
	f.IntVar(&o.Repeat, "repeat", 3, "repeats of each measure")
	f.DurationVar(&o.Idle, "idle", 30*time.Second, "the idle daemon's time, split into --repeat windows (CPU is read in 10 ms ticks)")
	f.Int64Var(&transferMiB, "transfer-mib", 256, "MiB of the DAG moved between two providers")
	addOutput(cmd, &output)
	f.StringVar(&out, "out", "", "also write the JSON document to this file")
	return cmd
}
