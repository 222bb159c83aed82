package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/conformance"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/exec/exectest"
)

// knownFailures are the checks our provider fails today, each for a
// deviation from SPEC.md being fixed (issue 15). Remove an entry when its fix
// merges: the test fails if a check listed here passes, so the list stays
// true.
var knownFailures = map[string]string{
	// SPEC 9 (found by the kit, not in issue 15): a lease whose module
	// fetch outlasts Lease.expires_at_ms ends FAILED (CODE_INTERNAL, the
	// fetch's own deadline) rather than EXPIRED at its expiry.
	"state.expired": "9 FETCHING past expires_at_ms is not EXPIRED",
}

// flakyKnownFailures fail in some runs only. They may pass or fail; no
// other check may.
var flakyKnownFailures = map[string]string{
	// SPEC 6.2 and 6.3 (found by the kit): in some runs a watch of epoch 1
	// opened after epoch 2 was accepted streams epoch 1's run rather than
	// refusing CODE_STALE_EPOCH.
	"lease.stale-epoch": "6.2 a higher epoch does not always fence the held one",
	// SPEC 6.2 (found by the kit): a cancel of a lease still fetching its
	// module (the kit holds the fetch) may end it FAILED with CODE_INTERNAL,
	// the fetch's own deadline, rather than CANCELLED.
	"cancel.live":   "6.2 a cancel during the module fetch ends FAILED, not CANCELLED",
	"result.fields": "6.3 the same: the Result says FAILED where the run was cancelled",
}

// TestConformanceProvider runs the conformance kit's provider suite against
// a provider of a devnet, through the wire only.
//
// It runs only with CUIVRE_CONFORMANCE=1 (`make conformance`) while our
// provider still fails checks (the lists above) and the kit's DHT checks
// do not run against a devnet: kept out of `make test` until both are
// settled, so that make test stays a test that only fails for a reason.
func TestConformanceProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	if os.Getenv("CUIVRE_CONFORMANCE") == "" {
		t.Skip("set CUIVRE_CONFORMANCE=1 (make conformance): some checks are flaky against the devnet yet")
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
	rep, err := conformance.RunProvider(ctx, conformance.ProviderOptions{Target: d.Providers[0].AddrInfo(), Module: mod, NoDHT: true})
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	var unexpected, fixed []string
	for _, r := range rep {
		_, known := knownFailures[r.ID]
		_, flaky := flakyKnownFailures[r.ID]
		switch {
		case r.Outcome == conformance.Fail && !known && !flaky:
			unexpected = append(unexpected, r.ID+": "+r.Seen)
		case r.Outcome != conformance.Fail && known:
			fixed = append(fixed, r.ID+" ("+knownFailures[r.ID]+") now "+r.Outcome.String())
		}
	}
	if len(unexpected) > 0 {
		t.Errorf("checks failed:\n%s", strings.Join(unexpected, "\n"))
	}
	if len(fixed) > 0 {
		t.Errorf("known failures no longer fail: remove them from knownFailures:\n%s", strings.Join(fixed, "\n"))
	}
	// Every check of the catalogue ran: none was skipped. NoDHT: the kit's
	// DHT client does not yet find the devnet provider's capacity record
	// (GetValue: routing: not found), a bug of the kit left open; its four
	// DHT checks, and offer.insufficient which is sized from the record, skip.
	var skipped []string
	for _, r := range rep {
		if r.Outcome == conformance.Skip && !slices.Contains([]string{"capacity.record", "capacity.signer", "facet.keys", "facet.one-shard", "offer.insufficient"}, r.ID) {
			skipped = append(skipped, r.ID+": "+r.Seen)
		}
	}
	if diff := cmp.Diff([]string(nil), skipped); diff != "" {
		t.Errorf("checks skipped (-want +got):\n%s", diff)
	}
}
