package node

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// The real-network smokes: real libp2p hosts and DHT on loopback, real
// wazero running the example Go modules, real bbolt files. Behaviour is
// tested on the in-memory transport (node/requester, node/provider); these
// prove the wiring: the whole path, and a requester restart. A provider
// killed and its job re-placed is the demo's (node/demo, TestDemo), which
// runs this very wiring.
// They wait on events, with deadlines far beyond what a loaded machine needs.

func openStore(tb testing.TB) *store.Store {
	tb.Helper()
	s, err := store.Open(filepath.Join(tb.TempDir(), "state.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openData opens a data store in a temporary dir: a provider keeps its
// runs' outputs there, and without one makes no offers (SPEC 6.6).
func openData(tb testing.TB) *data.Store {
	tb.Helper()
	d, err := data.Open(filepath.Join(tb.TempDir(), "data"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// federation starts providers (real stores, one shared executor) in the
// given regions, each of its own operator, and a requester, all on loopback,
// bootstrapped from the first provider, advertised.
func federation(tb testing.TB, regions []string) (req *Node, provs []*Node) {
	tb.Helper()
	ctx := context.Background()
	ex := exectest.NewExecutor(tb, exec.Config{})
	var boot []peer.AddrInfo
	for i, region := range regions {
		m := testMarket()
		m.Labels = scheduler.NewLabels(scheduler.Label{Key: "jurisdiction", Value: region[:2]}, scheduler.Label{Key: "region", Value: region},
			scheduler.Label{Key: "operator", Value: "op" + string(rune('a'+i))})
		p, err := New(Options{Identity: newKey(tb), Market: m, Store: openStore(tb), Exec: ex, Data: openData(tb), Bootstrap: boot, ProvideValidity: time.Minute})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { p.Close() })
		if boot == nil {
			boot = []peer.AddrInfo{p.AddrInfo()}
		}
		provs = append(provs, p)
	}
	req, err := New(Options{Identity: newKey(tb), Market: testMarket(), Store: openStore(tb), Bootstrap: boot,
		Placement: scheduler.Config{OfferTimeout: 2 * time.Second}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { req.Close() })
	for _, n := range append(provs[1:], req) {
		if err := n.Bootstrap(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	waitFor(tb, time.Minute, "routing tables", func() bool {
		for _, n := range append(provs, req) {
			if n.RoutingTableSize() == 0 {
				return false
			}
		}
		return true
	})
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, p := range provs {
		if err := p.Advertise(actx); err != nil {
			tb.Fatal(err)
		}
	}
	return req, provs
}

// submit signs a job spec (module given as bytes) with the requester's key.
func submit(tb testing.TB, req *Node, spec string, module []byte) string {
	tb.Helper()
	s, err := jobspec.ParseJobSpecFile("job.yaml", []byte(spec))
	if err != nil {
		tb.Fatal(err)
	}
	j, err := s.Job(func(string) (cid.Cid, error) { return wire.SumCID(module), nil })
	if err != nil {
		tb.Fatal(err)
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(j.Nonce)
	sj, err := record.SealJob(req.opts.Identity, j)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := req.Submit(sj.Envelope, module, "job.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// TestWholePath: the requester finds providers in the DHT, gets offers, and
// its job lands only on a provider of its jurisdiction, which fetches the
// module by CID, runs it, streams its output and settles a countersigned
// receipt.
func TestWholePath(t *testing.T) {
	req, provs := federation(t, []string{"fr-par", "de-fra", "fr-lyo"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	key := submit(t, req, "version: 1\nname: hi\ntask:\n  module: m.wasm\n  args: [--name, req]\n  resources: {cpu: 500m, memory: 64Mi}\nconstraints:\n  - jurisdiction = de\n", exectest.Module(t, "hello"))
	v, err := req.Wait(ctx, key)
	if err != nil || v.State != "succeeded" || v.Slots[0].Provider != provs[1].ID().String() {
		t.Fatalf("job %+v, %v: want succeeded on the German provider %s", v, err, provs[1].ID())
	}
	if stdout, _, _, _, _ := req.Logs(key); string(stdout) != "hello, req! (0 lines on stdin)\n" {
		t.Fatalf("stdout %q", stdout)
	}
	waitFor(t, time.Minute, "the countersigned receipt", func() bool {
		rs, err := provs[1].opts.Store.Receipts()
		return err == nil && len(rs) == 1 && len(rs[0].Countersignature) > 0
	})
}

// TestRequesterRestart: the requester's process ends while a job runs; a new
// node on the same store and key takes the job up, watches the running lease
// again and gets the result under the same epoch.
func TestRequesterRestart(t *testing.T) {
	req, provs := federation(t, []string{"fr-par", "fr-lyo"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sieve := exectest.Module(t, "sieve")
	key := submit(t, req, "version: 1\nname: primes\ntask:\n  module: m.wasm\n  args: [--n, \"3000000\", --rounds, \"6\"]\n  resources: {cpu: 500m, memory: 64Mi, timeout: 120s}\nconstraints:\n  - jurisdiction = fr\n", sieve)
	// Wait until the module is compiled on the provider: before that it
	// fetches it from this requester, which a restart would cut.
	waitFor(t, time.Minute, "the module to be compiled", func() bool { return provs[0].opts.Exec.Has(wire.SumCID(sieve)) })
	waitFor(t, time.Minute, "the job to run", func() bool {
		v, _ := req.Job(key)
		return len(v.Slots) > 0 && v.Slots[0].State == "running"
	})
	opts := req.opts
	before, _ := req.Job(key)
	req.Close()
	opts.Listen = nil
	again, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := again.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := again.Wait(ctx, key)
	if err != nil || v.State != "succeeded" || v.Slots[0].Epoch != before.Slots[0].Epoch {
		t.Fatalf("after the requester restarted: %+v, %v (before: %+v)", v, err, before.Slots)
	}
}
