// Command cuivre is the one binary of cuivre: the daemon, the customer CLI and
// the simulator, as subcommands. It is thin: it parses flags and calls packages.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "cuivre:", err)
		var e *exitError
		if errors.As(err, &e) {
			os.Exit(e.code)
		}
		os.Exit(1)
	}
}
