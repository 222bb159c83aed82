package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/requester"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/config"
)

func newJobOffersCmd() *cobra.Command {
	var output format
	cmd := &cobra.Command{
		Use:   "offers JOB.yaml|-",
		Short: "Ask the market for a job without placing it: who would run it, at what price, who refuses and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := readSpec(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			c, env, _, err := signJob(cmd.Context(), src, cmd.ErrOrStderr(), 0)
			if err != nil {
				return err
			}
			var quotes []requester.QuoteView
			if err := c.Do("POST", "/v1/offers", api.SubmitRequest{Job: env}, &quotes); err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), output, quotes, func(tw *tabwriter.Writer, wide bool) {
				fmt.Fprintln(tw, "PROVIDER\tPRICE\tLOAD AFTER\tREFUSAL")
				for _, q := range quotes {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", peerID(q.Provider, wide), price(q.Price), permille(q), orNone(q.Refusal))
				}
			})
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

// permille is the provider's load once this job's offer is counted: what
// its price was set at.
func permille(q requester.QuoteView) string {
	if q.Refusal != "" {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", float64(q.Load)/10)
}

func newNodeListCmd() *cobra.Command {
	var output format
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the providers the local node knows, from their signed capacity records",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var ps []api.ProviderView
			if err := c.Get("/v1/providers", &ps); err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), output, ps, func(tw *tabwriter.Writer, wide bool) {
				fmt.Fprint(tw, "PROVIDER\tREGION\tJURISDICTION\tOPERATOR\tFREE CPU\tFREE MEMORY\tVCPU/H\tGIB/H")
				if wide {
					fmt.Fprint(tw, "\tCPU\tMEMORY\tFREE SCRATCH\tRECORD AGE\tLABELS")
				}
				fmt.Fprintln(tw)
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", peerID(p.ID, wide), orNone(p.Labels["region"]), orNone(p.Labels["jurisdiction"]),
						orNone(p.Labels["operator"]), vcpu(p.Free.CPUMillis), humanBytes(p.Free.MemoryBytes), price(p.CPUPerHour), price(p.MemPerHour))
					if wide {
						fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s", vcpu(p.Total.CPUMillis), humanBytes(p.Total.MemoryBytes), humanBytes(p.Free.ScratchBytes),
							(time.Duration(p.RecordAgeMs) * time.Millisecond).Round(time.Second))
						var kv []string
						for k, v := range p.Labels {
							kv = append(kv, k+"="+v)
						}
						sort.Strings(kv)
						fmt.Fprintf(tw, "\t%s", strings.Join(kv, ","))
					}
					fmt.Fprintln(tw)
				}
			})
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Show the key jobs are signed with: the data dir's identity",
		Long: `key prints the peer ID of the data dir's identity key, which signs the jobs
this node submits (the customer key) and everything the node itself signs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := resolveDir()
			if err != nil {
				return err
			}
			k, err := config.LoadIdentity(dir)
			if err != nil {
				return err
			}
			id, err := peer.IDFromPrivateKey(k)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", id)
			return nil
		},
	}
	addDataDir(cmd)
	return cmd
}
