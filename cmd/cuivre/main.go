// Command cuivre is the one binary of cuivre: the daemon, the customer CLI and
// the simulator, as subcommands. It is thin: it parses flags and calls packages.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "cuivre:", err)
		os.Exit(1)
	}
}
