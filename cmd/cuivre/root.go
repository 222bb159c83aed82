package main

import (
	"fmt"

	"github.com/cuivre/cuivre/protocol/specyaml"
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
	root.AddCommand(newVersionCmd(), newJobCmd(), newDataCmd(), newInitCmd(), newDaemonCmd(), newNodeCmd(), newKeyCmd(), newDemoCmd(), newDevnetCmd(), newSimCmd(), newBenchCmd(), newChaosCmd(), newConformanceCmd(), newUICmd(), newBillingCmd(), newWholesaleCmd(),
		newIDCmd(), newPeersCmd(), newWasmCmd())
	addAPIFlags(root)
	root.Version = version
	root.SetVersionTemplate(versionText())
	strict(root)
	return root
}

// strict makes every command group, the root too, refuse a subcommand it
// does not have, with exit code 1 and the name it comes close to. Left to
// cobra, a group under the root prints its help and exits 0, and a script's
// typo passes for success. A group given no argument prints its help, or
// runs, as bench does.
func strict(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strict(sub)
	}
	if !cmd.HasSubCommands() {
		return
	}
	// A group's arguments can only name its subcommands: cobra gives it
	// those it could not match.
	cmd.Args = knownSubcommand
	if cmd.Run == nil && cmd.RunE == nil {
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
}

// knownSubcommand is the Args of a command group: an argument left over is a
// subcommand it does not have.
func knownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return fmt.Errorf("unknown command %q for %q%s", args[0], cmd.CommandPath(), specyaml.Suggest(args[0], names, "its commands are"))
}
