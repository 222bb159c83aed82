package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newUICmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ui",
		Short: "Print the link to the local node's operator page",
		Long: `ui prints the link to the operator's page the daemon serves on its API
address: the node's identity and reachability, the capacity it sells and what
is used, the leases running with their output, its earnings over time, the
jobs it placed with who was asked and why the winner won, and the providers it
knows with their labels and prices.

The link carries the API's token in its fragment (after #), which the browser
keeps for the tab and never sends to a server; the token changes each time
the daemon starts. The API listens on loopback only: from another machine,
forward the port over SSH (ssh -L 4243:127.0.0.1:4243 HOST) and open the link
there.`,
		Example: "  cuivre ui\n  xdg-open \"$(cuivre ui)\"",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.UIURL())
			return nil
		},
	}
}
