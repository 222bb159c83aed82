package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/data"
)

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Add files and directories to the local node, and get them back, by CID",
		Long: `data moves content-addressed files and directories between this machine and the
local node's store: UnixFS DAGs with CIDv1 roots, the CIDs ipfs add --cid-version=1
gives, carried as CAR streams whose every block is checked against its CID.`,
	}
	cmd.AddCommand(newDataAddCmd(), newDataGetCmd())
	return cmd
}

func newDataAddCmd() *cobra.Command {
	var public bool
	cmd := &cobra.Command{
		Use:   "add PATH",
		Short: "Add a file or a directory to the local node and print its CID",
		Long: `add builds the DAG of a file or a directory and keeps it in the local node. The
node serves its blocks only to the peers it grants them (the providers of your
jobs that take it as input); with --public, to any peer that asks.`,
		Example: "  cuivre data add ./inputs\n  cuivre data add --public ./dataset",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			root, err := upload(cmd.Context(), c, args[0], public, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), root)
			return nil
		},
	}
	addDataDir(cmd)
	cmd.Flags().BoolVar(&public, "public", false, "let any peer fetch it")
	return cmd
}

func newDataGetCmd() *cobra.Command {
	var out string
	var from []string
	cmd := &cobra.Command{
		Use:   "get CID",
		Short: "Fetch a file or a directory by its CID, through the local node",
		Long: `get writes a file or directory out of the local node's store. With --from, the
node first fetches what it lacks from those peers, every block checked against its
CID, resuming where an earlier fetch stopped.`,
		Example: "  cuivre data get bafybei... -o results\n  cuivre data get bafybei... --from 12D3KooW... -o results",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := cid.Decode(args[0])
			if err != nil {
				return fmt.Errorf("%q is not a CID: %w", args[0], err)
			}
			if out == "" {
				out = root.String()
			}
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("%s exists: give another path with -o", out)
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			st, done, err := tempStore()
			if err != nil {
				return err
			}
			defer done()
			route := "/v1/data/" + root.String()
			if len(from) > 0 {
				route += "?" + url.Values{"from": from}.Encode()
			}
			return get(cmd.Context(), c, st, root, route, out, cmd.ErrOrStderr(), 0)
		},
	}
	addDataDir(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write it (default: the CID, in the current directory)")
	cmd.Flags().StringSliceVar(&from, "from", nil, "peer IDs to fetch it from first (repeatable)")
	return cmd
}

// upload adds a file or directory to the daemon's store and returns its
// root. The DAG is built here, in a store of its own, and travels to the
// daemon as a CAR: the daemon reads no path of ours.
func upload(ctx context.Context, c *api.Client, path string, public bool, errOut io.Writer) (cid.Cid, error) {
	st, done, err := tempStore()
	if err != nil {
		return cid.Undef, err
	}
	defer done()
	root, err := st.AddPath(ctx, path)
	if err != nil {
		return cid.Undef, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(st.ExportCAR(ctx, root, pw)) }()
	prog := newProgress(errOut, "add "+path, 0)
	var resp api.DataResponse
	route := "/v1/data"
	if public {
		route += "?public=1" // any peer may fetch it
	}
	err = c.Upload(route, api.CARType, prog.Reader(pr), &resp)
	prog.Stop()
	pr.CloseWithError(err)
	if err != nil {
		return cid.Undef, err
	}
	if resp.CID != root.String() {
		return cid.Undef, fmt.Errorf("the daemon kept %s, not %s", resp.CID, root)
	}
	return root, nil
}

// tempStore opens a data store in a new temporary folder, and returns the
// function that closes and removes it.
func tempStore() (*data.Store, func(), error) {
	tmp, err := os.MkdirTemp("", "cuivre-data-")
	if err != nil {
		return nil, nil, err
	}
	st, err := data.Open(filepath.Join(tmp, "blocks"))
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	return st, func() { st.Close(); os.RemoveAll(tmp) }, nil
}

// get streams root's DAG from the daemon's API route into st, every block
// checked against its CID on the way, and writes it out to path. On a
// terminal errOut shows the progress, out of total bytes if known.
func get(ctx context.Context, c *api.Client, st *data.Store, root cid.Cid, route, path string, errOut io.Writer, total uint64) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(c.Stream(route, pw)) }()
	prog := newProgress(errOut, "get "+shortCID(root), total)
	got, err := st.ImportCAR(ctx, prog.Reader(pr), 1<<62)
	prog.Stop()
	pr.CloseWithError(err)
	if err != nil {
		return err
	}
	if !got.Equals(root) {
		return fmt.Errorf("the daemon sent %s, not %s", got, root)
	}
	return st.Get(ctx, root, path)
}

// shortCID is a CID cut for a progress line: its last 8 characters.
func shortCID(c cid.Cid) string {
	s := c.String()
	return "..." + s[max(len(s)-8, 0):]
}
