package node

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"

	nodeexec "github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

var (
	wasmOnce sync.Once
	wasmDir  string
	wasmErr  error
)

// wasm builds an example workload with the Go toolchain (GOOS=wasip1), once
// per test binary.
func wasm(t *testing.T, name string) []byte {
	t.Helper()
	wasmOnce.Do(func() { wasmDir, wasmErr = os.MkdirTemp("", "cuivre-wasm") })
	if wasmErr != nil {
		t.Fatal(wasmErr)
	}
	out := filepath.Join(wasmDir, name+".wasm")
	if _, err := os.Stat(out); err != nil {
		cmd := exec.Command("go", "build", "-o", out, "../examples/wasm/"+name)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, b)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newProvider starts a provider with a real bbolt store and a real wazero
// executor, and a requester bootstrapped from it with a store of its own (to
// serve modules).
func newProviderPair(t *testing.T) (prov, req *Node, provStore *store.Store) {
	t.Helper()
	ctx := context.Background()
	provStore = openStore(t)
	ex, err := nodeexec.New(ctx, nodeexec.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close(ctx) })
	prov, err = New(ctx, Options{Identity: newKey(t), Market: testMarket(), Store: provStore, Exec: ex})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	req, err = New(ctx, Options{Identity: newKey(t), Market: testMarket(), Store: openStore(t), Bootstrap: []peer.AddrInfo{prov.AddrInfo()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { req.Close() })
	if err := req.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	return prov, req, provStore
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// placeOn runs the requester's side of one placement by hand: sign the job,
// ask for an offer, lease it, and return what a watch gets.
func placeOn(t *testing.T, ctx context.Context, req, prov *Node, module []byte, args []string, timeout time.Duration) (*pb.Result, string, []byte) {
	t.Helper()
	mod, err := req.AddModule(module)
	if err != nil {
		t.Fatal(err)
	}
	job := &pb.Job{
		Version: 1, Name: "hello", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task: &pb.Task{Engine: "wasm", ModuleCid: mod.Bytes(), Args: args,
			Env:       []*pb.EnvVar{{Name: "GREETING", Value: "bonjour"}},
			Stdin:     []byte("a\nb\n"),
			Resources: &pb.Resources{CpuMillis: 500, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20}, TimeoutMs: uint64(timeout / time.Millisecond)},
		Nonce: make([]byte, protocol.NonceSize),
	}
	rand.Read(job.Nonce)
	signed, err := record.SealJob(req.opts.Identity, job)
	if err != nil {
		t.Fatal(err)
	}
	r := request(t, 64<<20)
	r.JobCID = string(signed.CID.Bytes())
	r.Resources = scheduler.Resources{CPUMillis: 500, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20}
	r.Timeout = timeout
	offer, _, err := req.RequestOffer(ctx, prov.ID(), r)
	if err != nil {
		t.Fatalf("offer: %v", err)
	}
	leaseID := make([]byte, protocol.LeaseIDSize)
	rand.Read(leaseID)
	lease := leaseToPB(scheduler.Lease{
		ID: string(leaseID), Provider: string(prov.ID()), Requester: string(req.ID()), OfferNonce: offer.Nonce,
		JobCID: r.JobCID, Epoch: 1, ExpiresAt: time.Now().Add(30 * time.Second),
	}, nonce(t), signed.Envelope, 200*time.Millisecond)
	env, err := record.Seal(req.opts.Identity, lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.SendLease(ctx, prov.ID(), env); err != nil {
		t.Fatalf("lease: %v", err)
	}
	var stdout []byte
	var statuses []pb.LeaseState
	res, err := req.Watch(ctx, prov.ID(), &pb.WatchRequest{LeaseId: leaseID, Epoch: 1}, func(ev *pb.WatchEvent) {
		if l := ev.GetLog(); l != nil && l.Stream == pb.LogStream_LOG_STREAM_STDOUT {
			stdout = append(stdout, l.Data...)
		}
		if s := ev.GetStatus(); s != nil {
			statuses = append(statuses, s.State)
		}
	})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return res, string(stdout), env
}

// TestLeaseRunsWasm: the whole provider path on loopback with real libp2p,
// real wazero and real bbolt files: offer, lease, the module fetched from the
// requester by CID and verified, the run, its logs streamed, its result, and
// a signed receipt the requester countersigns and hands back.
func TestLeaseRunsWasm(t *testing.T) {
	prov, req, provStore := newProviderPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, stdout, _ := placeOn(t, ctx, req, prov, wasm(t, "hello"), []string{"--name", "monde"}, 30*time.Second)
	if res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || res.ExitCode != 0 {
		t.Fatalf("result %v exit %d: %v", res.State, res.ExitCode, res.Error)
	}
	if want := "bonjour, monde! (2 lines on stdin)\n"; stdout != want {
		t.Fatalf("stdout %q, want %q", stdout, want)
	}
	if got := wire.SumCID([]byte(stdout)).Bytes(); string(got) != string(res.StdoutCid) {
		t.Errorf("stdout CID does not match the streamed logs")
	}
	receipt, err := record.OpenReceipt(res.Receipt)
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if peer.ID(receipt.Provider) != prov.ID() || peer.ID(receipt.Requester) != req.ID() || receipt.Amount.GetNanos() == 0 {
		t.Fatalf("receipt %v", receipt)
	}
	cs, err := record.Seal(req.opts.Identity, &pb.Countersignature{ReceiptHash: receiptHash(res.Receipt), Requester: []byte(req.ID()), SignedAtMs: protocol.UnixMs(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	if err := req.SubmitReceipt(ctx, prov.ID(), res.Receipt, cs); err != nil {
		t.Fatalf("submit receipt: %v", err)
	}
	stored, err := provStore.Receipt(string(receipt.LeaseId), 1)
	if err != nil || len(stored.Countersignature) == 0 {
		t.Fatalf("stored receipt %v, %v", stored, err)
	}
	if st := prov.MarketState(); st.Leases != 0 || st.Committed.CPUMillis != 0 {
		t.Fatalf("provider still holds %+v", st)
	}
	// A watch after the end is answered from the store.
	again, err := req.Watch(ctx, prov.ID(), &pb.WatchRequest{LeaseId: receipt.LeaseId, Epoch: 1}, nil)
	if err != nil || again.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
		t.Fatalf("watch after the end: %v, %v", again, err)
	}
}

// TestLeaseAbuse: a module that loops forever is stopped at its timeout, one
// that tries to open a host file fails inside its sandbox; a replayed lease is
// refused; the provider keeps serving.
func TestLeaseAbuse(t *testing.T) {
	prov, req, _ := newProviderPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	res, _, env := placeOn(t, ctx, req, prov, wasm(t, "loop"), nil, 500*time.Millisecond)
	if res.State != pb.LeaseState_LEASE_STATE_FAILED || res.Error.GetCode() != pb.Code_CODE_TIMEOUT {
		t.Fatalf("loop: %v %v, want failed with a timeout", res.State, res.Error)
	}
	if err := req.SendLease(ctx, prov.ID(), env); err != nil {
		// The same lease again is a retry of a committed lease: accepted,
		// not run twice.
		t.Fatalf("retried lease: %v", err)
	}

	_, stdout, _ := placeOn(t, ctx, req, prov, wasm(t, "escape"), nil, 10*time.Second)
	if !strings.Contains(stdout, "read /etc/passwd: error") || strings.Contains(stdout, "root:") {
		t.Fatalf("the guest reached a host file:\n%s", stdout)
	}
	// A lease signed by someone other than the sender is refused.
	other, err := record.Seal(newKey(t), &pb.Lease{LeaseId: make([]byte, 16), Requester: []byte(req.ID()), Nonce: make([]byte, 16), Epoch: 1, ExpiresAtMs: protocol.UnixMs(time.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	if err := req.SendLease(ctx, prov.ID(), other); !errors.Is(err, protocol.ErrWrongSigner) {
		t.Fatalf("foreign lease: got %v, want wrong signer", err)
	}
	if _, _, err := req.RequestOffer(ctx, prov.ID(), request(t, 64<<20)); err != nil {
		t.Fatalf("provider stopped serving: %v", err)
	}
}

// TestLeaseBadModuleAndOffer: a requester serving bytes that do not hash to
// the module's CID gets its lease failed with MODULE_MISMATCH; a lease naming
// an offer the provider never made is refused as UNKNOWN_OFFER. Both are
// counted in the provider's metrics.
func TestLeaseBadModuleAndOffer(t *testing.T) {
	prov, req, _ := newProviderPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hello := wasm(t, "hello")
	// Serve other bytes than asked under the module protocol.
	req.host.SetStreamHandler(protocol.ModuleID, func(s network.Stream) {
		defer s.Close()
		var m pb.ModuleRequest
		wire.NewReader(s, protocol.MaxModuleMsg).ReadMsg(&m)
		wire.NewWriter(s, protocol.MaxModuleMsg).WriteMsg(&pb.ModuleChunk{Size: 8, Data: []byte("\x00asm\x01\x00\x00\x00"), Last: true})
	})
	res, _, _ := placeOn(t, ctx, req, prov, hello, nil, 10*time.Second)
	if res.State != pb.LeaseState_LEASE_STATE_FAILED || res.Error.GetCode() != pb.Code_CODE_MODULE_MISMATCH {
		t.Fatalf("tampered module: %v %v, want failed with MODULE_MISMATCH", res.State, res.Error)
	}

	job := &pb.Job{Version: 1, Name: "x", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task: &pb.Task{Engine: "wasm", ModuleCid: wire.SumCID(hello).Bytes(), Resources: &pb.Resources{CpuMillis: 1, MemoryBytes: 1 << 20}, TimeoutMs: 1000}}
	signed, err := record.SealJob(req.opts.Identity, job)
	if err != nil {
		t.Fatal(err)
	}
	lease := leaseToPB(scheduler.Lease{ID: nonce(t), Provider: string(prov.ID()), Requester: string(req.ID()), OfferNonce: nonce(t),
		JobCID: string(signed.CID.Bytes()), Epoch: 1, ExpiresAt: time.Now().Add(time.Minute)}, nonce(t), signed.Envelope, time.Second)
	env, err := record.Seal(req.opts.Identity, lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.SendLease(ctx, prov.ID(), env); !errors.Is(err, &protocol.Error{Code: pb.Code_CODE_UNKNOWN_OFFER}) {
		t.Fatalf("lease on no offer: got %v, want unknown offer", err)
	}
	if v := testutil.ToFloat64(prov.metrics.refusals.WithLabelValues("lease", "unknown_offer")); v != 1 {
		t.Fatalf("refusal not counted: %v", v)
	}
}

// TestDrainTellsWatchers: a run cancelled by a draining node is recorded
// cancelled and billed, and its watching requester gets the result.
func TestDrainTellsWatchers(t *testing.T) {
	prov, req, _ := newProviderPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan *pb.Result, 1)
	go func() {
		res, _, _ := placeOn(t, ctx, req, prov, wasm(t, "loop"), nil, time.Hour)
		done <- res
	}()
	waitFor(t, 30*time.Second, "the loop to run", func() bool { return prov.MarketState().Leases == 1 && len(prov.runningIDs()) == 1 })
	prov.SetDraining(true)
	prov.CancelRuns(5 * time.Second)
	res := <-done
	if res == nil || res.State != pb.LeaseState_LEASE_STATE_CANCELLED || len(res.Receipt) == 0 {
		t.Fatalf("watcher got %v, want a cancelled result with a receipt", res)
	}
	if _, _, err := req.RequestOffer(ctx, prov.ID(), request(t, 64<<20)); !errors.Is(err, &protocol.Error{Code: pb.Code_CODE_DRAINING}) {
		t.Fatalf("draining node: got %v, want draining", err)
	}
}

// TestUnknownProtocolVersion: a peer speaking a version the node does not
// know is refused by multistream-select, and the node serves on.
func TestUnknownProtocolVersion(t *testing.T) {
	prov, req := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := req.host.NewStream(ctx, prov.ID(), "/cuivre/offer/2.0.0"); err == nil {
		t.Fatal("a stream for /cuivre/offer/2.0.0 was accepted")
	}
	if _, _, err := req.RequestOffer(ctx, prov.ID(), request(t, 64<<20)); err != nil {
		t.Fatal(err)
	}
}

// runningIDs returns the lease IDs of the runs not yet ended.
func (n *Node) runningIDs() []string {
	n.runsMu.Lock()
	defer n.runsMu.Unlock()
	var out []string
	for k, r := range n.runs {
		r.mu.Lock()
		if r.state == pb.LeaseState_LEASE_STATE_RUNNING && r.result == nil {
			out = append(out, k.id)
		}
		r.mu.Unlock()
	}
	return out
}

// TestLateWatchGetsLogs: a requester that starts watching after a short run
// ended still gets its output.
func TestLateWatchGetsLogs(t *testing.T) {
	prov, req, _ := newProviderPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, _, env := placeOn(t, ctx, req, prov, wasm(t, "hello"), []string{"--name", "late"}, 30*time.Second)
	l, err := record.OpenLease(env, time.Now())
	if err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
		t.Fatal(err, res.State)
	}
	var stdout []byte
	if _, err := req.Watch(ctx, prov.ID(), &pb.WatchRequest{LeaseId: l.LeaseId, Epoch: 1}, func(ev *pb.WatchEvent) {
		if lg := ev.GetLog(); lg != nil {
			stdout = append(stdout, lg.Data...)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if string(stdout) != "bonjour, late! (2 lines on stdin)\n" {
		t.Fatalf("late watch got %q", stdout)
	}
}
