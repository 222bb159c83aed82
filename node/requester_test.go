package node

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	nodeexec "github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// federation starts n providers (real stores, one shared executor) in the
// given regions and a requester, all on loopback, bootstrapped from the first
// provider, advertising.
func federation(t *testing.T, regions []string) (req *Node, provs []*Node) {
	t.Helper()
	ctx := context.Background()
	ex, err := nodeexec.New(ctx, nodeexec.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(ctx) })
	var boot []peer.AddrInfo
	for i, region := range regions {
		m := testMarket()
		m.Labels = scheduler.NewLabels(scheduler.Label{Key: "jurisdiction", Value: region[:2]}, scheduler.Label{Key: "region", Value: region},
			scheduler.Label{Key: "operator", Value: "op" + string(rune('a'+i))})
		p, err := New(ctx, Options{Identity: newKey(t), Market: m, Store: openStore(t), Exec: ex, Bootstrap: boot, ProvideValidity: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if boot == nil {
			boot = []peer.AddrInfo{p.AddrInfo()}
		}
		provs = append(provs, p)
	}
	req, err = New(ctx, Options{Identity: newKey(t), Market: testMarket(), Store: openStore(t), Bootstrap: boot,
		Placement: scheduler.Config{OfferTimeout: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { req.Close() })
	for _, n := range append(provs[1:], req) {
		if err := n.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "routing tables", func() bool {
		for _, n := range append(provs, req) {
			if n.RoutingTableSize() == 0 {
				return false
			}
		}
		return true
	})
	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, p := range provs {
		if err := p.Advertise(actx); err != nil {
			t.Fatal(err)
		}
	}
	return req, provs
}

// submit signs a job spec (module given as bytes) with the requester's key.
func submit(t *testing.T, req *Node, spec string, module []byte) string {
	t.Helper()
	s, err := jobspec.ParseJobSpecFile("job.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(func(string) (cid.Cid, error) { return wire.SumCID(module), nil })
	if err != nil {
		t.Fatal(err)
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(j.Nonce)
	sj, err := record.SealJob(req.opts.Identity, j)
	if err != nil {
		t.Fatal(err)
	}
	key, err := req.Submit(sj.Envelope, module, "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestRequesterPlaces: the requester drives the scheduler's placement over the
// real DHT and streams: a job lands only on a provider of its jurisdiction and
// succeeds with its output; one over every price ceiling fails with the
// reasons.
func TestRequesterPlaces(t *testing.T) {
	req, provs := federation(t, []string{"fr-par", "de-fra", "fr-lyo"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hello := wasm(t, "hello")
	key := submit(t, req, "version: 1\nname: hi\ntask:\n  module: m.wasm\n  args: [--name, req]\n  resources: {cpu: 500m, memory: 64Mi}\nconstraints:\n  - jurisdiction = de\n", hello)
	v, err := req.Wait(ctx, key)
	if err != nil || v.State != "succeeded" {
		t.Fatalf("job: %+v, %v", v, err)
	}
	if v.Slots[0].Provider != provs[1].ID().String() {
		t.Fatalf("placed on %s, want the German provider %s", v.Slots[0].Provider, provs[1].ID())
	}
	stdout, _, _, _, _ := req.Logs(key)
	if string(stdout) != "hello, req! (0 lines on stdin)\n" {
		t.Fatalf("stdout %q", stdout)
	}
	// The receipt is settled behind the result.
	waitFor(t, 5*time.Second, "the countersigned receipt", func() bool {
		receipts, err := req.store.Receipts()
		return err == nil && len(receipts) == 1 && len(receipts[0].Countersignature) > 0
	})

	key = submit(t, req, "version: 1\nname: thrifty\ntask:\n  module: m.wasm\n  resources: {cpu: 500m, memory: 64Mi}\nmax_price: \"0.000000001 EUR\"\n", hello)
	v, err = req.Wait(ctx, key)
	if err != nil || v.State != "failed" || !strings.Contains(v.Reason, "price above ceiling") {
		t.Fatalf("job over every ceiling: %+v, %v", v, err)
	}
}

// TestRequesterReschedules: the provider running a job dies; its heartbeats
// stop, the placement declares the lease lost and places the job again under
// a new epoch on another provider, where it completes.
func TestRequesterReschedules(t *testing.T) {
	req, provs := federation(t, []string{"fr-par", "fr-lyo", "fr-mrs"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	key := submit(t, req, "version: 1\nname: primes\ntask:\n  module: m.wasm\n  args: [--n, \"3000000\", --rounds, \"6\"]\n  resources: {cpu: 500m, memory: 64Mi, timeout: 60s}\nconstraints:\n  - jurisdiction = fr\n", wasm(t, "sieve"))
	var first string
	waitFor(t, 30*time.Second, "the job to run", func() bool {
		v, _ := req.Job(key)
		if len(v.Slots) > 0 && v.Slots[0].State == "running" {
			first = v.Slots[0].Provider
			return true
		}
		return false
	})
	for _, p := range provs {
		if p.ID().String() == first {
			p.Close()
		}
	}
	v, err := req.Wait(ctx, key)
	if err != nil || v.State != "succeeded" || v.Slots[0].Provider == first || v.Slots[0].Epoch != 2 {
		t.Fatalf("after the provider died: %+v, %v", v, err)
	}
	if stdout, _, _, _, _ := req.Logs(key); !strings.Contains(string(stdout), "216816 primes below 3000000") {
		t.Fatalf("stdout %q", stdout)
	}
}

// TestRequesterRestart: the requester's process ends while a job runs; a new
// node on the same data (store and key) takes the job up from its store,
// watches the running lease again and gets the result.
func TestRequesterRestart(t *testing.T) {
	req, provs := federation(t, []string{"fr-par", "fr-lyo"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	key := submit(t, req, "version: 1\nname: primes\ntask:\n  module: m.wasm\n  args: [--n, \"3000000\", --rounds, \"6\"]\n  resources: {cpu: 500m, memory: 64Mi, timeout: 60s}\nconstraints:\n  - jurisdiction = fr\n", wasm(t, "sieve"))
	// Wait until the provider runs it: before that it fetches the module
	// from this requester, which a restart would cut.
	waitFor(t, 30*time.Second, "the job to run", func() bool {
		for _, p := range provs {
			p.runsMu.Lock()
			for _, r := range p.runs {
				r.mu.Lock()
				running := r.state == pb.LeaseState_LEASE_STATE_RUNNING
				r.mu.Unlock()
				if running {
					p.runsMu.Unlock()
					return true
				}
			}
			p.runsMu.Unlock()
		}
		return false
	})
	opts := req.opts
	before, _ := req.Job(key)
	req.Close()
	opts.Listen = nil
	again, err := New(ctx, opts)
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

// TestRequesterSpread: on five providers of five operators, a job with
// count 3 spread by operator lands on three distinct operators and every
// instance succeeds.
func TestRequesterSpread(t *testing.T) {
	req, _ := federation(t, []string{"fr-par", "fr-lyo", "de-fra", "be-bru", "fr-mrs"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := submit(t, req, "version: 1\nname: fan\ncount: 3\ntask:\n  module: m.wasm\n  resources: {cpu: 100m, memory: 32Mi}\nspread:\n  - {attribute: operator, weight: 100}\n", wasm(t, "hello"))
	v, err := req.Wait(ctx, key)
	if err != nil || v.State != "succeeded" || len(v.Slots) != 3 {
		t.Fatalf("job: %+v, %v", v, err)
	}
	seen := map[string]bool{}
	for _, s := range v.Slots {
		seen[s.Provider] = true
	}
	if len(seen) != 3 {
		t.Fatalf("3 instances on %d providers: %+v", len(seen), v.Slots)
	}
}

// TestRequesterStoresResults: a finished job's record in the store carries
// each slot's result: state, exit code and the CIDs of its output and logs.
func TestRequesterStoresResults(t *testing.T) {
	req, _ := federation(t, []string{"fr-par", "fr-lyo"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := submit(t, req, "version: 1\nname: hi\ntask:\n  module: m.wasm\n  resources: {cpu: 100m, memory: 32Mi}\n", wasm(t, "hello"))
	if v, err := req.Wait(ctx, key); err != nil || v.State != "succeeded" {
		t.Fatalf("job: %+v %v", v, err)
	}
	waitFor(t, 5*time.Second, "the record", func() bool {
		jobs, _ := req.store.Jobs(nil)
		return len(jobs) == 1 && len(jobs[0].Slots) == 1 && jobs[0].Slots[0].Result != nil && jobs[0].State == scheduler.JobSucceeded
	})
	jobs, _ := req.store.Jobs(nil)
	r := jobs[0].Slots[0].Result
	stdout, _, _, _, _ := req.Logs(key)
	if r.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || r.StdoutCID != string(wire.SumCID(stdout).Bytes()) {
		t.Fatalf("stored result %+v", r)
	}
}

// TestRequesterRestartShowsFinished: after a restart, a job that ended before
// is still listed with its result and its output.
func TestRequesterRestartShowsFinished(t *testing.T) {
	req, _ := federation(t, []string{"fr-par", "fr-lyo"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := submit(t, req, "version: 1\nname: hi\ntask:\n  module: m.wasm\n  args: [--name, again]\n  resources: {cpu: 100m, memory: 32Mi}\n", wasm(t, "hello"))
	if v, err := req.Wait(ctx, key); err != nil || v.State != "succeeded" {
		t.Fatalf("job: %+v %v", v, err)
	}
	waitFor(t, 5*time.Second, "the record", func() bool {
		jobs, _ := req.store.Jobs(nil)
		return len(jobs) == 1 && jobs[0].State == scheduler.JobSucceeded && jobs[0].Slots[0].Result != nil
	})
	opts := req.opts
	req.Close()
	opts.Listen = nil
	again, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	v, ok := again.Job(key)
	stdout, _, _, done, _ := again.Logs(key)
	if !ok || v.State != "succeeded" || !done || string(stdout) != "hello, again! (0 lines on stdin)\n" {
		t.Fatalf("after restart: %+v, output %q", v, stdout)
	}
}
