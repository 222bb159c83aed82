package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/requester"
)

func newJobGetCmd() *cobra.Command {
	var dir, pick string
	cmd := &cobra.Command{
		Use:   "get JOB",
		Short: "Download a job's output into a directory",
		Long: `get writes a job's output (the paths its task.outputs name, or its whole working
directory) into a directory, through the local node: from the node's own store if it
brought the output back already, else fetched from the providers that produced it,
every block checked against its CID. When replicas disagree, --cid picks an output.

` + jobRefHelp,
		Example:           "  cuivre job get bafkrei... --output-dir results\n  cuivre job get wordfreq",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, v, err := jobView(args[0])
			if err != nil {
				return err
			}
			return download(cmd.Context(), c, v, pick, dir, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addDataDir(cmd)
	cmd.Flags().StringVar(&dir, "output-dir", "", "where to write the output (default: job-<short CID>, in the current directory)")
	cmd.Flags().StringVar(&pick, "cid", "", "the output to download when replicas disagree")
	return cmd
}

// download writes a job's output into dir.
func download(ctx context.Context, c *api.Client, v requester.JobView, pick, dir string, out, errOut io.Writer) error {
	outs := slices.Clone(v.Outputs)
	if pick != "" {
		outs = slices.DeleteFunc(outs, func(o requester.OutputView) bool { return o.CID != pick })
		if len(outs) == 0 {
			return fmt.Errorf("job %s has no output %s", v.CID, pick)
		}
	}
	switch len(outs) {
	case 0:
		return fmt.Errorf("job %s (%s) has no output yet", v.CID, v.State)
	case 1:
	default:
		var list []string
		for _, o := range outs {
			list = append(list, fmt.Sprintf("%s from %d provider(s)", o.CID, len(o.Providers)))
		}
		return fmt.Errorf("the replicas of job %s disagree: %s; pick one with --cid", v.CID, strings.Join(list, ", "))
	}
	o := outs[0]
	root, err := cid.Decode(o.CID)
	if err != nil {
		return fmt.Errorf("output %q: %w", o.CID, err)
	}
	if dir == "" {
		dir = "job-" + v.CID[max(len(v.CID)-8, 0):]
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%s exists: give another directory with --output-dir", dir)
	}
	st, done, err := tempStore()
	if err != nil {
		return err
	}
	defer done()
	route := "/v1/data/" + root.String()
	if !o.Held && len(o.Providers) > 0 {
		route += "?" + url.Values{"from": o.Providers}.Encode()
	}
	if err := get(ctx, c, st, root, route, dir, errOut, o.Size); err != nil {
		return fmt.Errorf("output %s: %w", root, err)
	}
	fmt.Fprintf(out, "output %s written to %s\n", root, dir)
	return nil
}
