package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/protocol"
)

// Set by the Makefile with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit and the protocol versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), versionText())
			return err
		},
	}
}

// versionText is what `cuivre version` and `cuivre --version` print.
func versionText() string {
	return fmt.Sprintf("cuivre %s\ncommit %s\n%s %s/%s\nprotocols %s %s %s %s %s\n",
		version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		protocol.OfferID, protocol.LeaseID, protocol.WatchID, protocol.ReceiptID, protocol.ModuleID)
}

// buildCommit is the commit the binary was built from: the Makefile's, else
// the one go build stamped, else "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
