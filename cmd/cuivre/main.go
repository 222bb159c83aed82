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
		os.Exit(exitCode(err))
	}
}

// exitCode is the process's exit code for what a command returned: 0 for
// nil, an exitError's own, else 1.
func exitCode(err error) int {
	var e *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.code
	}
	return 1
}
