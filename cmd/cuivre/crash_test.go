package main

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// crashKills is the environment variable that sets how many times
// TestCrashPoints kills its provider; `make crash` asks 200.
const crashKills = "CUIVRE_CRASH_KILLS"

// TestCrashPoints: a provider daemon, a real process, runs leases for
// three requesters' loops and is killed with SIGKILL at a random point of
// that load (after a random number of acknowledgements), again and again.
// After each kill its store, opened by the test once the process is gone,
// holds every lease the provider acknowledged and every countersignature
// it accepted; after each restart no lease is live, nothing is reserved and
// its capacity is whole: counted once. The restart times, start to ready,
// are logged (goal 5 s; not asserted: the machine is shared).
func TestCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	kills := 12
	if s := os.Getenv(crashKills); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive count", crashKills, s)
		}
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 13))

	dir := initDir(t)
	p := startDaemon(t, dir, "")
	info := addrInfo(t, p)
	req, key := requesterNode(t, info)
	module := exectest.Module(t, "hello")
	mod, err := req.AddModule(module)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		acked    []string // leases the provider acknowledged
		settled  []string // leases whose countersignature it accepted
		progress = make(chan struct{}, 1)
	)
	note := func(list *[]string, id string) {
		mu.Lock()
		*list = append(*list, id)
		mu.Unlock()
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) + len(settled)
	}

	var restarts []time.Duration
	for k := range kills {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for ctx.Err() == nil {
					leaseSettled(ctx, req, key, peer.ID(info.ID), mod.Bytes(), func(id string) { note(&acked, id) }, func(id string) { note(&settled, id) })
				}
			})
		}
		// A random point of the load: after 1 to 6 more acknowledgements.
		target := count() + 1 + rng.IntN(6)
		deadline := time.After(2 * time.Minute)
		for count() < target {
			select {
			case <-progress:
			case <-deadline:
				t.Fatalf("kill %d: no progress under load (%d of %d acknowledgements)", k, count(), target)
			}
		}
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
		cancel()
		wg.Wait()

		mu.Lock()
		wantLeases, wantSettled := slices.Clone(acked), slices.Clone(settled)
		mu.Unlock()
		st, err := store.Open(filepath.Join(dir, node.StateFile), store.Options{})
		if err != nil {
			t.Fatalf("kill %d: the store does not reopen: %v", k, err)
		}
		for _, id := range wantLeases {
			if _, err := st.Lease(id, 1); err != nil {
				t.Errorf("kill %d: acknowledged lease %x: %v", k, id, err)
			}
		}
		for _, id := range wantSettled {
			if r, err := st.Receipt(id, 1); err != nil || len(r.Countersignature) == 0 {
				t.Errorf("kill %d: countersigned receipt of %x: %v (countersignature %d bytes)", k, id, err, len(r.Countersignature))
			}
		}
		st.Close()
		if t.Failed() {
			t.FailNow()
		}

		t0 := time.Now()
		p = startDaemon(t, dir, "")
		restarts = append(restarts, time.Since(t0))
		if st := p.status(t); st.Leases != 0 || st.Reservations != 0 || st.Committed != (scheduler.Resources{}) || st.Free != st.Capacity {
			t.Fatalf("kill %d: after the restart the provider counts %+v", k, st)
		}
		req.Host().Network().ClosePeer(peer.ID(info.ID)) // the old process's connection is dead
		info = addrInfo(t, p)
		// A dial the restarted process does not answer in time is tried
		// again: what is checked here is the store and the ledger.
		var cerr error
		for try := range 5 {
			cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
			cerr = req.Host().Connect(cctx, info)
			ccancel()
			if cerr == nil {
				break
			}
			t.Logf("kill %d: dial %d to the restarted provider: %v", k, try+1, cerr)
		}
		if cerr != nil {
			t.Fatal(cerr)
		}
	}
	slices.Sort(restarts)
	t.Logf("%d kills: %d leases acknowledged, %d receipts countersigned, all kept; restart to ready p50 %v, max %v",
		kills, len(acked), len(settled), restarts[len(restarts)/2].Round(time.Millisecond), restarts[len(restarts)-1].Round(time.Millisecond))
}

func addrInfo(t *testing.T, d *daemon) peer.AddrInfo {
	t.Helper()
	info, err := peer.AddrInfoFromString(d.id.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	return *info
}

// leaseSettled runs one lease of the hello module on p, as a requester
// does, and countersigns its receipt: acked is called once the provider has
// acknowledged the lease, settled once it has accepted the
// countersignature. Any failure (the provider is killed under it) ends it
// quietly.
func leaseSettled(ctx context.Context, req *node.Node, key crypto.PrivKey, p peer.ID, moduleCID []byte, acked, settled func(id string)) {
	res := &pb.Resources{CpuMillis: 500, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20}
	job := &pb.Job{Version: 1, Name: "crash", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task:  &pb.Task{Engine: "wasm", ModuleCid: moduleCID, Args: []string{"--name", "crash"}, Resources: res, TimeoutMs: 30_000},
		Nonce: random(protocol.NonceSize)}
	signed, err := record.SealJob(key, job)
	if err != nil {
		return
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	offer, _, err := req.RequestOffer(octx, p, scheduler.Request{
		Nonce: string(random(protocol.NonceSize)), JobCID: string(signed.CID.Bytes()), Executor: "wasm",
		Resources: scheduler.Resources{CPUMillis: res.CpuMillis, MemoryBytes: res.MemoryBytes, ScratchBytes: res.ScratchBytes}, Timeout: 30 * time.Second,
		ExpiresAt: time.Now().Add(5 * time.Second)})
	if err != nil {
		return
	}
	id := random(protocol.LeaseIDSize)
	env, err := record.Seal(key, &pb.Lease{LeaseId: id, Provider: []byte(p), Requester: []byte(req.ID()),
		OfferNonce: []byte(offer.Nonce), JobCid: signed.CID.Bytes(), Epoch: 1, Nonce: random(protocol.NonceSize),
		ExpiresAtMs: protocol.UnixMs(time.Now().Add(30 * time.Second)), Job: signed.Envelope, HeartbeatMs: 200})
	if err != nil || requester.SendLease(octx, req.Transport(), string(p), env) != nil {
		return
	}
	acked(string(id))
	r, err := requester.Watch(ctx, req.Transport(), string(p), &pb.WatchRequest{LeaseId: id, Epoch: 1}, nil)
	if err != nil || len(r.Receipt) == 0 {
		return
	}
	cs, err := record.Seal(key, &pb.Countersignature{ReceiptHash: conv.ReceiptHash(r.Receipt), Requester: []byte(req.ID()), SignedAtMs: protocol.UnixMs(time.Now())})
	if err != nil {
		return
	}
	if requester.SubmitReceipt(ctx, req.Transport(), string(p), r.Receipt, cs) == nil {
		settled(string(id))
	}
}
