package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/scheduler"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// exitError carries a process exit code: as Nomad's, 0 for success, 1 for an
// error, 2 for a job that could not be placed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// apiClient dials the node's API: the one --api or $CUIVRE_API names, else
// the data dir's daemon.
func apiClient() (*api.Client, error) {
	if c, ok, err := remoteAPI(); ok {
		return c, err
	}
	dir, err := resolveDir()
	if err != nil {
		return nil, err
	}
	return api.Dial(dir)
}

func newJobRunCmd() *cobra.Command {
	var detach bool
	var output format
	var downloadDir string
	var wait, placementTimeout time.Duration
	var bootstrap []string
	cmd := &cobra.Command{
		Use:   "run JOB.yaml|-",
		Short: "Sign a job and have the local node place it",
		Long: `run signs the job with the local node's key, hands it and its module to the
node's API, and follows it as the node pushes its changes: who was asked, the
offer chosen, the run, and its output as it is written. On a terminal a last
line, rewritten in place, says where each slot stands (placing, fetching its
module and inputs or running, on whom) and for how long; a job of replicas ends with whether their outputs
agree. While every fitting provider is full, the job waits for capacity at the
node, up to its placement timeout: --placement-timeout, else the spec's
placement_timeout, else 2 minutes. Exit codes, whatever -o says: 0 the job
succeeded, 1 an error or a failed run, 2 the job could not be placed in that
time (the reasons are printed, per provider). With -o json or yaml, standard
output holds the final status alone, and no progress is printed; with
--detach, the job's CID alone, or {"cid": ...} with -o json or yaml.

JOB.yaml may be -, to read the spec from standard input: its relative module
and input paths then resolve against the current directory (those of a spec
file resolve against the file's directory).

With --bootstrap (repeatable) no daemon is needed: run starts a requester node
of its own for this command alone (role requester: it sells nothing), in a
temporary data dir, joins the federation through the peers given, places and
follows the job the same way, then stops the node and removes the dir. The
job, and the leases and receipt countersignatures that pay for it, are signed
with the data dir's identity.key if it has one (the customer the providers
know, from one run to the next), else with a key made for this run and thrown
away with it. Nothing is kept: --download the output, or it is gone; a job
still running when run ends (--wait, an interrupt) is cancelled. --detach is
refused, and so is a data dir whose daemon runs: place the job through it.`,
		Example: "  cuivre job run examples/jobs/hello.yaml\n  cuivre job run --detach job.yaml\n  sed s/hello/bonjour/ job.yaml | cuivre job run -\n" +
			"  cuivre job run --bootstrap /ip4/192.0.2.7/udp/4242/quic-v1/p2p/12D3KooW... --download out job.yaml",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if placementTimeout < 0 || placementTimeout > protocol.MaxPlacementTimeout || placementTimeout%time.Millisecond != 0 {
				return fmt.Errorf("--placement-timeout %v: use a whole number of milliseconds up to %v", placementTimeout, protocol.MaxPlacementTimeout)
			}
			src, err := readSpec(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if output.machine() {
				errOut = io.Discard // a document is never mixed with progress text
			}
			ctx := cmd.Context()
			var c *api.Client
			var key crypto.PrivKey
			var eph *ephemeral
			if len(bootstrap) > 0 {
				if detach {
					return errors.New("--detach needs a daemon to place the job: with --bootstrap the node lives only as long as this command")
				}
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
				if eph, err = startEphemeral(ctx, bootstrap, errOut, cmd.ErrOrStderr()); err != nil {
					return err
				}
				defer func() {
					stop() // a second signal ends the process at once
					err = errors.Join(err, eph.close())
				}()
				c, key = eph.client, eph.key
			} else if c, key, err = localNode(); err != nil {
				return err
			}
			env, module, err := signJobWith(ctx, c, key, src, cmd.ErrOrStderr(), placementTimeout)
			if err != nil {
				return err
			}
			var resp api.SubmitResponse
			if err := c.Do("POST", "/v1/jobs", api.SubmitRequest{Job: env, Module: module, Spec: src.name}, &resp); err != nil {
				return err
			}
			if detach && output.machine() {
				return render(out, output, resp, nil)
			}
			if detach {
				fmt.Fprintln(out, resp.CID)
				return nil
			}
			if eph != nil {
				eph.job = resp.CID
			}
			fmt.Fprintf(errOut, "job %s submitted\n", resp.CID)
			var live io.Writer // the runs' output, as it comes
			if !output.machine() {
				live = out
			}
			v, err := follow(ctx, c, resp.CID, live, errOut, wait)
			if err != nil {
				if eph != nil {
					return eph.unfollowed(err)
				}
				return err
			}
			if err := showRun(out, errOut, output, v); err != nil {
				return err
			}
			if err := jobExit(v); err != nil || downloadDir == "" {
				return err
			}
			return download(cmd.Context(), c, v, "", downloadDir, errOut, errOut)
		},
	}
	addDataDir(cmd)
	cmd.Flags().BoolVar(&detach, "detach", false, "print the job's CID and return at once")
	addOutput(cmd, &output)
	cmd.Flags().StringVar(&downloadDir, "download", "", "once the job succeeds, write its output into this directory")
	cmd.Flags().DurationVar(&wait, "wait", 0, "give up following after this long (0, or --wait alone: until the job ends)")
	cmd.Flags().Lookup("wait").NoOptDefVal = "0s" // --wait alone, as other tools spell following to the end
	cmd.Flags().DurationVar(&placementTimeout, "placement-timeout", 0,
		"how long to keep trying to place the job, waiting for capacity while fitting providers are full (0: the spec's placement_timeout, else 2m)")
	cmd.Flags().StringArrayVar(&bootstrap, "bootstrap", nil,
		"run without a daemon: a requester node for this command alone joins the federation through this peer (a multiaddr ending in /p2p/<peer ID>; repeatable)")
	return cmd
}

// localNode dials the data dir's daemon, or the API --api names, and reads
// the data dir's key, which signs the jobs placed through it.
func localNode() (*api.Client, crypto.PrivKey, error) {
	if c, ok, err := remoteAPI(); ok {
		if err != nil {
			return nil, nil, err
		}
		key, err := remoteKey()
		return c, key, err
	}
	dir, err := resolveDir()
	if err != nil {
		return nil, nil, err
	}
	c, err := api.Dial(dir)
	if err != nil {
		return nil, nil, err
	}
	key, err := config.LoadIdentity(dir)
	if err != nil {
		return nil, nil, err
	}
	return c, key, nil
}

// signJob reads a spec, signs the job with the data dir's key under a
// fresh nonce, and dials the data dir's daemon; it returns the sealed job and
// the module's bytes when the spec names a file.
func signJob(ctx context.Context, src specSource, errOut io.Writer, placementTimeout time.Duration) (*api.Client, []byte, []byte, error) {
	c, key, err := localNode()
	if err != nil {
		return nil, nil, nil, err
	}
	env, module, err := signJobWith(ctx, c, key, src, errOut, placementTimeout)
	return c, env, module, err
}

// signJobWith parses a spec, adds its local inputs to the node c dials,
// and signs the job with key under a fresh nonce; it returns the sealed job
// and the module's bytes when the spec names a file the node does not hold.
func signJobWith(ctx context.Context, c *api.Client, key crypto.PrivKey, src specSource, errOut io.Writer, placementTimeout time.Duration) ([]byte, []byte, error) {
	j, module, err := loadJob(src, nodeInputs(ctx, c, src.dir, errOut))
	if err != nil {
		return nil, nil, err
	}
	if placementTimeout > 0 {
		j.PlacementTimeoutMs = uint64(placementTimeout / time.Millisecond)
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(j.Nonce)
	signed, err := record.SealJob(key, j)
	if err != nil {
		return nil, nil, err
	}
	if module != nil && c.Get("/v1/modules/"+wire.SumCID(module).String(), nil) == nil {
		module = nil // the node holds it: a job is then a few hundred bytes, not megabytes
	}
	return signed.Envelope, module, nil
}

// jobView dials the local node and reads one of its jobs, named as
// resolveJob reads it.
func jobView(ref string) (*api.Client, requester.JobView, error) {
	var v requester.JobView
	c, err := apiClient()
	if err != nil {
		return nil, v, err
	}
	key, err := resolveJob(c, ref)
	if err != nil {
		return nil, v, err
	}
	return c, v, c.Get("/v1/jobs/"+key, &v)
}

// stillRunning is follow's error for a job that had not ended when it gave
// up, at its wait's end or its context's.
type stillRunning struct {
	cid, state, why string
}

func (e *stillRunning) Error() string {
	return fmt.Sprintf("job %s still %s %s: follow it with `cuivre job status %s`", e.cid, e.state, e.why, e.cid)
}

// showRun shows a job that ended, whose output follow showed as it came: its
// final status alone as JSON or YAML on out, else its status on errOut.
func showRun(out, errOut io.Writer, f format, v requester.JobView) error {
	if f.machine() {
		return render(out, f, v, nil)
	}
	printJob(errOut, v, f == "wide")
	return nil
}

// jobExit is the error, and so the exit code, of a job that ended: the same
// whatever the output format.
func jobExit(v requester.JobView) error {
	switch {
	case v.State == "succeeded":
		return nil
	case v.State == "failed" && v.Code == int32(scheduler.ReasonNotPlaced):
		return &exitError{2, fmt.Errorf("job %s could not be placed: %s", v.CID, v.Reason)}
	}
	return &exitError{1, fmt.Errorf("job %s %s: %s", v.CID, v.State, v.Reason)}
}

// printJob writes a job's status for people; wide shows whole peer IDs.
func printJob(w io.Writer, v requester.JobView, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "job\t%s (%s)\nstate\t%s\n", v.CID, v.Name, v.State)
	if v.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", v.Reason)
	}
	for i, s := range v.Slots {
		if s.Provider == "" {
			fmt.Fprintf(tw, "slot %d\t%s, never leased\n", i, s.State)
			continue
		}
		on := peerID(s.Provider, wide)
		if s.Site != "" {
			on += " (a retailer), run at site " + peerID(s.Site, wide)
		}
		fmt.Fprintf(tw, "slot %d\t%s on %s, epoch %d, %s, exit %d\n", i, s.State, on, s.Epoch, slotCost(s), s.ExitCode)
		for _, c := range []struct {
			cut  bool
			name string
		}{{s.StdoutCut, "stdout"}, {s.StderrCut, "stderr"}} {
			if c.cut {
				fmt.Fprintf(tw, "\t%s cut by the provider at its log limit: what is shown is its beginning\n", c.name)
			}
		}
		if len(s.Scores) > 0 {
			fmt.Fprintf(tw, "\twon with %s\n", scores(s.Scores))
		}
	}
	if v.Billed != "" {
		fmt.Fprintf(tw, "billed\t%s, every run's receipt (what each ran, not the quotes)\n", price(v.Billed))
	}
	for _, o := range v.Outputs {
		where := "on its provider"
		switch {
		case o.Held:
			where = "fetched to this node"
		case o.Error != "":
			where = "not fetched: " + o.Error
		}
		agree := ""
		if n := len(o.Providers); n > 1 {
			agree = fmt.Sprintf(", %d replicas agree", n)
		}
		fmt.Fprintf(tw, "output\t%s (%s%s), %s\n", o.CID, humanBytes(o.Size), agree, where)
	}
	if len(v.Outputs) > 1 {
		fmt.Fprintf(tw, "\tthe replicas disagree: %d different outputs\n", len(v.Outputs))
	}
	if len(v.Asked) > 0 {
		fmt.Fprintf(tw, "asked\t\n")
	}
	for _, o := range v.Asked {
		line := o.Reason
		if o.Detail != "" {
			line += ": " + o.Detail
		}
		if len(o.Scores) > 0 {
			line += ", scored " + scores(o.Scores)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", peerID(o.Provider, wide), line)
	}
	tw.Flush()
}

// slotCost is what a slot costs, for people: what its receipt billed once
// it ran, not the quote; nothing for a slot cancelled before a run.
func slotCost(s requester.SlotView) string {
	switch {
	case s.Billed != "":
		return "billed " + price(s.Billed)
	case s.ReceiptRefused != "":
		return "receipt refused (" + s.ReceiptRefused + ")"
	case s.State == "cancelled" || s.Price == "":
		return "no price"
	case s.State == "succeeded" || s.State == "failed":
		return "quoted " + price(s.Price) + ", no receipt"
	}
	return "quoted " + price(s.Price)
}

// scores reads "1875 (price 1000, load 875)", as scheduler.Scores does.
func scores(ss []requester.ScoreView) string {
	s := make(scheduler.Scores, len(ss))
	for i, x := range ss {
		s[i] = scheduler.Score{Scorer: x.Scorer, Weight: x.Weight, Value: x.Value}
	}
	return s.String()
}

func newJobStatusCmd() *cobra.Command {
	var output format
	cmd := &cobra.Command{
		Use:               "status JOB",
		Short:             "Show a job's state, slots and the reasons of refusals",
		Long:              "status shows a job's state, its slots and why providers refused it.\n\n" + jobRefHelp,
		Example:           "  cuivre job status bafkreihafg\n  cuivre job status hello -o yaml",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, v, err := jobView(args[0])
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), output, v, func(tw *tabwriter.Writer, wide bool) {
				printJob(tw, v, wide)
			})
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

func newJobLogsCmd() *cobra.Command {
	var followLogs, stderr bool
	cmd := &cobra.Command{
		Use:               "logs JOB",
		Short:             "Print a job's output (stdout, or --stderr)",
		Long:              "logs prints what a job's instances wrote, as it comes with -f.\n\n" + jobRefHelp,
		Example:           "  cuivre job logs -f hello",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			key, err := resolveJob(c, args[0])
			if err != nil {
				return err
			}
			path := fmt.Sprintf("/v1/jobs/%s/logs?follow=%t", key, followLogs)
			if stderr {
				path += "&stream=stderr"
			}
			return c.Stream(path, cmd.OutOrStdout())
		},
	}
	addDataDir(cmd)
	cmd.Flags().BoolVarP(&followLogs, "follow", "f", false, "keep printing until the job ends")
	cmd.Flags().BoolVar(&stderr, "stderr", false, "print standard error instead")
	return cmd
}

func newJobStopCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:               "stop JOB",
		Short:             "Cancel a job: its leases are cancelled at their providers",
		Long:              "stop cancels a job: its leases are cancelled at their providers.\n\n" + jobRefHelp,
		Example:           "  cuivre job stop bafkreihafg",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			key, err := resolveJob(c, args[0])
			if err != nil {
				return err
			}
			return c.Do("DELETE", "/v1/jobs/"+key, nil, nil)
		},
	}
	addDataDir(cmd)
	return cmd
}

func newJobListCmd() *cobra.Command {
	var output format
	var lf jobListFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the jobs the local node placed; its history survives restarts",
		Long: `list shows the local node's jobs, the newest first: the last ` + fmt.Sprint(defaultJobLimit) + ` unless
--limit says otherwise (0: all). --state, --name and --since keep only the jobs
that match, in every -o format. When more jobs match than are shown, standard
error says so and gives the --before that shows the next page.`,
		Example: "  cuivre job list\n  cuivre job list --state failed --since 24h\n  cuivre job list --name hello -o json\n" +
			"  cuivre job list --limit 50 --before bafkreihafg",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var jobs []requester.JobView
			if err := c.Get("/v1/jobs", &jobs); err != nil {
				return err
			}
			f, err := lf.filter(jobs, time.Now())
			if err != nil {
				return err
			}
			jobs, more := f.apply(jobs)
			defer morePages(cmd.ErrOrStderr(), jobs, more)
			return render(cmd.OutOrStdout(), output, jobs, func(tw *tabwriter.Writer, wide bool) {
				fmt.Fprint(tw, "CID\tNAME\tSTATE\tPROVIDERS\tSUBMITTED\tREASON")
				if wide {
					fmt.Fprint(tw, "\tPLACED IN\tBILLED\tSPEC")
				}
				fmt.Fprintln(tw)
				for _, j := range jobs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s", j.CID, j.Name, j.State, providers(j, wide), j.Submitted.Format(time.RFC3339), orNone(j.Reason))
					if wide {
						placed := "-"
						if j.PlacedMs > 0 {
							placed = (time.Duration(j.PlacedMs * float64(time.Millisecond))).Round(time.Millisecond).String()
						}
						fmt.Fprintf(tw, "\t%s\t%s\t%s", placed, price(j.Billed), orNone(j.Spec))
					}
					fmt.Fprintln(tw)
				}
			})
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	lf.add(cmd)
	return cmd
}

// providers are the peers a job's slots are on, each once, in slot order.
func providers(j requester.JobView, wide bool) string {
	var ids []string
	for _, s := range j.Slots {
		if id := peerID(s.Provider, wide); s.Provider != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, ",")
}

// completeJobs completes a job's CID from the local node's jobs, with each
// one's name and state beside it; nothing, quietly, when no node answers.
func completeJobs(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	none := cobra.ShellCompDirectiveNoFileComp
	if len(args) > 0 {
		return nil, none
	}
	c, err := apiClient()
	if err != nil {
		return nil, none
	}
	var jobs []requester.JobView
	if c.Get("/v1/jobs", &jobs) != nil {
		return nil, none
	}
	var out []cobra.Completion
	for _, j := range jobs {
		if strings.HasPrefix(j.CID, toComplete) {
			out = append(out, cobra.CompletionWithDesc(j.CID, j.Name+", "+j.State))
		}
	}
	slices.Sort(out)
	return out, none
}
