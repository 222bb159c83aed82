package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/conformance"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/exec/exectest"
)

// TestConformanceProvider runs the conformance kit's provider suite against
// a provider of a devnet, through the wire only: every check of the catalogue
// runs, and passes.
func TestConformanceProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Options{N: 1, Dir: t.TempDir(), CacheDir: exectest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mod, err := os.ReadFile("../../examples/wasm/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := conformance.RunProvider(ctx, conformance.ProviderOptions{Target: d.Providers[0].AddrInfo(), Module: mod})
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	var notPassed []string
	for _, r := range rep {
		if r.Outcome != conformance.Pass {
			notPassed = append(notPassed, r.Outcome.String()+" "+r.ID+": "+r.Seen)
		}
	}
	if len(notPassed) > 0 || len(rep) != len(conformance.ProviderChecks) {
		t.Errorf("%d of %d checks passed; the others:\n%s", rep.Count(conformance.Pass), len(conformance.ProviderChecks), strings.Join(notPassed, "\n"))
	}
}
