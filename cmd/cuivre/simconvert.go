package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/simulations/traces"
)

func newSimConvertCmd() *cobra.Command {
	var (
		o                     traces.Options
		out, start, duration  string
		maxCPU, maxMemory     string
		shift, quiet          bool
		cpuScale, memoryScale float64
	)
	cmd := &cobra.Command{
		Use:   "convert --from FORMAT INPUT... [-o trace.csv]",
		Short: "Convert a public cluster trace into a trace CSV the simulator replays",
		Long: `convert reads a public cluster trace and writes the simulator's trace CSV
(at, cpu, memory, run), which a scenario replays with workload.trace.

  --from google2019   Google's ClusterData 2019 (cluster-usage traces v3):
                      the instance_events table, as the JSON lines the
                      public buckets hold (instance_events-*.json.gz), or as
                      CSV with a header naming time, type, collection_id,
                      instance_index, collection_type, cpus, memory. A job is
                      an instance (task): it arrives at its SUBMIT and runs
                      for the time it was scheduled, retries included.
  --from alibaba2018  Alibaba's cluster-trace-v2018: batch_task.csv (a task
                      of one instance is a job, sized by plan_cpu and
                      plan_mem) or batch_instance.csv (an instance's run is a
                      job, sized by cpu_max and mem_max).

Inputs may be gzip-compressed, or tar archives (Alibaba's .tar.gz), and come
in any order; they are read once and sorted on disk (--tmp), so that traces
of many gigabytes convert in bounded memory. Both traces normalise memory, and Google CPU, to their largest
machine, whose size they hide: --cpu-scale and --memory-scale say what to
assume. Arrivals are shifted so that the first is at 0, unless --shift=false.
A summary of what was kept and dropped goes to standard error. Malformed
lines are reported with their file and line, and nothing is written, unless
--skip-bad. docs/SIMULATOR.md ("Real workloads") says where the traces come
from and what is kept.`,
		Example: `  # a day of one Google cell, a tenth of its tasks
  cuivre sim convert --from google2019 instance_events-*.json.gz \
      --duration 24h --sample 0.1 -o google-a.csv

  # Alibaba's single-instance tasks that fit a 16-vCPU, 64 GiB provider
  cuivre sim convert --from alibaba2018 batch_task.tar.gz \
      --max-cpu 16 --max-memory 64Gi --memory-scale 512 -o alibaba.csv`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			usage := func(format string, a ...any) error {
				return &exitError{code: 2, err: fmt.Errorf(format, a...)}
			}
			if o.Format == "" {
				return usage("no format: give --from %s", strings.Join(traces.Formats, " or "))
			}
			if len(args) == 0 {
				return usage("no input: give the trace's files")
			}
			var err error
			if o.Start, err = parseFlagSeconds(start); err != nil {
				return usage("--start: %v", err)
			}
			if o.Duration, err = parseFlagSeconds(duration); err != nil {
				return usage("--duration: %v", err)
			}
			if maxCPU != "" {
				if o.MaxCPUMillis, err = protocol.ParseCPU(maxCPU); err != nil {
					return usage("--max-cpu: %v", err)
				}
			}
			if maxMemory != "" {
				if o.MaxMemoryBytes, err = protocol.ParseQuantity(maxMemory); err != nil {
					return usage("--max-memory: %v", err)
				}
			}
			if cmd.Flags().Changed("cpu-scale") && cpuScale <= 0 {
				return usage("--cpu-scale %v: give the vCPUs of the largest machine, above 0", cpuScale)
			}
			if cmd.Flags().Changed("memory-scale") && memoryScale <= 0 {
				return usage("--memory-scale %v: give the GiB of the largest machine's memory, above 0", memoryScale)
			}
			if cmd.Flags().Changed("sample") && o.Sample <= 0 {
				return usage("--sample %v: give a fraction in (0, 1]", o.Sample)
			}
			if cmd.Flags().Changed("speedup") && o.Speedup <= 0 {
				return usage("--speedup %v: give a factor above 0", o.Speedup)
			}
			o.CPUScale, o.MemoryScale, o.KeepTime = cpuScale, memoryScale, !shift
			return convertTrace(cmd, args, out, o, quiet)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Format, "from", "", "format of the inputs: google2019 or alibaba2018 (required)")
	cmd.RegisterFlagCompletionFunc("from", cobra.FixedCompletions(traces.Formats, cobra.ShellCompDirectiveNoFileComp))
	f.StringVarP(&out, "out", "o", "-", "trace CSV to write; - is standard output")
	f.Float64Var(&cpuScale, "cpu-scale", 0, fmt.Sprintf("google2019: vCPUs of the largest machine, which requests are normalised to (default %g)", traces.DefaultGoogleCPUScale))
	f.Float64Var(&memoryScale, "memory-scale", 0, fmt.Sprintf("GiB of the largest machine's memory, which memory is normalised to (default %g for google2019, %g for alibaba2018)",
		traces.DefaultGoogleMemoryScale, traces.DefaultAlibabaMemoryScale))
	f.StringVar(&start, "start", "", "keep the jobs arriving from this time of the trace on: a duration (2h) or seconds (default its start)")
	f.StringVar(&duration, "duration", "", "keep the jobs arriving within this long after --start (default to the end)")
	f.Float64Var(&o.Sample, "sample", 0, "keep each job with this probability, drawn from its identity and --seed (default all)")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of --sample")
	f.IntVar(&o.Limit, "limit", 0, "keep the first N jobs by arrival, after the window and the sample (default all)")
	f.BoolVar(&shift, "shift", true, "shift arrivals so that the first is at 0; false keeps the trace's time")
	f.Float64Var(&o.Speedup, "speedup", 0, "divide arrival times by this factor, leaving run times: the load is multiplied by it (default 1)")
	f.StringVar(&maxCPU, "max-cpu", "", "drop jobs asking more CPU than this, such as 16 or 500m (default none)")
	f.StringVar(&maxMemory, "max-memory", "", "drop jobs asking more memory than this, such as 64Gi (default none)")
	f.BoolVar(&o.SkipBad, "skip-bad", false, "convert around malformed lines, counting them, instead of failing")
	f.StringVar(&o.TempDir, "tmp", "", "directory for the sort's temporary files (default the system's)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no summary on standard error")
	return cmd
}

// convertTrace converts into out, through a temporary file beside it that
// is renamed when the conversion succeeds, so that a failed one leaves no
// half trace.
func convertTrace(cmd *cobra.Command, inputs []string, out string, o traces.Options, quiet bool) error {
	w := cmd.OutOrStdout()
	var tmp *os.File
	if out != "-" {
		var err error
		tmp, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	st, err := traces.Convert(w, inputs, o)
	stderr := cmd.ErrOrStderr()
	if st != nil && !quiet {
		for _, e := range st.Warnings {
			fmt.Fprintf(stderr, "skipped %v\n", e)
		}
		if n := st.Bad - int64(len(st.Warnings)); n > 0 {
			fmt.Fprintf(stderr, "skipped %d more malformed lines\n", n)
		}
		if err == nil || errors.Is(err, traces.ErrNoJobs) {
			st.Summary(stderr)
		}
	}
	var usage *traces.UsageError
	var bad *traces.BadInputError
	if errors.As(err, &usage) || errors.As(err, &bad) || errors.Is(err, traces.ErrNoJobs) {
		return &exitError{code: 2, err: err}
	}
	if err != nil {
		return err
	}
	if tmp != nil {
		if err := tmp.Chmod(0o644); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), out); err != nil {
			return err
		}
		if !quiet {
			fmt.Fprintf(stderr, "wrote %s\n", out)
		}
	}
	return nil
}

// parseFlagSeconds reads a Go duration ("90m") or plain seconds ("5400");
// "" is 0.
func parseFlagSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
		return 0, fmt.Errorf("bad time %q: use a duration such as 2h, or plain seconds", s)
	}
	return time.Duration(math.Round(f * float64(time.Second))), nil
}
