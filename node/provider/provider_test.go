package provider_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/node/provider"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// The provider's behaviour on the in-memory network: each exchange is the
// provider's real handler, reached through memnet; runs are real wazero runs
// of tiny modules. Tests run in a synctest bubble (virtual time) unless a
// guest must spin until a timer stops it.

func nonce() string {
	b := make([]byte, protocol.NonceSize)
	rand.Read(b)
	return string(b)
}

// placement is one lease placed by hand on a provider, as a requester would.
type placement struct {
	env     []byte // the sealed lease
	leaseID []byte
	epoch   uint64
}

// lease signs a job running module, asks prov for an offer and leases it.
func lease(t *testing.T, f *nodetest.Federation, prov *nodetest.Member, module []byte, heartbeat time.Duration) placement {
	t.Helper()
	return leaseTask(t, f, prov, module, &pb.Task{}, heartbeat)
}

// leaseTask is lease with more of the task set: args, inputs, outputs.
func leaseTask(t *testing.T, f *nodetest.Federation, prov *nodetest.Member, module []byte, task *pb.Task, heartbeat time.Duration) placement {
	t.Helper()
	return leaseEpoch(t, f, prov, module, task, heartbeat, 1)
}

// leaseEpoch is leaseTask at a given epoch, as a requester leasing a slot
// it rescheduled.
func leaseEpoch(t *testing.T, f *nodetest.Federation, prov *nodetest.Member, module []byte, task *pb.Task, heartbeat time.Duration, epoch uint64) placement {
	t.Helper()
	return leaseJob(t, f, prov, signJob(t, f, module, task, nil), 0, heartbeat, epoch)
}

// signJob has the federation's requester sign a job running module, with
// task's other fields, and the job's edited by edit if not nil.
func signJob(t *testing.T, f *nodetest.Federation, module []byte, task *pb.Task, edit func(*pb.Job)) *record.SignedJob {
	t.Helper()
	req := f.Requester
	mod, err := req.Requester.AddModule(module)
	if err != nil {
		t.Fatal(err)
	}
	task.Engine, task.ModuleCid, task.TimeoutMs = "wasm", mod.Bytes(), 3_600_000
	task.Resources = &pb.Resources{CpuMillis: 500, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20}
	job := &pb.Job{
		Version: 1, Name: "t", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task: task, Nonce: []byte(nonce()),
	}
	if edit != nil {
		edit(job)
	}
	signed, err := record.SealJob(req.Key, job)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// leaseJob asks prov for an offer for a signed job and leases it, a new
// slot running instance, at epoch.
func leaseJob(t *testing.T, f *nodetest.Federation, prov *nodetest.Member, signed *record.SignedJob, instance uint32, heartbeat time.Duration, epoch uint64) placement {
	t.Helper()
	return leaseSlot(t, f, prov, signed, []byte(nonce()), instance, heartbeat, epoch)
}

// leaseSlot is leaseJob for the slot id: a slot leased again at a higher
// epoch, as a requester rescheduling it would.
func leaseSlot(t *testing.T, f *nodetest.Federation, prov *nodetest.Member, signed *record.SignedJob, id []byte, instance uint32, heartbeat time.Duration, epoch uint64) placement {
	t.Helper()
	ctx := context.Background()
	req := f.Requester
	r := scheduler.Request{
		Nonce: nonce(), JobCID: string(signed.CID.Bytes()), Executor: "wasm",
		Resources: scheduler.Resources{CPUMillis: 500, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20}, Timeout: time.Hour,
		MaxPrice: scheduler.Amount{Currency: "EUR", Nanos: 1e12}, ExpiresAt: f.Clock.Now().Add(5 * time.Second),
	}
	offer, _, err := requester.RequestOffer(ctx, req.Peer, prov.ID, r, f.Clock.Now)
	if err != nil {
		t.Fatalf("offer: %v", err)
	}
	env, err := record.Seal(req.Key, conv.LeaseToPB(scheduler.Lease{
		ID: string(id), Provider: prov.ID, Requester: req.ID, OfferNonce: offer.Nonce,
		JobCID: r.JobCID, Epoch: epoch, ExpiresAt: f.Clock.Now().Add(30 * time.Second), Instance: instance,
	}, nonce(), signed.Envelope, heartbeat))
	if err != nil {
		t.Fatal(err)
	}
	if err := requester.SendLease(ctx, req.Peer, prov.ID, env); err != nil {
		t.Fatalf("lease: %v", err)
	}
	return placement{env: env, leaseID: id, epoch: epoch}
}

// watch follows a lease to its result and returns it with the stdout seen.
func watch(t *testing.T, f *nodetest.Federation, prov *nodetest.Member, l placement) (*pb.Result, string, error) {
	t.Helper()
	var stdout []byte
	res, err := requester.Watch(context.Background(), f.Requester.Peer, prov.ID, &pb.WatchRequest{LeaseId: l.leaseID, Epoch: l.epoch}, func(ev *pb.WatchEvent) {
		if lg := ev.GetLog(); lg != nil && lg.Stream == pb.LogStream_LOG_STREAM_STDOUT {
			stdout = append(stdout, lg.Data...)
		}
	})
	return res, string(stdout), err
}

// TestLeaseRuns: offer, lease, the module fetched from the requester by CID
// and verified, the run, its logs, its result with a signed receipt, which
// the provider takes back countersigned; a watch after the end gets the
// logs again, and once the run is forgotten, the result from the store.
func TestLeaseRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		l := lease(t, f, prov, exectest.Write("bonjour\n", "", 0), 200*time.Millisecond)
		res, stdout, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || stdout != "bonjour\n" {
			t.Fatalf("result %v %q, %v", res, stdout, err)
		}
		receipt, err := record.OpenReceipt(res.Receipt)
		if err != nil || string(receipt.Provider) != prov.ID || receipt.Amount.GetNanos() == 0 {
			t.Fatalf("receipt %v, %v", receipt, err)
		}
		cs, err := record.Seal(f.Requester.Key, &pb.Countersignature{ReceiptHash: conv.ReceiptHash(res.Receipt), Requester: []byte(f.Requester.ID), SignedAtMs: protocol.UnixMs(f.Clock.Now())})
		if err != nil {
			t.Fatal(err)
		}
		if err := requester.SubmitReceipt(context.Background(), f.Requester.Peer, prov.ID, res.Receipt, cs); err != nil {
			t.Fatalf("countersignature: %v", err)
		}
		if stored, err := prov.Store.Receipt(string(l.leaseID), 1); err != nil || len(stored.Countersignature) == 0 {
			t.Fatalf("stored receipt %v, %v", stored, err)
		}
		if st := prov.Provider.MarketState(); st.Leases != 0 || st.Committed.CPUMillis != 0 {
			t.Fatalf("the provider still holds %+v", st)
		}
		// A late watcher gets the logs of a short run that ended.
		if res, stdout, err := watch(t, f, prov, l); err != nil || stdout != "bonjour\n" || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
			t.Fatalf("late watch: %v %q, %v", res, stdout, err)
		}
		// Once the run is forgotten, the store answers.
		f.Settle(time.Hour)
		if res, _, err := watch(t, f, prov, l); err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || len(res.Receipt) == 0 {
			t.Fatalf("watch from the store: %v, %v", res, err)
		}
	})
}

// TestLeaseAbuse: a retried lease is accepted again and not run twice; a
// lease signed by another key than its sender's, or naming an offer never
// made, is refused with its code and counted; a requester serving bytes
// that do not hash to the module's CID gets its lease failed with
// MODULE_MISMATCH; the provider serves on.
func TestLeaseAbuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov, req := f.Providers[0], f.Requester
		ctx := context.Background()
		l := lease(t, f, prov, exectest.Empty(), time.Second)
		if _, _, err := watch(t, f, prov, l); err != nil {
			t.Fatal(err)
		}
		if err := requester.SendLease(ctx, req.Peer, prov.ID, l.env); err != nil {
			t.Fatalf("retried lease: %v", err)
		}
		if got := testutil.ToFloat64(prov.Provider.Metrics().Refusals("lease", "replayed")); got != 0 {
			t.Fatalf("a retry was counted as a replay")
		}

		other, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		foreign, err := record.Seal(other, &pb.Lease{LeaseId: make([]byte, 16), Requester: []byte(req.ID), Nonce: make([]byte, 16), Epoch: 1,
			ExpiresAtMs: protocol.UnixMs(f.Clock.Now().Add(time.Minute))})
		if err != nil {
			t.Fatal(err)
		}
		if err := requester.SendLease(ctx, req.Peer, prov.ID, foreign); !errors.Is(err, protocol.ErrWrongSigner) {
			t.Fatalf("foreign lease: %v, want wrong signer", err)
		}

		signed, err := record.SealJob(req.Key, &pb.Job{Version: 1, Name: "x", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
			Task: &pb.Task{Engine: "wasm", ModuleCid: wire.SumCID(exectest.Empty()).Bytes(), Resources: &pb.Resources{CpuMillis: 1, MemoryBytes: 1 << 20}, TimeoutMs: 1000}})
		if err != nil {
			t.Fatal(err)
		}
		noOffer, err := record.Seal(req.Key, conv.LeaseToPB(scheduler.Lease{ID: nonce(), Provider: prov.ID, Requester: req.ID, OfferNonce: nonce(),
			JobCID: string(signed.CID.Bytes()), Epoch: 1, ExpiresAt: f.Clock.Now().Add(time.Minute)}, nonce(), signed.Envelope, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := requester.SendLease(ctx, req.Peer, prov.ID, noOffer); !errors.Is(err, &protocol.Error{Code: pb.Code_CODE_UNKNOWN_OFFER}) {
			t.Fatalf("lease on no offer: %v, want unknown offer", err)
		}
		if got := testutil.ToFloat64(prov.Provider.Metrics().Refusals("lease", "unknown_offer")); got != 1 {
			t.Fatalf("refusal counted %v times, want 1", got)
		}

		// The requester serves other bytes than the module's CID names.
		req.Peer.Serve(tamper{Handler: req.Provider})
		l = lease(t, f, prov, exectest.Exit(3), time.Second)
		res, _, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_FAILED || res.Error.GetCode() != pb.Code_CODE_MODULE_MISMATCH {
			t.Fatalf("tampered module: %v, %v; want failed with MODULE_MISMATCH", res, err)
		}
		if _, _, err := requester.RequestOffer(ctx, req.Peer, prov.ID, scheduler.Request{Nonce: nonce(), JobCID: string(signed.CID.Bytes()),
			Executor: "wasm", Resources: scheduler.Resources{CPUMillis: 1, MemoryBytes: 1 << 20}, Timeout: time.Second,
			MaxPrice: scheduler.Amount{Currency: "EUR", Nanos: 1e9}, ExpiresAt: f.Clock.Now().Add(5 * time.Second)}, f.Clock.Now); err != nil {
			t.Fatalf("the provider stopped serving: %v", err)
		}
	})
}

// TestCancelEpochs: a cancel is fenced as SPEC 6.2 says. One of an epoch
// older than the provider's is CODE_STALE_EPOCH (it used to be
// UNKNOWN_LEASE), one of the current epoch of a lease already final is
// accepted and changes nothing, also once the run is forgotten from memory,
// and one of an epoch never committed, of a lease never seen, or from
// another peer is CODE_UNKNOWN_LEASE.
func TestCancelEpochs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov, req := f.Providers[0], f.Requester
		ctx := context.Background()
		l := leaseEpoch(t, f, prov, exectest.Empty(), &pb.Task{}, time.Second, 2)
		if res, _, err := watch(t, f, prov, l); err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
			t.Fatalf("result %v, %v", res, err)
		}
		id := string(l.leaseID)
		code := protocol.CodeOf
		for _, forgotten := range []bool{false, true} {
			if forgotten {
				f.Settle(time.Hour) // the run forgotten: the store answers
			}
			for _, c := range []struct {
				epoch uint64
				want  pb.Code
			}{
				{1, pb.Code_CODE_STALE_EPOCH},
				{2, pb.Code_CODE_UNSPECIFIED},
				{3, pb.Code_CODE_UNKNOWN_LEASE},
			} {
				if got := code(requester.CancelLease(ctx, req.Peer, prov.ID, id, c.epoch)); got != c.want {
					t.Errorf("forgotten %v: cancel of epoch %d: %v, want %v", forgotten, c.epoch, got, c.want)
				}
			}
		}
		if got := code(requester.CancelLease(ctx, req.Peer, prov.ID, nonce(), 1)); got != pb.Code_CODE_UNKNOWN_LEASE {
			t.Errorf("cancel of a lease never seen: %v", got)
		}
		if got := code(requester.CancelLease(ctx, prov.Peer, prov.ID, id, 2)); got != pb.Code_CODE_UNKNOWN_LEASE {
			t.Errorf("cancel from another peer: %v", got)
		}
		if st, err := prov.Store.LatestLease(id); err != nil || st.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
			t.Fatalf("the lease after the cancels: %v, %v", st.State, err)
		}
	})
}

// TestHigherEpochStops: a lease of a higher epoch for a slot running here
// replaces the held one (SPEC 6.2): the old run stops and ends CANCELLED,
// unbilled (no receipt); a watch or a cancel of the old epoch is then
// CODE_STALE_EPOCH, even while its run lingers in memory; and a cancel of
// the new epoch is answered once its end is recorded. (The old run used to go
// on, and a watch of its epoch to stream it.)
func TestHigherEpochStops(t *testing.T) {
	f := nodetest.New(t, "fr-par")
	prov, req := f.Providers[0], f.Requester
	ctx := context.Background()
	signed := signJob(t, f, exectest.WriteLoop("spinning\n"), &pb.Task{}, nil)
	l1 := leaseJob(t, f, prov, signed, 0, time.Second, 1)
	id := string(l1.leaseID)
	spun := make(chan struct{})
	old := make(chan *pb.Result, 1)
	go func() {
		once := sync.OnceFunc(func() { close(spun) })
		res, err := requester.Watch(ctx, req.Peer, prov.ID, &pb.WatchRequest{LeaseId: l1.leaseID, Epoch: 1}, func(ev *pb.WatchEvent) {
			if ev.GetLog() != nil {
				once()
			}
		})
		if err != nil {
			t.Errorf("watch of epoch 1: %v", err)
		}
		old <- res
	}()
	<-spun
	leaseSlot(t, f, prov, signed, l1.leaseID, 0, time.Second, 2)
	var res *pb.Result
	select {
	case res = <-old:
	case <-time.After(time.Minute): // a bound on a hang, not a measure: it ends at once
		t.Fatal("epoch 1 still runs a minute after epoch 2 was leased")
	}
	if res.GetState() != pb.LeaseState_LEASE_STATE_CANCELLED || len(res.GetReceipt()) != 0 {
		t.Fatalf("epoch 1 after epoch 2 was leased: %v, %d receipt bytes", res.GetState(), len(res.GetReceipt()))
	}
	if _, _, err := watch(t, f, prov, l1); protocol.CodeOf(err) != pb.Code_CODE_STALE_EPOCH {
		t.Errorf("watch of epoch 1: %v, want CODE_STALE_EPOCH", err)
	}
	if err := requester.CancelLease(ctx, req.Peer, prov.ID, id, 1); protocol.CodeOf(err) != pb.Code_CODE_STALE_EPOCH {
		t.Errorf("cancel of epoch 1: %v, want CODE_STALE_EPOCH", err)
	}
	if err := requester.CancelLease(ctx, req.Peer, prov.ID, id, 2); err != nil {
		t.Fatalf("cancel of epoch 2: %v", err)
	}
	if st, err := prov.Store.Lease(id, 2); err != nil || st.State != pb.LeaseState_LEASE_STATE_CANCELLED {
		t.Errorf("epoch 2 when its cancel is answered: %v, %v", st.State, err)
	}
	if _, err := prov.Store.Receipt(id, 2); err != nil {
		t.Errorf("epoch 2's receipt: %v", err)
	}
	if _, err := prov.Store.Receipt(id, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("epoch 1's receipt: %v, want none", err)
	}
}

// TestJobRandomness: a guest reads the random stream its job CID and
// instance derive (SPEC 11): two slots of one instance, as replicas are, read
// the same bytes, and another instance or another job other bytes; a job
// that asks host entropy reads other bytes in every run. A lease naming an
// instance the job does not have is refused. (Every guest used to read the
// same bytes, in every job on every provider.)
func TestJobRandomness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		module := exectest.Random(32)
		read := func(l placement) string {
			t.Helper()
			res, stdout, err := watch(t, f, prov, l)
			if err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || len(stdout) != 32 {
				t.Fatalf("result %v, %d bytes, %v", res, len(stdout), err)
			}
			return stdout
		}
		twice := func(edit func(*pb.Job)) *record.SignedJob {
			return signJob(t, f, module, &pb.Task{}, func(j *pb.Job) {
				j.Count = 2
				if edit != nil {
					edit(j)
				}
			})
		}
		job, other := twice(nil), twice(nil)
		first := read(leaseJob(t, f, prov, job, 0, time.Second, 1))
		if again := read(leaseJob(t, f, prov, job, 0, time.Second, 1)); again != first {
			t.Errorf("two slots of one instance read %x and %x", first, again)
		}
		want := make([]byte, 32)
		protocol.JobRandom(job.CID.Bytes(), 0).Read(want)
		if first != string(want) {
			t.Errorf("the guest read %x, not the stream of its job and instance %x", first, want)
		}
		host := twice(func(j *pb.Job) { j.Entropy = pb.Entropy_ENTROPY_HOST })
		seen := map[string]string{first: "instance 0"}
		for _, c := range []struct {
			name string
			l    placement
		}{
			{"instance 1", leaseJob(t, f, prov, job, 1, time.Second, 1)},
			{"another job", leaseJob(t, f, prov, other, 0, time.Second, 1)},
			{"host entropy, run 1", leaseJob(t, f, prov, host, 0, time.Second, 1)},
			{"host entropy, run 2", leaseJob(t, f, prov, host, 0, time.Second, 1)},
		} {
			got := read(c.l)
			if prev, ok := seen[got]; ok {
				t.Errorf("%s reads the bytes of %s: %x", c.name, prev, got)
			}
			seen[got] = c.name
		}

		env, err := record.Seal(f.Requester.Key, conv.LeaseToPB(scheduler.Lease{
			ID: nonce(), Provider: prov.ID, Requester: f.Requester.ID, OfferNonce: nonce(), JobCID: string(job.CID.Bytes()),
			Epoch: 1, ExpiresAt: f.Clock.Now().Add(time.Minute), Instance: 2,
		}, nonce(), job.Envelope, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := requester.SendLease(context.Background(), f.Requester.Peer, prov.ID, env); protocol.CodeOf(err) != protocol.CodeMalformed || !strings.Contains(err.Error(), "instance 2 of a job of 2") {
			t.Fatalf("a lease of instance 2 of 2: %v, want malformed", err)
		}
	})
}

// TestInvalidModuleNotKept: bytes that are not a WebAssembly command (here a
// private key, hashing to the CID the job names) fail the lease as
// malformed, and are not kept in the provider's store.
func TestInvalidModuleNotKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		key := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\n")
		l := lease(t, f, prov, key, time.Second)
		res, _, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_FAILED || res.Error.GetCode() != protocol.CodeMalformed {
			t.Fatalf("result %v, %v: want failed, malformed", res, err)
		}
		if _, err := prov.Store.Module(wire.SumCID(key)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the provider kept the bytes: %v", err)
		}
		// A valid module is kept.
		good := exectest.Write("kept\n", "", 0)
		if res, _, err := watch(t, f, prov, lease(t, f, prov, good, time.Second)); err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
			t.Fatalf("a valid module: %v, %v", res, err)
		}
		if _, err := prov.Store.Module(wire.SumCID(good)); err != nil {
			t.Fatalf("a valid module was not kept: %v", err)
		}
	})
}

// TestLogCut: a run that writes more than the log limit keeps the beginning
// of the stream, and its result says the stream was cut, also when read back
// from the store; the run itself succeeds. (The stream used to be cut
// silently.)
func TestLogCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t)
		f.MaxLog = 8
		prov := f.AddProvider(nodetest.Market("fr-par", "opa"))
		l := lease(t, f, prov, exectest.Write("0123456789abcdef", "short", 0), time.Second)
		res, stdout, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || stdout != "01234567" {
			t.Fatalf("result %v, stdout %q, %v", res, stdout, err)
		}
		if !res.StdoutTruncated || res.StderrTruncated || string(res.StdoutCid) != string(wire.SumCID([]byte("01234567")).Bytes()) {
			t.Fatalf("result says stdout cut %v, stderr cut %v, stdout CID %x", res.StdoutTruncated, res.StderrTruncated, res.StdoutCid)
		}
		f.Settle(time.Hour) // the run forgotten: the store answers
		if res, _, err := watch(t, f, prov, l); err != nil || !res.StdoutTruncated || res.StderrTruncated {
			t.Fatalf("from the store: %v, %v", res, err)
		}
	})
}

// TestExpiresFetching: a lease whose module fetch outlasts its expires_at_ms
// ends EXPIRED at its expiry (SPEC 9), not FAILED when the fetch gives up.
func TestExpiresFetching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov, req := f.Providers[0], f.Requester
		req.Peer.Serve(stall{Handler: req.Provider})
		l := lease(t, f, prov, exectest.Empty(), time.Second)
		res, _, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_EXPIRED || res.Error.GetCode() != pb.Code_CODE_EXPIRED {
			t.Fatalf("a lease still fetching at its expiry: %v, %v; want expired", res, err)
		}
	})
}

// TestTrapIsTheJobs: a guest that traps failed by itself, as one exiting
// non-zero does (SPEC 6.3, 9): the Result is FAILED with no error, which
// would blame the provider and have the requester place the slot again; the
// final Status says what trapped.
func TestTrapIsTheJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		l := lease(t, f, prov, exectest.Trap(), time.Second)
		var final *pb.Status
		res, err := requester.Watch(context.Background(), f.Requester.Peer, prov.ID, &pb.WatchRequest{LeaseId: l.leaseID, Epoch: l.epoch}, func(ev *pb.WatchEvent) {
			if st := ev.GetStatus(); st != nil && protocol.Final(st.State) {
				final = st
			}
		})
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_FAILED || res.Error != nil {
			t.Fatalf("a trapping guest: %v, %v; want FAILED with no error", res, err)
		}
		if final == nil || !strings.Contains(final.Message, "trap") {
			t.Errorf("the final Status: %v; want its message to name the trap", final)
		}
	})
}

// stall never answers a module request: a fetch lasts until its asker gives
// up.
type stall struct{ transport.Handler }

func (stall) Module(ctx context.Context, _ string, _ *pb.ModuleRequest, _ func(*pb.ModuleChunk) error) error {
	<-ctx.Done()
	return ctx.Err()
}

// tamper serves a valid module that is not the one asked for.
type tamper struct{ transport.Handler }

func (tamper) Module(_ context.Context, _ string, _ *pb.ModuleRequest, send func(*pb.ModuleChunk) error) error {
	bin := exectest.Empty()
	return send(&pb.ModuleChunk{Size: uint64(len(bin)), Data: bin, Last: true})
}

// TestRecover: a provider that dies with a lease live records it failed when
// it starts again, and a requester watching it again is told.
func TestRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.Providers[0]
		prov.Hold()
		l := lease(t, f, prov, exectest.Empty(), time.Second)
		f.Net.Crash(prov.ID)
		prov.Store.Close() // the process is gone before its run started
		prov.Data.Close()
		prov.Restart()
		res, _, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_FAILED || res.Error.GetCode() != pb.Code_CODE_RUN_LOST || !strings.Contains(res.Error.GetMessage(), "restarted") {
			t.Fatalf("watch after the restart: %v, %v", res, err)
		}
		if st := prov.Provider.MarketState(); st.Leases != 0 {
			t.Fatalf("a dead lease is counted again: %+v", st)
		}
	})
}

// TestDrain: a draining provider refuses offers at once; a lease that ends
// within the grace period ends as it would; one still running when the grace
// period is over is cancelled, billed, and its watcher told. It runs on the
// wall clock: its guest spins until the drain stops it, which would hold a
// virtual clock still; nothing in it depends on the machine's speed.
func TestDrain(t *testing.T) {
	f := nodetest.New(t, "fr-par")
	prov := f.Providers[0]
	quick := lease(t, f, prov, exectest.Write("quick\n", "", 0), 100*time.Millisecond)
	spin := lease(t, f, prov, exectest.WriteLoop("spinning\n"), 100*time.Millisecond)
	spun := make(chan struct{})
	results := make(chan *pb.Result, 2)
	go func() {
		var once bool
		res, err := requester.Watch(context.Background(), f.Requester.Peer, prov.ID, &pb.WatchRequest{LeaseId: spin.leaseID, Epoch: 1}, func(ev *pb.WatchEvent) {
			if ev.GetLog() != nil && !once {
				once = true
				close(spun)
			}
		})
		if err != nil {
			t.Error(err)
		}
		results <- res
	}()
	<-spun
	cancelled := make(chan int)
	go func() { cancelled <- prov.Provider.Drain(200*time.Millisecond, time.Minute) }()
	f.Until("the provider to drain", func() bool { return prov.Provider.MarketState().Draining })
	if _, _, err := requester.RequestOffer(context.Background(), f.Requester.Peer, prov.ID, scheduler.Request{Nonce: nonce(),
		JobCID: string(wire.SumCID([]byte("j")).Bytes()), Executor: "wasm", Resources: scheduler.Resources{CPUMillis: 1, MemoryBytes: 1 << 20},
		Timeout: time.Second, MaxPrice: scheduler.Amount{Currency: "EUR", Nanos: 1e9}, ExpiresAt: time.Now().Add(5 * time.Second)}, f.Clock.Now); !errors.Is(err, &protocol.Error{Code: pb.Code_CODE_DRAINING}) {
		t.Fatalf("offer asked of a draining provider: %v, want draining", err)
	}
	if n := <-cancelled; n != 1 {
		t.Fatalf("drain cancelled %d leases, want 1", n)
	}
	res := <-results
	if res == nil || res.State != pb.LeaseState_LEASE_STATE_CANCELLED || len(res.Receipt) == 0 {
		t.Fatalf("the spinning lease's watcher got %v, want cancelled with a receipt", res)
	}
	if res, stdout, err := watch(t, f, prov, quick); err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || stdout != "quick\n" {
		t.Fatalf("the quick lease: %v %q, %v", res, stdout, err)
	}
}

var _ = provider.MaxModule
