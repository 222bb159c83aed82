package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "cuivre",
		Short: "An open federation mesh of micro-clouds",
		Long: `cuivre federates small clouds: providers run a daemon and sell capacity,
customers place WebAssembly jobs on them through signed offers and leases,
researchers simulate the whole federation with the same scheduler.

See SPEC.md for the wire protocol.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newBillingCmd())
	root.AddCommand(newVersionCmd(), newJobCmd(), newDataCmd(), newInitCmd(), newDaemonCmd(), newNodeCmd(), newKeyCmd(), newDemoCmd(), newDevnetCmd(), newSimCmd(), newBenchCmd(), newChaosCmd(), newConformanceCmd(),
		apiGetCmd("id", "The local node's peer ID and addresses", "/v1/id"),
		apiGetCmd("peers", "The peers the local node is connected to", "/v1/peers"))
	return root
}
