package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

const (
	accepted  = pb.LeaseState_LEASE_STATE_ACCEPTED
	fetching  = pb.LeaseState_LEASE_STATE_FETCHING
	running   = pb.LeaseState_LEASE_STATE_RUNNING
	succeeded = pb.LeaseState_LEASE_STATE_SUCCEEDED
	failed    = pb.LeaseState_LEASE_STATE_FAILED
	cancelled = pb.LeaseState_LEASE_STATE_CANCELLED
	expired   = pb.LeaseState_LEASE_STATE_EXPIRED
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cuivre.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func reopen(t testing.TB, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

// fill returns n deterministic bytes derived from seed.
func fill(seed string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", seed, i))
		out = append(out, h[:]...)
	}
	return out[:n]
}

func testID(i int) string { return string(fill(fmt.Sprint("lease", i), protocol.LeaseIDSize)) }

func at(ms int64) time.Time { return time.UnixMilli(1_750_000_000_000 + ms).UTC() }

// testLease returns lease i at epoch, every field set, as the crash test's
// child writes it and its parent checks it. Some envelopes span several pages.
func testLease(i int, epoch uint64) Lease {
	size := 300 + 97*(i%7)
	if i%5 == 0 {
		size = 9000
	}
	return Lease{
		ID:         testID(i),
		Epoch:      epoch,
		Requester:  string(fill(fmt.Sprint("requester", i%3), 38)),
		JobCID:     string(wire.SumCID(fmt.Appendf(nil, "job %d", i)).Bytes()),
		OfferNonce: string(fill(fmt.Sprint("offer", i, epoch), protocol.NonceSize)),
		ExpiresAt:  at(int64(i) + 2000),
		Envelope:   fill(fmt.Sprint("lease envelope", i, epoch), size),
		Job:        fill(fmt.Sprint("job envelope", i), size/2),
		State:      accepted,
		Reserved:   scheduler.Resources{CPUMillis: 500 + uint64(i), MemoryBytes: 64 << 20, ScratchBytes: 1 << 20},
		Timeout:    30 * time.Second,
		Price:      scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 12_000, MemoryNanosPerGiBSecond: 3_000, EgressNanosPerGiB: 10_000_000},
		Total:      scheduler.Amount{Currency: "EUR", Nanos: 1_234_567 + uint64(i)},
		Committed:  at(int64(i)),
	}
}

func testReceipt(i int, epoch uint64) Receipt {
	return Receipt{LeaseID: testID(i), Epoch: epoch, Envelope: fill(fmt.Sprint("receipt", i, epoch), 420)}
}

func wantCode(t *testing.T, err error, code pb.Code) {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("error %v, want a *protocol.Error with code %s", err, code)
	}
}

func TestLeaseRoundTrip(t *testing.T) {
	s, path := openTemp(t)
	want := testLease(1, 1)
	if err := s.PutLease(want); err != nil {
		t.Fatal(err)
	}
	done := testLease(2, 3)
	if err := s.PutLease(done); err != nil {
		t.Fatal(err)
	}
	for _, st := range []pb.LeaseState{fetching, running} {
		if _, err := s.MarkLeaseState(done.ID, done.Epoch, st, at(5), nil); err != nil {
			t.Fatal(err)
		}
	}
	out := &Outcome{ExitCode: 3, OutputCID: "out", StdoutCID: "so", StderrCID: "se", Error: protocol.Errorf(pb.Code_CODE_TIMEOUT, "ran past 30s")}
	got, err := s.MarkLeaseState(done.ID, done.Epoch, failed, at(9), out)
	if err != nil {
		t.Fatal(err)
	}
	done.State, done.Started, done.Ended = failed, at(5), at(9)
	done.ExitCode, done.OutputCID, done.StdoutCID, done.StderrCID, done.Error = 3, "out", "so", "se", out.Error
	if diff := cmp.Diff(done, got); diff != "" {
		t.Errorf("MarkLeaseState returned (-want +got):\n%s", diff)
	}
	// Times come back to the millisecond, in UTC, whatever went in.
	sub := testLease(3, 1)
	sub.Committed = time.Date(2026, 1, 2, 3, 4, 5, 678_999_999, time.FixedZone("CET", 3600))
	if err := s.PutLease(sub); err != nil {
		t.Fatal(err)
	}
	sub.Committed = sub.Committed.Truncate(time.Millisecond).UTC()

	for round := range 2 {
		st := s
		if round == 1 {
			st = reopen(t, s, path)
		}
		for _, w := range []Lease{want, done, sub} {
			got, err := st.Lease(w.ID, w.Epoch)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if diff := cmp.Diff(w, got); diff != "" {
				t.Errorf("round %d: lease (-want +got):\n%s", round, diff)
			}
		}
	}
}

func TestLeaseNotFound(t *testing.T) {
	s, _ := openTemp(t)
	for _, id := range []string{testID(1), "short"} {
		if _, err := s.Lease(id, 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lease(%x): %v, want ErrNotFound", id, err)
		}
		if _, err := s.LatestLease(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("LatestLease(%x): %v, want ErrNotFound", id, err)
		}
		if _, err := s.MarkLeaseState(id, 1, fetching, at(0), nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("MarkLeaseState(%x): %v, want ErrNotFound", id, err)
		}
	}
}

func TestLeaseFencing(t *testing.T) {
	s, _ := openTemp(t)
	id := testID(7)
	if err := s.PutLease(testLease(7, 2)); err != nil {
		t.Fatal(err)
	}
	err := s.PutLease(testLease(7, 1))
	wantCode(t, err, protocol.CodeStaleEpoch)
	if !errors.Is(err, protocol.ErrStaleEpoch) {
		t.Errorf("%v is not protocol.ErrStaleEpoch", err)
	}
	if _, err := s.Lease(id, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused epoch was stored: %v", err)
	}
	// A higher epoch is accepted, and the older one stays readable.
	if err := s.PutLease(testLease(7, 5)); err != nil {
		t.Fatal(err)
	}
	l, err := s.LatestLease(id)
	if err != nil || l.Epoch != 5 {
		t.Fatalf("LatestLease: epoch %d, %v; want 5", l.Epoch, err)
	}
	if _, err := s.Lease(id, 2); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.PutLease(testLease(7, 4)), protocol.CodeStaleEpoch)
	// Another lease ID is fenced on its own.
	if err := s.PutLease(testLease(8, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseUpdate(t *testing.T) {
	s, _ := openTemp(t)
	l := testLease(1, 1)
	if err := s.PutLease(l); err != nil {
		t.Fatal(err)
	}
	t.Run("same epoch, another offer", func(t *testing.T) {
		o := l
		o.OfferNonce = string(fill("other offer", protocol.NonceSize))
		wantCode(t, s.PutLease(o), protocol.CodeReplayed)
	})
	t.Run("same epoch, another envelope", func(t *testing.T) {
		o := l
		o.Envelope = fill("other", 100)
		wantCode(t, s.PutLease(o), protocol.CodeReplayed)
	})
	t.Run("legal update", func(t *testing.T) {
		o := l
		o.State = fetching
		if err := s.PutLease(o); err != nil {
			t.Fatal(err)
		}
		if err := s.PutLease(o); err != nil {
			t.Fatalf("same state again: %v", err)
		}
	})
	t.Run("illegal update", func(t *testing.T) {
		o := l
		o.State = accepted
		if err := s.PutLease(o); !errors.Is(err, ErrTransition) {
			t.Fatalf("FETCHING -> ACCEPTED: %v, want ErrTransition", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for name, f := range map[string]func(*Lease){
			"short id":        func(l *Lease) { l.ID = "abc" },
			"epoch 0":         func(l *Lease) { l.Epoch = 0 },
			"no state":        func(l *Lease) { l.State = pb.LeaseState_LEASE_STATE_UNSPECIFIED },
			"unknown state":   func(l *Lease) { l.State = 99 },
			"new, not ACCEPT": func(l *Lease) { l.ID = testID(99); l.State = running },
		} {
			o := testLease(2, 1)
			f(&o)
			if err := s.PutLease(o); err == nil {
				t.Errorf("%s: stored", name)
			}
		}
	})
}

func TestMarkLeaseState(t *testing.T) {
	tests := []struct {
		path []pb.LeaseState // from ACCEPTED; the last move is the one tested
		ok   bool
	}{
		{[]pb.LeaseState{fetching, running, succeeded}, true},
		{[]pb.LeaseState{fetching, running, failed}, true},
		{[]pb.LeaseState{fetching, failed}, true},
		{[]pb.LeaseState{cancelled}, true},
		{[]pb.LeaseState{expired}, true},
		{[]pb.LeaseState{fetching, expired}, true},
		{[]pb.LeaseState{running}, false},
		{[]pb.LeaseState{succeeded}, false},
		{[]pb.LeaseState{accepted}, false},
		{[]pb.LeaseState{fetching, running, expired}, false},
		{[]pb.LeaseState{fetching, running, succeeded, failed}, false},
		{[]pb.LeaseState{cancelled, running}, false},
		{[]pb.LeaseState{expired, expired}, false},
		{[]pb.LeaseState{fetching, pb.LeaseState_LEASE_STATE_UNSPECIFIED}, false},
	}
	s, _ := openTemp(t)
	for i, tt := range tests {
		t.Run(fmt.Sprint(tt.path), func(t *testing.T) {
			l := testLease(i, 1)
			if err := s.PutLease(l); err != nil {
				t.Fatal(err)
			}
			last := len(tt.path) - 1
			for _, st := range tt.path[:last] {
				if _, err := s.MarkLeaseState(l.ID, 1, st, at(1), nil); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := s.Lease(l.ID, 1)
			got, err := s.MarkLeaseState(l.ID, 1, tt.path[last], at(2), nil)
			if !tt.ok {
				if !errors.Is(err, ErrTransition) {
					t.Fatalf("%s -> %s: %v, want ErrTransition", before.State, tt.path[last], err)
				}
				after, _ := s.Lease(l.ID, 1)
				if diff := cmp.Diff(before, after); diff != "" {
					t.Errorf("a refused move changed the record (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.path[last] {
				t.Errorf("state %s, want %s", got.State, tt.path[last])
			}
			if protocol.Final(got.State) && !got.Ended.Equal(at(2)) {
				t.Errorf("Ended %s, want %s", got.Ended, at(2))
			}
		})
	}
	t.Run("outcome with a live state", func(t *testing.T) {
		l := testLease(100, 1)
		if err := s.PutLease(l); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MarkLeaseState(l.ID, 1, fetching, at(1), &Outcome{ExitCode: 1}); err == nil {
			t.Fatal("stored an outcome with FETCHING")
		}
	})
}

func TestLeasesOrderAndLive(t *testing.T) {
	s, _ := openTemp(t)
	var want []Lease
	for i := range 20 {
		for e := uint64(1); e <= uint64(1+i%3); e++ {
			l := testLease(i, e)
			if err := s.PutLease(l); err != nil {
				t.Fatal(err)
			}
			if i%4 == 0 {
				var err error
				if l, err = s.MarkLeaseState(l.ID, e, cancelled, at(3), nil); err != nil {
					t.Fatal(err)
				}
			}
			want = append(want, l)
		}
	}
	slices.SortFunc(want, func(a, b Lease) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return int(a.Epoch) - int(b.Epoch)
	})
	all, err := s.Leases(nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("Leases (-want +got):\n%s", diff)
	}
	live, err := s.LiveLeases()
	if err != nil {
		t.Fatal(err)
	}
	wantLive := slices.DeleteFunc(slices.Clone(want), func(l Lease) bool { return protocol.Final(l.State) })
	if diff := cmp.Diff(wantLive, live); diff != "" {
		t.Errorf("LiveLeases (-want +got):\n%s", diff)
	}
	if len(wantLive) == 0 || len(wantLive) == len(want) {
		t.Fatalf("the test needs live and final leases: %d of %d live", len(wantLive), len(want))
	}
}

// TestCallerOwnsSlices: changing a returned record, or the one passed in,
// changes nothing stored.
func TestCallerOwnsSlices(t *testing.T) {
	s, _ := openTemp(t)
	l := testLease(1, 1)
	if err := s.PutLease(l); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(l.Envelope)
	l.Envelope[0] ^= 0xff
	got, err := s.Lease(l.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	got.Envelope[1] ^= 0xff
	again, _ := s.Lease(l.ID, 1)
	if !bytes.Equal(again.Envelope, want) {
		t.Fatal("a stored envelope changed with the caller's slice")
	}
}

func TestReceipts(t *testing.T) {
	s, path := openTemp(t)
	r := testReceipt(1, 2)
	if err := s.PutReceipt(r); err != nil {
		t.Fatal(err)
	}
	if err := s.PutReceipt(r); err != nil {
		t.Fatalf("the same receipt again: %v", err)
	}
	other := r
	other.Envelope = fill("another receipt", 420)
	wantCode(t, s.PutReceipt(other), protocol.CodeReplayed)

	cs := fill("countersignature", 180)
	if err := s.Countersign(r.LeaseID, r.Epoch, cs); err != nil {
		t.Fatal(err)
	}
	if err := s.Countersign(r.LeaseID, r.Epoch, fill("a second countersignature", 180)); err != nil {
		t.Fatalf("countersigning again: %v", err)
	}
	if _, err := s.Receipt(testID(9), 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("Receipt of nothing: %v, want ErrNotFound", err)
	}
	if err := s.Countersign(testID(9), 1, cs); !errors.Is(err, ErrNotFound) {
		t.Errorf("Countersign of nothing: %v, want ErrNotFound", err)
	}

	// Fencing: an older epoch than a stored receipt or lease is refused.
	wantCode(t, s.PutReceipt(testReceipt(1, 1)), protocol.CodeStaleEpoch)
	if err := s.PutLease(testLease(3, 4)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.PutReceipt(testReceipt(3, 3)), protocol.CodeStaleEpoch)
	if err := s.PutReceipt(testReceipt(3, 4)); err != nil {
		t.Fatal(err)
	}
	// A receipt stored with its countersignature (the requester's side).
	withCS := testReceipt(2, 1)
	withCS.Countersignature = fill("cs 2", 180)
	if err := s.PutReceipt(withCS); err != nil {
		t.Fatal(err)
	}
	// Countersigning an epoch a newer lease has replaced is refused.
	if err := s.PutLease(testLease(3, 5)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.Countersign(testID(3), 4, cs), protocol.CodeStaleEpoch)

	r.Countersignature = cs
	want := []Receipt{r, withCS, testReceipt(3, 4)}
	slices.SortFunc(want, func(a, b Receipt) int { return strings.Compare(a.LeaseID, b.LeaseID) })
	for round := range 2 {
		st := s
		if round == 1 {
			st = reopen(t, s, path)
		}
		got, err := st.Receipts()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round %d: Receipts (-want +got):\n%s", round, diff)
		}
	}
}

func testJob(i int) Job {
	return Job{
		CID:       string(wire.SumCID(fmt.Appendf(nil, "job %d", i)).Bytes()),
		Envelope:  fill(fmt.Sprint("job", i), 700),
		SpecFile:  fmt.Sprintf("examples/jobs/job%d.yaml", i),
		Submitted: at(int64(i)),
		State:     scheduler.JobRunning,
		Code:      1004,
		History:   []string{"0s placing", "12ms leased on provider A"},
		Events: []SlotEvent{
			{At: at(3), Slot: 0, Epoch: 1, Provider: "provider C", Kind: EventLeased},
			{At: at(5), Slot: 0, Epoch: 1, Provider: "provider C", Kind: EventLost},
			{At: at(6), Slot: 0, Epoch: 2, Provider: "provider A", Kind: EventLeased},
			{At: at(20), Slot: 0, Epoch: 2, Provider: "provider A", Kind: EventEnded},
		},
		Slots: []Slot{
			{
				LeaseID: testID(i), Epoch: 2, Provider: "provider A", State: scheduler.SlotSucceeded,
				Lease: fill("sent lease", 900), Price: scheduler.Amount{Currency: "EUR", Nanos: 42},
				Labels: scheduler.NewLabels(scheduler.Label{Key: "operator", Value: "a"}, scheduler.Label{Key: "region", Value: "fr-par"}),
				Result: &Result{
					State: succeeded, ExitCode: 0, OutputCID: "output", StdoutCID: "stdout", StderrCID: "stderr",
					Started: at(10), Ended: at(20), StdoutCut: true,
				},
			},
			{
				LeaseID: testID(i + 1000), Epoch: 1, Provider: "provider B", State: scheduler.SlotFailed,
				Lease: fill("sent lease 2", 900),
				Result: &Result{
					State: failed, ExitCode: 2, Started: at(10), Ended: at(11),
					Error: protocol.Errorf(pb.Code_CODE_INTERNAL, "trap"),
				},
			},
			{LeaseID: testID(i + 2000), State: scheduler.SlotPending},
		},
	}
}

func TestJobs(t *testing.T) {
	s, path := openTemp(t)
	var want []Job
	for i := range 5 {
		j := testJob(i)
		if err := s.PutJob(j); err != nil {
			t.Fatal(err)
		}
		want = append(want, j)
	}
	slices.SortFunc(want, func(a, b Job) int { return strings.Compare(a.CID, b.CID) })

	// Fencing a slot: the same lease at an older epoch is refused.
	stale := testJob(0)
	stale.Slots[0].Epoch = 1
	wantCode(t, s.PutJob(stale), protocol.CodeStaleEpoch)
	// Another lease in the slot, or a newer epoch, is fine.
	newer := testJob(1)
	newer.Slots[0].Epoch = 3
	newer.Slots[0].Result = nil
	newer.State = scheduler.JobSucceeded
	if err := s.PutJob(newer); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if want[i].CID == newer.CID {
			want[i] = newer
		}
	}
	for name, f := range map[string]func(*Job){
		"bad cid":      func(j *Job) { j.CID = "not a cid" },
		"no envelope":  func(j *Job) { j.Envelope = nil },
		"no state":     func(j *Job) { j.State = 0 },
		"bad slot":     func(j *Job) { j.Slots[2].State = 42 },
		"bad event":    func(j *Job) { j.Events[0].Kind = 42 },
		"empty cid":    func(j *Job) { j.CID = "" },
		"cidv0 sha256": func(j *Job) { j.CID = "\x12\x20" + strings.Repeat("x", 32) },
	} {
		j := testJob(9)
		f(&j)
		if err := s.PutJob(j); err == nil {
			t.Errorf("%s: stored", name)
		}
	}
	if _, err := s.Job(testJob(9).CID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Job of nothing: %v, want ErrNotFound", err)
	}

	for round := range 2 {
		st := s
		if round == 1 {
			st = reopen(t, s, path)
		}
		got, err := st.Jobs(nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round %d: Jobs (-want +got):\n%s", round, diff)
		}
		one, err := st.Job(want[2].CID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want[2], one); diff != "" {
			t.Errorf("round %d: Job (-want +got):\n%s", round, diff)
		}
		done, err := st.Jobs(func(j *Job) bool { return j.State.Final() })
		if err != nil || len(done) != 1 || done[0].CID != newer.CID {
			t.Errorf("round %d: Jobs(final) = %d jobs, %v; want the one succeeded", round, len(done), err)
		}
	}
}

func TestNonces(t *testing.T) {
	s, path := openTemp(t)
	now := at(10_000)
	nowMs := protocol.UnixMs(now)
	nonce := func(i int) []byte { return fill(fmt.Sprint("nonce", i), protocol.NonceSize) }
	var want []Nonce
	for i := range 10 {
		exp := nowMs - 5000 + uint64(i)*1000 // 0..5 expired at now (exp <= now), 6..9 live
		if err := s.AddNonce(nonce(i), exp); err != nil {
			t.Fatal(err)
		}
		if exp > nowMs {
			want = append(want, Nonce{nonce(i), exp})
		}
	}
	// Adding again keeps the later expiry: nonce 0 is extended, nonce 9 not shortened.
	if err := s.AddNonce(nonce(0), nowMs+60_000); err != nil {
		t.Fatal(err)
	}
	if err := s.AddNonce(nonce(9), nowMs); err != nil {
		t.Fatal(err)
	}
	want = append(want, Nonce{nonce(0), nowMs + 60_000})
	if err := s.AddNonce([]byte("short"), nowMs+1); err == nil {
		t.Error("stored a 5-byte nonce")
	}

	s = reopen(t, s, path)
	got, err := s.Nonces(now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Nonces (-want +got):\n%s", diff)
	}
	// The expired were pruned in that transaction, from both buckets.
	err = s.db.View(func(tx *bolt.Tx) error {
		if n, m := tx.Bucket(bucketNonces).Stats().KeyN, tx.Bucket(bucketNonceExp).Stats().KeyN; n != len(want) || m != len(want) {
			t.Errorf("after pruning: %d nonces, %d index keys; want %d", n, m, len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneNonces(now); n != 0 || err != nil {
		t.Errorf("PruneNonces again: %d, %v; want 0", n, err)
	}
	if n, err := s.PruneNonces(protocol.FromUnixMs(nowMs + 4000)); n != 4 || err != nil {
		t.Errorf("PruneNonces 4 s later: %d, %v; want 4", n, err)
	}

	// The reload: a replay cache filled from the store refuses those nonces.
	cache := protocol.NewReplayCache(100)
	for _, n := range got {
		cache.Add(n.Value, n.ExpiresAtMs)
	}
	wantCode(t, cache.Check(nonce(0), nowMs+60_000, now), protocol.CodeReplayed)
	if err := cache.Check(nonce(42), nowMs+1000, now); err != nil {
		t.Errorf("a fresh nonce: %v", err)
	}
}

// TestCommitTogether: a lease, its nonce and an older epoch's end commit in
// one transaction, or not at all.
func TestCommitTogether(t *testing.T) {
	s, _ := openTemp(t)
	old := testLease(1, 1)
	if err := s.PutLease(old); err != nil {
		t.Fatal(err)
	}
	nonce := fill("lease nonce", protocol.NonceSize)
	commit := func(l Lease) error {
		return s.Update(func(tx *Tx) error {
			if _, err := tx.MarkLeaseState(l.ID, l.Epoch-1, cancelled, at(1), nil); err != nil {
				return err
			}
			if err := tx.AddNonce(nonce, protocol.UnixMs(at(1_000_000))); err != nil {
				return err
			}
			return tx.PutLease(l)
		})
	}
	bad := testLease(1, 2)
	bad.State = running // refused: a new lease is ACCEPTED
	if err := commit(bad); err == nil {
		t.Fatal("committed a bad lease")
	}
	if l, _ := s.Lease(old.ID, 1); l.State != accepted {
		t.Fatalf("a failed transaction left epoch 1 %s", l.State)
	}
	if ns, _ := s.Nonces(at(0)); len(ns) != 0 {
		t.Fatalf("a failed transaction left %d nonces", len(ns))
	}
	if err := commit(testLease(1, 2)); err != nil {
		t.Fatal(err)
	}
	if ns, _ := s.Nonces(at(0)); len(ns) != 1 {
		t.Fatalf("%d nonces after the commit, want 1", len(ns))
	}
	live, _ := s.LiveLeases()
	if len(live) != 1 || live[0].Epoch != 2 {
		t.Fatalf("live leases %v, want epoch 2 only", live)
	}
	// Writes in View fail.
	if err := s.View(func(tx *Tx) error { return tx.AddNonce(nonce, protocol.UnixMs(at(2_000_000))) }); err == nil {
		t.Fatal("wrote in a read-only transaction")
	}
}

func TestConcurrent(t *testing.T) {
	s, _ := openTemp(t)
	var wg sync.WaitGroup
	const workers, each = 8, 10
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				if err := s.PutLease(testLease(n, 1)); err != nil {
					errs <- err
					return
				}
				if _, err := s.Lease(testID(n), 1); err != nil {
					errs <- err
					return
				}
				if _, err := s.LiveLeases(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, _ := s.Leases(nil)
	if len(all) != workers*each {
		t.Fatalf("%d leases, want %d", len(all), workers*each)
	}
}

func TestOpenLocked(t *testing.T) {
	s, path := openTemp(t)
	start := time.Now()
	s2, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("a second Open of the same file succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the second Open took %s to fail", d)
	}
	for _, want := range []string{path, "locked by another process", "another cuivre daemon"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The first store is unharmed.
	if err := s.PutLease(testLease(1, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Run("newer schema", func(t *testing.T) {
		s, path := openTemp(t)
		if err := s.PutLease(testLease(1, 1)); err != nil {
			t.Fatal(err)
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err = Open(path, Options{})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d, newer than", SchemaVersion+1)) || !strings.Contains(err.Error(), "upgrade cuivre") {
			t.Fatalf("Open of a newer schema: %v", err)
		}
		// Refusing wrote nothing: the version is still the newer one.
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.View(func(tx *bolt.Tx) error {
			if v := binary.BigEndian.Uint32(tx.Bucket(bucketMeta).Get(keySchema)); v != SchemaVersion+1 {
				t.Errorf("schema version %d after a refused Open", v)
			}
			return nil
		})
	})
	t.Run("not a cuivre store", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
		db.Close()
		if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "not a cuivre store") {
			t.Fatalf("Open of a foreign bbolt file: %v", err)
		}
	})
	t.Run("not bbolt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "junk.db")
		if err := os.WriteFile(path, fill("junk", 64<<10), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "not a readable bbolt file") {
			t.Fatalf("Open of junk: %v", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{LockTimeout: -1}); err == nil {
			t.Fatal("a negative lock timeout was accepted")
		}
	})
}

// TestFileMode: the store and its module dir are the operator's alone.
func TestFileMode(t *testing.T) {
	_, path := openTemp(t)
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Join(filepath.Dir(path), "modules"): 0o700 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %s, want %s", p, fi.Mode(), want)
		}
	}
}
