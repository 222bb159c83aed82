package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/chaos"
)

func newChaosCmd() *cobra.Command {
	var (
		o            chaos.Options
		noPartitions bool
		module, out  string
	)
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run a federation of daemons under a stream of jobs and faults, and count what was lost",
		Long: `chaos starts --providers provider daemons and --requesters requester daemons,
each a separate ` + "`cuivre daemon`" + ` process (this executable) with a data dir of its
own, bootstrapped from one another over QUIC, each provider selling 2 vCPU.
For --duration it submits --rate jobs a second to the requesters' local APIs
(the sieve of examples/wasm/sieve.wasm, one vCPU for a few seconds), while it
injects a plan of faults drawn from --seed:

  kill-fast       kill -9 of a provider, restarted within a second
  kill-slow       kill -9 of a provider, restarted 5 to 30 s later
  kill-20pct      kill -9 of a fifth of the providers at once, restarted later
  kill-requester  kill -9 of a requester, restarted within 3 s: its jobs resume
  partition       a provider cut off the network for --partition-for

Partitions need root and the ip command: the daemons then run in network
namespaces the harness makes (a bridge, a private 10.x /24; nothing routes
out), and a partition takes a provider's link down. Every namespace and link
is removed at the end, on error and on Ctrl-C too. Without root or ip, the
daemons run on loopback and partitions are skipped, as the report says.

Then it heals every fault, waits for the jobs to end, stops the daemons and
opens their stores. The report (a table here, JSON in --out) counts the jobs
submitted, succeeded, failed by their own fault (non-zero exit or their own
timeout) and LOST (any other end, or not ended); lease epochs run on two
providers; receipts countersigned twice; faults by kind; the time from a
provider's fault to each of its leases declared lost (detection) and from
there to the slot's next lease (re-placement), p50 and p99; and how many jobs
submitted in the 30 s after a mass kill were placed. docs/RELIABILITY.md
explains each figure.

The plan is printed first: the same --seed with the same settings replays it.
Exit status: 0 when nothing was lost, run twice or billed twice; 1 otherwise
or on an error.`,
		Example: "  cuivre chaos                                  # the full run: 10 minutes, 10 providers\n" +
			"  cuivre chaos --duration 2m --providers 5 --seed 42\n" +
			"  cuivre chaos --no-partitions --dir /tmp/chaos  # keep the data dirs and daemon logs",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := os.ReadFile(module)
			if err != nil {
				return fmt.Errorf("--module: %w (run from the repository's root, or give the path of sieve.wasm)", err)
			}
			o.Module, o.Partitions, o.Log = m, !noPartitions, cmd.ErrOrStderr()

			// The first signal stops the run, which then removes what it
			// made; later ones are ignored until it has, so that a
			// second Ctrl-C does not leave namespaces behind.
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				for range sigs {
					fmt.Fprintln(cmd.ErrOrStderr(), "chaos: stopping; removing the daemons, namespaces and links")
					cancel()
				}
			}()

			r, err := chaos.Run(ctx, o)
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return errors.New("interrupted: no report")
				}
				return err
			}
			r.WriteText(cmd.OutOrStdout())
			if out != "" {
				if err := r.WriteJSON(out); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "report written to %s\n", out)
			}
			if !r.OK() {
				return &exitError{1, fmt.Errorf("%d jobs lost, %d lease epochs run twice, %d billed twice", r.Jobs.Lost, r.RunTwice, r.BilledTwice)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Providers, "providers", 10, "provider daemons")
	f.IntVar(&o.Requesters, "requesters", 1, "requester daemons")
	f.DurationVar(&o.Duration, "duration", 10*time.Minute, "how long jobs are submitted and faults injected")
	f.Float64Var(&o.Rate, "rate", 1, "jobs submitted per second")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of the fault plan (0: from the clock; printed, to replay a run)")
	f.IntVar(&o.Faults, "faults", 0, "faults to plan over the run (0: one every 2.5 s)")
	f.BoolVar(&noPartitions, "no-partitions", false, "make no partitions: the daemons run on loopback")
	f.DurationVar(&o.PartitionFor, "partition-for", 90*time.Second, "how long a partition lasts")
	f.StringVar(&o.Dir, "dir", "", "keep the daemons' data dirs and logs in this new or empty directory (default: a temporary one, removed)")
	f.StringVar(&module, "module", "examples/wasm/sieve.wasm", "the sieve's WebAssembly, which every job runs")
	f.StringSliceVar(&o.Args, "job-args", chaos.DefaultArgs, "the sieve's arguments, which set how long a job runs: --n (primes below) and --rounds")
	f.StringVar(&out, "out", "chaos.json", "write the report as JSON here (empty: none)")
	return cmd
}
