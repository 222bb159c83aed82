package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/conformance"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
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

// TestConformanceRequester runs the conformance kit's requester suite
// against a requester of ours: a node that joins the kit's DHT only, and
// places one job there, through the wire only. Every check passes: it never
// leases the offer whose total lies, and when the slot it leased goes silent
// it cancels that epoch and leases the slot again elsewhere.
func TestConformanceRequester(t *testing.T) {
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
	var placed error
	rep, err := conformance.RunRequester(ctx, conformance.RequesterOptions{Ready: func(boot peer.AddrInfo) {
		req, err := d.NewRequesterAt(ctx, []peer.AddrInfo{boot})
		if err != nil {
			placed = err
			cancel()
			return
		}
		spec := "version: 1\nname: conformance\ntask:\n  module: hello.wasm\n  resources: {cpu: 100m, memory: 32Mi}\n"
		js, err := jobspec.ParseJobSpecFile("job.yaml", []byte(spec))
		if err != nil {
			placed = err
			cancel()
			return
		}
		j, err := js.Job(func(string) (cid.Cid, error) { return wire.SumCID(mod), nil })
		if err == nil {
			j.Nonce = make([]byte, protocol.NonceSize)
			rand.Read(j.Nonce)
			var sj *record.SignedJob
			if sj, err = record.SealJob(req.Identity(), j); err == nil {
				_, err = req.Submit(sj.Envelope, mod, "job.yaml")
			}
		}
		if err != nil {
			placed = err
			cancel()
		}
	}})
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())
	if placed != nil {
		t.Fatalf("place the job: %v", placed)
	}
	if err != nil {
		t.Fatal(err)
	}
	var notPassed []string
	for _, r := range rep {
		if r.Outcome != conformance.Pass {
			notPassed = append(notPassed, r.Outcome.String()+" "+r.ID+": "+r.Seen)
		}
	}
	if len(notPassed) > 0 || len(rep) != len(conformance.RequesterChecks) {
		t.Errorf("%d of %d checks passed; the others:\n%s", rep.Count(conformance.Pass), len(conformance.RequesterChecks), strings.Join(notPassed, "\n"))
	}
}
