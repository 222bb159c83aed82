package main

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// cuivre returns a command running this test binary as the cuivre binary
// (see TestMain), so that no test builds one.
func cuivre(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), testMainEnv+"=1")
	return cmd
}

// daemon is a `cuivre daemon` in its own process.
type daemon struct {
	dir string
	cmd *exec.Cmd
	id  api.Identity
}

// startDaemon starts a daemon on dir, whose executor compiles through the
// tests' shared compilation cache; set are more "key=value" settings, which
// win over the defaults here.
func startDaemon(t *testing.T, dir string, bootstrap string, set ...string) *daemon {
	t.Helper()
	os.Remove(filepath.Join(dir, "api"))
	cmd := cuivre(t, daemonArgs(t, dir, bootstrap, set...)...)
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{dir: dir, cmd: cmd}
	t.Cleanup(func() { d.cmd.Process.Kill(); d.cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := api.Dial(dir)
		if err == nil && c.Get("/v1/id", &d.id) == nil {
			return d
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
			t.Fatalf("daemon in %s did not come up:\n%s", dir, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// daemonArgs are the arguments of a `cuivre daemon` on dir as startDaemon
// runs it: loopback, small, on the tests' compilation cache; set are more
// "key=value" settings.
func daemonArgs(t *testing.T, dir string, bootstrap string, set ...string) []string {
	t.Helper()
	args := []string{"daemon", "--data-dir", dir, "--set", "executor.cache_dir=" + exectest.CacheDir(t),
		"--set", "listen=/ip4/127.0.0.1/udp/0/quic-v1", "--set", "api.listen=127.0.0.1:0",
		"--set", "capacity.auto=false", "--set", "capacity.cpu=4", "--set", "capacity.memory=4Gi", "--set", "capacity.scratch=1Gi",
		"--set", "labels.jurisdiction=fr", "--set", "labels.region=fr-par"}
	if bootstrap != "" {
		args = append(args, "--set", "bootstrap="+bootstrap)
	}
	for _, kv := range set {
		args = append(args, "--set", kv)
	}
	return args
}

func (d *daemon) status(t *testing.T) api.NodeStatus {
	t.Helper()
	c, err := api.Dial(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	var st api.NodeStatus
	if err := c.Get("/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// twoDaemons starts two daemons, the second bootstrapping from the first;
// in -short mode it skips the test.
func twoDaemons(t *testing.T) (a, b *daemon) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes")
	}
	a = startDaemon(t, initDir(t), "")
	return a, startDaemon(t, initDir(t), a.id.Addrs[0])
}

func initDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	if out, err := cuivre(t, "init", "--data-dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	return dir
}

// TestTwoDaemons: two daemons in separate processes, from `cuivre init` data
// dirs, B bootstrapping from A. A third node (this test, standing in for a
// requester until the requester API exists) bootstraps from A only, finds B
// in the DHT under its facet key, leases the hello module on B and gets its
// output and a signed receipt. Then B is killed with SIGKILL mid-lease and
// restarted: the lease is in its store, reported failed, and its capacity is
// whole again.
func TestTwoDaemons(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	a := startDaemon(t, initDir(t), "")
	bDir := initDir(t)
	b := startDaemon(t, bDir, a.id.Addrs[0])

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	aInfo, err := peer.AddrInfoFromString(a.id.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	req, key := requesterNode(t, *aInfo)
	if err := req.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	bID, err := peer.Decode(b.id.ID)
	if err != nil {
		t.Fatal(err)
	}
	fk, _ := protocol.ProviderKey(protocol.FacetJurisdiction, "fr", string(bID))
	var found bool
	for !found && ctx.Err() == nil {
		for _, p := range req.FindProviders(ctx, fk, 8) {
			found = found || p == bID
		}
		if !found {
			time.Sleep(200 * time.Millisecond) // B re-announces once it has peers
		}
	}
	if !found {
		t.Fatalf("B not found under %s", fk)
	}
	if st := a.status(t); st.DHTPeers < 1 {
		t.Fatalf("A has no DHT peer: %+v", st)
	}

	res, stdout := lease(t, ctx, req, key, bID, exectest.Module(t, "hello"), []string{"--name", "B"}, 30*time.Second, nil)
	if res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || stdout != "hello, B! (0 lines on stdin)\n" {
		t.Fatalf("result %v, stdout %q", res.State, stdout)
	}
	if r, err := record.OpenReceipt(res.Receipt); err != nil || peer.ID(r.Provider) != bID {
		t.Fatalf("receipt: %v", err)
	}

	// kill -9 with a lease running.
	running := make(chan string, 1)
	go lease(t, ctx, req, key, bID, exectest.Loop(), nil, time.Hour, running)
	leaseID := <-running
	if got := b.status(t); got.Leases != 1 {
		t.Fatalf("B holds %d leases, want 1", got.Leases)
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	b.cmd.Wait()
	b = startDaemon(t, bDir, a.id.Addrs[0])
	if got := b.status(t); got.Leases != 0 || got.Committed.CPUMillis != 0 || got.Free.CPUMillis != got.Capacity.CPUMillis {
		t.Fatalf("after restart B counts %+v", got)
	}
	bInfo, err := peer.AddrInfoFromString(b.id.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	req.Host().Network().ClosePeer(bID) // the old process's connection is dead
	if err := req.Host().Connect(ctx, *bInfo); err != nil {
		t.Fatal(err)
	}
	after, err := requester.Watch(ctx, req.Transport(), string(bID), &pb.WatchRequest{LeaseId: []byte(leaseID), Epoch: 1}, nil)
	if err != nil || after.State != pb.LeaseState_LEASE_STATE_FAILED || !strings.Contains(after.Error.GetMessage(), "restarted") {
		t.Fatalf("the killed lease reads %v (%v), want failed: provider restarted", after, err)
	}
}

// lease places a module on a provider by hand, as a requester does (SPEC
// 6.1-6.3), and returns the result and stdout. If running is not nil, the
// lease ID is sent on it once the run is RUNNING.
func lease(t *testing.T, ctx context.Context, req *node.Node, key crypto.PrivKey, p peer.ID, module []byte, args []string, timeout time.Duration, running chan<- string) (*pb.Result, string) {
	return leaseOf(t, ctx, req, key, p, module, args, &pb.Resources{CpuMillis: 500, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20}, timeout, running, nil, nil)
}

// leaseOf is lease with the resources given, calling status (if not nil)
// with each Status watched; with a grant (a sealed SliceGrant), on the
// slice it grants req (SPEC 6.7).
func leaseOf(t *testing.T, ctx context.Context, req *node.Node, key crypto.PrivKey, p peer.ID, module []byte, args []string, res *pb.Resources, timeout time.Duration, running chan<- string, status func(*pb.Status), grant []byte) (*pb.Result, string) {
	mod, err := req.AddModule(module)
	if err != nil {
		t.Error(err)
		return nil, ""
	}
	job := &pb.Job{Version: 1, Name: "hello", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task:  &pb.Task{Engine: "wasm", ModuleCid: mod.Bytes(), Args: args, Resources: res, TimeoutMs: uint64(timeout / time.Millisecond)},
		Nonce: random(protocol.NonceSize)}
	signed, err := record.SealJob(key, job)
	if err != nil {
		t.Error(err)
		return nil, ""
	}
	offer, _, err := req.RequestOffer(ctx, p, scheduler.Request{
		Nonce: string(random(protocol.NonceSize)), JobCID: string(signed.CID.Bytes()), Executor: "wasm",
		Resources: scheduler.Resources{CPUMillis: res.CpuMillis, MemoryBytes: res.MemoryBytes, ScratchBytes: res.ScratchBytes}, Timeout: timeout,
		ExpiresAt: time.Now().Add(5 * time.Second), Grant: string(grant)})
	if err != nil {
		t.Errorf("offer: %v", err)
		return nil, ""
	}
	id := random(protocol.LeaseIDSize)
	env, err := record.Seal(key, &pb.Lease{LeaseId: id, Provider: []byte(p), Requester: []byte(req.ID()),
		OfferNonce: []byte(offer.Nonce), JobCid: signed.CID.Bytes(), Epoch: 1, Nonce: random(protocol.NonceSize),
		ExpiresAtMs: protocol.UnixMs(time.Now().Add(30 * time.Second)), Job: signed.Envelope, HeartbeatMs: 200})
	if err != nil {
		t.Error(err)
		return nil, ""
	}
	if err := requester.SendLease(ctx, req.Transport(), string(p), env); err != nil {
		t.Errorf("lease: %v", err)
		return nil, ""
	}
	var stdout strings.Builder
	r, err := requester.Watch(ctx, req.Transport(), string(p), &pb.WatchRequest{LeaseId: id, Epoch: 1}, func(ev *pb.WatchEvent) {
		if l := ev.GetLog(); l != nil && l.Stream == pb.LogStream_LOG_STREAM_STDOUT {
			stdout.Write(l.Data)
		}
		if s := ev.GetStatus(); s != nil && status != nil {
			status(s)
		}
		if s := ev.GetStatus(); s != nil && s.State == pb.LeaseState_LEASE_STATE_RUNNING && running != nil {
			running <- string(id)
			running = nil
		}
	})
	if err != nil && running == nil {
		t.Logf("watch ended without a result: %v", err)
		return nil, stdout.String() // the provider was killed under this watch
	}
	if err != nil {
		t.Errorf("watch: %v", err)
	}
	return r, stdout.String()
}

// requesterNode starts a node in this process that only places (a store for
// its modules, no executor), bootstrapping from boot; it closes with the test.
func requesterNode(t *testing.T, boot peer.AddrInfo) (*node.Node, crypto.PrivKey) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "req.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	req, err := node.New(node.Options{Identity: key, Store: st, Bootstrap: []peer.AddrInfo{boot},
		Market: scheduler.MarketConfig{Capacity: scheduler.Resources{CPUMillis: 1, MemoryBytes: 1 << 20}, Executors: []string{"wasm"},
			Pricing: scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { req.Close() })
	return req, key
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
