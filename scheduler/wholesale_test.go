package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// wsSlice is 2 of mktConfig's 4 vCPUs, 2 of its 8 GiB and 1 GiB of scratch,
// granted to "retailer" for an hour from mktT0, with a day's notice.
func wsSlice() Slice {
	return Slice{
		ID: "grant-1", Grantee: "retailer",
		Resources: Resources{CPUMillis: 2000, MemoryBytes: 2 << 30, ScratchBytes: 1 << 30},
		Start:     mktT0, End: mktT0.Add(time.Hour), Notice: 24 * time.Hour,
	}
}

// wsRequest is mktRequest (1 vCPU) on the retailer's slice.
func wsRequest(nonce string) Request {
	r := mktRequest(nonce)
	r.Requester, r.Grantee = "retailer", "retailer"
	return r
}

func wsGranted(t *testing.T) *Market {
	t.Helper()
	m := mktMarket(t)
	mktWantCode(t, m.Grant(mktT0, wsSlice()), pb.Code_CODE_UNSPECIFIED)
	return m
}

// TestSliceCeiling: a retailer's offers and leases on its slice are
// refused past it, and get room back as its leases end.
func TestSliceCeiling(t *testing.T) {
	m := wsGranted(t)
	o := mktQuote(t, m, mktT0, wsRequest("a"))
	mktWantCode(t, m.Commit(mktT0, mktLease(o, "lease-a", 1)), pb.Code_CODE_UNSPECIFIED)
	mktQuote(t, m, mktT0, wsRequest("b"))
	_, err := m.Quote(mktT0, wsRequest("c"))
	mktWantCode(t, err, pb.Code_CODE_SLICE_EXCEEDED, "leave 0m cpu")
	if _, err := m.Release(mktT0.Add(time.Second), "lease-a", 1); err != nil {
		t.Fatal(err)
	}
	mktQuote(t, m, mktT0.Add(time.Second), wsRequest("c"))

	other := mktRequest("d")
	other.Grantee = "stranger"
	_, err = m.Quote(mktT0, other)
	mktWantCode(t, err, pb.Code_CODE_SLICE_EXCEEDED, "no slice")
}

// TestOwnRetailKeepsOffSlices: the site's own offers see only what is not
// granted, even while the slice is unused; the grantee still gets its own.
func TestOwnRetailKeepsOffSlices(t *testing.T) {
	m := wsGranted(t)
	mktQuote(t, m, mktT0, mktRequest("own-1"))
	mktQuote(t, m, mktT0, mktRequest("own-2"))
	_, err := m.Quote(mktT0, mktRequest("own-3"))
	mktWantCode(t, err, pb.Code_CODE_INSUFFICIENT_CPU, "0m free")
	mktQuote(t, m, mktT0, wsRequest("slice-1"))
	mktQuote(t, m, mktT0, wsRequest("slice-2"))
	if st := m.State(); st.Committed.Add(st.Reserved) != m.cfg.Capacity.Sub(Resources{MemoryBytes: 4 << 30, ScratchBytes: 10<<30 - 4*64<<20}) {
		t.Errorf("all four vCPUs held: %+v", st)
	}
}

// TestSliceEndsCapacityBack: at its end a slice's capacity is the site's
// own again, the retailer's requests are refused, and the market drops its
// wholesale state once nothing refers to it.
func TestSliceEndsCapacityBack(t *testing.T) {
	m := wsGranted(t)
	big := mktRequest("big")
	big.Resources.CPUMillis = 4000
	_, err := m.Quote(mktT0, big)
	mktWantCode(t, err, pb.Code_CODE_INSUFFICIENT_CPU)
	o := mktQuote(t, m, mktT0, wsRequest("a"))
	mktWantCode(t, m.Commit(mktT0, mktLease(o, "lease-a", 1)), pb.Code_CODE_UNSPECIFIED)

	end := wsSlice().End
	late := wsRequest("b")
	late.ExpiresAt = end.Add(time.Second)
	_, err = m.Quote(end, late)
	mktWantCode(t, err, pb.Code_CODE_SLICE_EXCEEDED)
	big.ExpiresAt = end.Add(time.Second)
	_, err = m.Quote(end, big)
	mktWantCode(t, err, pb.Code_CODE_INSUFFICIENT_CPU, "3000m free") // the retailer's lease runs on
	if _, err := m.Release(end, "lease-a", 1); err != nil {
		t.Fatal(err)
	}
	mktQuote(t, m, end, big)
	if m.whole != nil {
		t.Errorf("wholesale state kept after the slice and its lease ended: %+v", m.whole)
	}
}

// TestSliceWithdrawal: a site withdraws a slice no sooner than its notice,
// and the capacity is back at the new end.
func TestSliceWithdrawal(t *testing.T) {
	s := wsSlice()
	s.End = mktT0.Add(30 * 24 * time.Hour)
	m := mktMarket(t)
	mktWantCode(t, m.Grant(mktT0, s), pb.Code_CODE_UNSPECIFIED)
	mktWantCode(t, m.Withdraw(mktT0, s.ID, mktT0.Add(time.Hour)), pb.Code_CODE_NOTICE_TOO_SHORT, "notice of 24h0m0s")
	mktWantCode(t, m.Withdraw(mktT0, s.ID, s.End.Add(time.Hour)), pb.Code_CODE_MALFORMED)
	mktWantCode(t, m.Withdraw(mktT0, "grant-2", mktT0.Add(48*time.Hour)), pb.Code_CODE_MALFORMED)
	end := mktT0.Add(s.Notice)
	mktWantCode(t, m.Withdraw(mktT0, s.ID, end), pb.Code_CODE_UNSPECIFIED)
	if got := m.Slices(); len(got) != 1 || !got[0].End.Equal(end) {
		t.Fatalf("slices after the withdrawal: %+v", got)
	}
	big := mktRequest("big")
	big.Resources.CPUMillis = 4000
	big.ExpiresAt = end.Add(time.Second)
	_, err := m.Quote(end.Add(-time.Millisecond), big)
	mktWantCode(t, err, pb.Code_CODE_INSUFFICIENT_CPU)
	mktQuote(t, m, end, big)
}

// TestGrantChecks: a slice is granted only from what is free, is used only
// from its start, and is held apart from the grant on.
func TestGrantChecks(t *testing.T) {
	m := mktMarket(t)
	own := mktRequest("own")
	own.Resources.CPUMillis = 3000
	mktQuote(t, m, mktT0, own)
	mktWantCode(t, m.Grant(mktT0, wsSlice()), pb.Code_CODE_SLICE_FULL, "1000m cpu")
	if m.whole != nil {
		t.Error("a refused grant left wholesale state")
	}

	m = mktMarket(t)
	s := wsSlice()
	s.Start = mktT0.Add(time.Minute)
	mktWantCode(t, m.Grant(mktT0, s), pb.Code_CODE_UNSPECIFIED)
	mktWantCode(t, m.Grant(mktT0, s), pb.Code_CODE_UNSPECIFIED) // again: a no-op
	s2 := s
	s2.Resources.CPUMillis = 1000
	mktWantCode(t, m.Grant(mktT0, s2), pb.Code_CODE_REPLAYED)
	_, err := m.Quote(mktT0, wsRequest("early"))
	mktWantCode(t, err, pb.Code_CODE_SLICE_NOT_STARTED)
	_, err = m.Quote(mktT0, own)
	mktWantCode(t, err, pb.Code_CODE_INSUFFICIENT_CPU)
	onTime := wsRequest("on-time")
	onTime.ExpiresAt = s.Start.Add(time.Second)
	mktQuote(t, m, s.Start, onTime)

	bad := wsSlice()
	bad.End = bad.Start
	mktWantCode(t, m.Grant(mktT0, bad), pb.Code_CODE_MALFORMED)
	bad = wsSlice()
	bad.ID = "grant-3"
	mktWantCode(t, m.Grant(bad.End, bad), pb.Code_CODE_EXPIRED)
}

// TestNoSliceNoState: a market that grants no slice never allocates the
// wholesale state, whatever it quotes, commits and releases.
func TestNoSliceNoState(t *testing.T) {
	m := mktMarket(t)
	o := mktQuote(t, m, mktT0, mktRequest("a"))
	mktWantCode(t, m.Commit(mktT0, mktLease(o, "lease-a", 1)), pb.Code_CODE_UNSPECIFIED)
	mktQuote(t, m, mktT0, mktRequest("b"))
	if _, err := m.Release(mktT0.Add(time.Second), "lease-a", 1); err != nil {
		t.Fatal(err)
	}
	m.Expire(mktT0.Add(time.Hour))
	if m.whole != nil || m.Slices() != nil {
		t.Errorf("wholesale state without a slice: %+v", m.whole)
	}
}

// TestSliceProperty drives a market with random grants, withdrawals,
// quotes, commits and releases, own and on slices, and checks after each
// step that the site's own use plus, for each grantee, the larger of its
// slices and its use never pass capacity: a slice is never sold twice.
func TestSliceProperty(t *testing.T) {
	var granted, onSlice, refused int
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		m := mktMarket(t)
		now := mktT0
		var leases []string
		for step := range 400 {
			now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
			grantee := []string{"", "r1", "r2"}[rng.IntN(3)]
			switch op := rng.IntN(10); {
			case op == 0 && grantee != "":
				s := Slice{ID: fmt.Sprint("g", step), Grantee: grantee, Start: now.Add(time.Duration(rng.IntN(3)) * time.Second),
					Resources: Resources{CPUMillis: uint64(rng.IntN(3)) * 500, MemoryBytes: uint64(rng.IntN(3)) << 29},
					End:       now.Add(time.Duration(1+rng.IntN(60)) * time.Second), Notice: 5 * time.Second}
				if m.Grant(now, s) == nil {
					granted++
				}
			case op == 1 && len(m.Slices()) > 0:
				s := m.Slices()[rng.IntN(len(m.Slices()))]
				m.Withdraw(now, s.ID, now.Add(time.Duration(rng.IntN(10))*time.Second))
			case op < 7:
				r := mktRequest(fmt.Sprint("n", step))
				r.Grantee, r.ExpiresAt = grantee, now.Add(time.Second)
				r.Resources = Resources{CPUMillis: uint64(1+rng.IntN(4)) * 250, MemoryBytes: uint64(1+rng.IntN(4)) << 28}
				o, err := m.Quote(now, r)
				switch c := protocol.CodeOf(err); {
				case err == nil && grantee != "":
					onSlice++
				case c == pb.Code_CODE_SLICE_EXCEEDED || c == pb.Code_CODE_INSUFFICIENT_CPU || c == pb.Code_CODE_INSUFFICIENT_MEMORY:
					refused++
				}
				if err == nil && rng.IntN(2) == 0 {
					id := fmt.Sprint("l", step)
					if m.Commit(now, mktLease(o, id, 1)) == nil {
						leases = append(leases, id)
					}
				}
			case len(leases) > 0:
				i := rng.IntN(len(leases))
				m.Release(now, leases[i], 1)
				leases = append(leases[:i], leases[i+1:]...)
			}
			m.Expire(now)
			used := m.committed.Add(m.reserved)
			if w := m.whole; w != nil {
				held := map[string]Resources{}
				for _, s := range w.slices {
					held[s.Grantee] = held[s.Grantee].Add(s.Resources)
				}
				for g, u := range w.use {
					used = used.Sub(u)
					held[g] = maxRes(held[g], u)
				}
				for _, h := range held {
					used = used.Add(h)
				}
			}
			if !used.Fits(m.cfg.Capacity) {
				t.Fatalf("seed %d step %d: own use and slices %s pass capacity %s", seed, step, fmtResources(used), fmtResources(m.cfg.Capacity))
			}
		}
	}
	t.Logf("%d slices granted, %d offers on slices, %d refused for room", granted, onSlice, refused)
	if granted == 0 || onSlice == 0 || refused == 0 {
		t.Error("the random walk missed a case: change its odds")
	}
}

func maxRes(a, b Resources) Resources {
	return Resources{max(a.CPUMillis, b.CPUMillis), max(a.MemoryBytes, b.MemoryBytes), max(a.ScratchBytes, b.ScratchBytes)}
}

// TestRevoke: a slice revoked (a grant never answered) gives its capacity
// back at once, whatever its notice.
func TestRevoke(t *testing.T) {
	m := wsGranted(t)
	big := mktRequest("big")
	big.Resources.CPUMillis = 4000
	_, err := m.Quote(mktT0, big)
	mktWantCode(t, err, pb.Code_CODE_INSUFFICIENT_CPU)
	m.Revoke("grant-2") // not held: nothing
	m.Revoke(wsSlice().ID)
	if len(m.Slices()) != 0 {
		t.Fatalf("slices after Revoke: %+v", m.Slices())
	}
	mktQuote(t, m, mktT0, big)
}

// TestWholesaleKeys: a site announces its jurisdiction under the wholesale
// facet in one shard per 4 vCPUs it grants, consecutive from its own, at
// most the facet's 16 (SPEC 4.5).
func TestWholesaleKeys(t *testing.T) {
	for _, tt := range []struct {
		cpu  uint64
		want int
	}{{1000, 1}, {8000, 2}, {9000, 3}, {1_000_000, 16}} {
		keys := WholesaleKeys("site-1", "fr", Resources{CPUMillis: tt.cpu})
		if len(keys) != tt.want {
			t.Errorf("%dm CPU: %d keys, want %d", tt.cpu, len(keys), tt.want)
		}
		first := protocol.ShardOf(protocol.FacetWholesale, "site-1")
		for i, k := range keys {
			if want := fmt.Sprintf("cuivre/v1/wholesale=fr/shard=%d", (first+uint32(i))%16); k.String() != want {
				t.Errorf("key %d = %s, want %s", i, k, want)
			}
		}
	}
	if keys := WholesaleKeys("site-1", "not a value!", Resources{CPUMillis: 1000}); len(keys) != 0 {
		t.Errorf("keys of an invalid jurisdiction: %v", keys)
	}
}

// TestResize: a market resized sells what it is given, zero included,
// and keeps the leases it holds.
func TestResize(t *testing.T) {
	m := mktMarket(t)
	o := mktQuote(t, m, mktT0, mktRequest("a"))
	mktWantCode(t, m.Commit(mktT0, mktLease(o, "lease-a", 1)), pb.Code_CODE_UNSPECIFIED)
	m.Resize(Resources{})
	_, err := m.Quote(mktT0, mktRequest("b"))
	mktWantCode(t, err, pb.Code_CODE_INSUFFICIENT_CPU)
	if _, err := m.Release(mktT0.Add(time.Second), "lease-a", 1); err != nil {
		t.Fatalf("a lease made before the market shrank: %v", err)
	}
	m.Resize(Resources{CPUMillis: 2000, MemoryBytes: 2 << 30, ScratchBytes: 1 << 30})
	mktQuote(t, m, mktT0.Add(time.Second), mktRequest("c"))
	if st := m.State(); st.Capacity.CPUMillis != 2000 {
		t.Errorf("capacity after Resize: %+v", st.Capacity)
	}
}
