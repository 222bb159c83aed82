package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/devnet"
)

func newDevnetCmd() *cobra.Command {
	var n int
	var dir, profiles string
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run N real providers and a requester in this process, on loopback",
		Long: `devnet starts a federation of real nodes in one process (QUIC on loopback, the
private DHT, wazero, a bbolt store each) with varied regions, jurisdictions,
operators, prices and capacities (--profiles FILE, see
examples/devnet/profiles.yaml), and serves the requester's local API from
the data dir, so that another terminal can use it:

  CUIVRE_DIR=<dir> cuivre job run examples/jobs/hello.yaml

It prints the providers' bootstrap multiaddrs (each ending in /p2p/<peer ID>)
and writes them, one a line, to <dir>/bootstrap.txt: a node on this machine,
of cuivre or of another implementation of SPEC.md, joins the devnet's DHT
(protocol /cuivre/kad/1.0.0) through any of them.

It runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if dir == "" {
				d, err := os.MkdirTemp("", "cuivre-devnet")
				if err != nil {
					return err
				}
				dir = d
			}
			o := devnet.Options{N: n, Dir: dir}
			if profiles != "" {
				ps, err := devnet.LoadProfiles(profiles)
				if err != nil {
					return err
				}
				o.Profiles = ps
			}
			d, err := devnet.Start(ctx, o)
			if err != nil {
				return err
			}
			defer d.Close()
			api, err := d.Serve()
			if err != nil {
				return err
			}
			defer api.Close(cmd.Context())
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tPEER\tPROFILE\tREGION\tOPERATOR\tCPU\tPRICE/VCPU-H")
			for i, p := range d.Providers {
				pr := d.Profiles[i]
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, shortPeer(p.ID().String()), pr.Name, pr.Region, pr.Operator, vcpu(pr.CPUMillis),
					money(pr.CPUPrice*3600, "EUR"))
			}
			tw.Flush()
			boot, err := d.BootstrapAddrs()
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\nbootstrap multiaddrs (also in %s):\n", filepath.Join(dir, devnet.BootstrapFile))
			for _, a := range boot {
				fmt.Fprintf(out, "  %s\n", a)
			}
			fmt.Fprintf(out, "\nrequester %s, API %s\nIn another terminal:\n  CUIVRE_DIR=%s cuivre job run examples/jobs/hello.yaml\n  CUIVRE_DIR=%s cuivre node list\n",
				d.Requester.ID(), api.Addr(), dir, dir)
			<-ctx.Done()
			fmt.Fprintln(out, "stopping")
			return nil
		},
	}
	cmd.Flags().IntVarP(&n, "nodes", "n", len(devnet.Profiles), "providers to start")
	cmd.Flags().StringVar(&dir, "data-dir", "", "where the nodes keep their data (default: a new temporary dir)")
	cmd.Flags().StringVar(&profiles, "profiles", "", "a profile file, like examples/devnet/profiles.yaml (default: the built-in mix, the same)")
	return cmd
}
