package main

import (
	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/demo"
)

func newDemoCmd() *cobra.Command {
	var examples string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a federation of 8 providers on loopback and place the example jobs",
		Long: `demo starts eight real providers and a requester in this process, on loopback
(QUIC, the private DHT, wazero, bbolt in a temporary directory), places the
example jobs and prints where they ran, at what price and how fast, shows a job
refused with its reasons, and kills a provider under a running job to show it
rescheduled. It takes well under a minute and leaves nothing behind.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), demo.Options{Examples: examples, Out: cmd.OutOrStdout()})
		},
	}
	cmd.Flags().StringVar(&examples, "examples", "examples", "the examples directory (jobs/ and wasm/)")
	return cmd
}
