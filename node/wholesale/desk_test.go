package wholesale

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// world joins desks in memory: each asks the others through Answer, and
// reads their tariffs as sealed, as the DHT would hand them over.
type world struct {
	mu    sync.Mutex
	desks map[string]*Desk
	clock *clock.Fake
	// rewrite, if set, changes the answer a desk gives (a cheating site).
	rewrite func(from, to string, a *pb.WholesaleAnswer) *pb.WholesaleAnswer
}

type link struct {
	w    *world
	self string
}

func (l link) Wholesale(ctx context.Context, to string, req *pb.WholesaleRequest) (*pb.WholesaleAnswer, error) {
	l.w.mu.Lock()
	d, rw := l.w.desks[to], l.w.rewrite
	l.w.mu.Unlock()
	if d == nil {
		return nil, errors.New("no route to peer")
	}
	a := d.Answer(ctx, l.self, req)
	if rw != nil {
		a = rw(l.self, to, a)
	}
	return a, nil
}

func (l link) Tariff(_ context.Context, site peer.ID) (*pb.WholesaleTariff, []byte, error) {
	l.w.mu.Lock()
	d := l.w.desks[string(site)]
	l.w.mu.Unlock()
	if d == nil {
		return nil, nil, errors.New("routing: not found")
	}
	_, env, err := d.Tariff()
	if err != nil {
		return nil, nil, err
	}
	t, err := record.OpenTariff(env, l.w.clock.Now())
	return t, env, err
}

// market is the site's scheduler market behind a lock, as the provider
// keeps it.
type market struct {
	mu    sync.Mutex
	m     *scheduler.Market
	clock clock.Clock
}

func (m *market) Grant(s scheduler.Slice) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m.Grant(m.clock.Now(), s)
}

func (m *market) Withdraw(id string, end time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m.Withdraw(m.clock.Now(), id, end)
}

func (m *market) Revoke(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m.Revoke(id)
}

func (m *market) free() scheduler.Resources {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m.Expire(m.clock.Now())
	return m.m.State().Free
}

// terms are a site's: 8 vCPUs and 32 GiB sold, half of it for slices of at
// least 1 vCPU and 1 GiB for an hour, with a day's notice.
func terms() config.TariffTerms {
	c := config.Default()
	c.Wholesale.Enabled, c.Labels.Jurisdiction, c.Labels.Certifications = true, "fr", []string{"secnumcloud"}
	return c.Tariff(scheduler.Resources{CPUMillis: 8000, MemoryBytes: 32 << 30, ScratchBytes: 100 << 30})
}

type member struct {
	*Desk
	key    crypto.PrivKey
	id     peer.ID
	path   string
	store  *store.Store
	market *market // a site's
}

func (w *world) join(t *testing.T, site bool) *member {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	m := &member{key: k, id: id, path: filepath.Join(t.TempDir(), "cuivre.db")}
	if site {
		mc := scheduler.MarketConfig{Provider: string(id), Capacity: scheduler.Resources{CPUMillis: 8000, MemoryBytes: 32 << 30, ScratchBytes: 100 << 30},
			Executors: []string{"wasm"}, Pricing: scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 10_000}}}
		sm, err := scheduler.NewMarket(mc)
		if err != nil {
			t.Fatal(err)
		}
		m.market = &market{m: sm, clock: w.clock}
	}
	w.open(t, m)
	return m
}

// open (re)opens a member's store and desk, as a daemon does at start.
func (w *world) open(t *testing.T, m *member) {
	t.Helper()
	s, err := store.Open(m.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := Config{Key: m.key, Store: s, Net: link{w, string(m.id)}, Clock: w.clock, Log: slog.New(slog.DiscardHandler)}
	if m.market != nil {
		tt := terms()
		c.Market, c.Terms = m.market, &tt
	}
	d, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	m.Desk, m.store = d, s
	w.mu.Lock()
	w.desks[string(m.id)] = d
	w.mu.Unlock()
}

func newWorld() *world { return &world{desks: map[string]*Desk{}, clock: clock.NewFake(t0)} }

func wantCode(t *testing.T, err error, code pb.Code, in string) {
	t.Helper()
	if got := protocol.CodeOf(err); got != code || !strings.Contains(err.Error(), in) {
		t.Fatalf("err = %v (%s), want %s containing %q", err, got, code, in)
	}
}

func ask(site *member, cpu uint64, mem uint64, d time.Duration) Ask {
	return Ask{Site: site.id, Resources: scheduler.Resources{CPUMillis: cpu, MemoryBytes: mem}, End: t0.Add(d)}
}

// TestGrantAtTheTariff: two retailers get slices at the published tariff,
// each stored on both sides and held in the site's market; the site's own
// retail keeps off them; a third retailer past the tariff's capacity is
// refused CODE_SLICE_FULL with when to retry.
func TestGrantAtTheTariff(t *testing.T) {
	w := newWorld()
	site, a, b, c := w.join(t, true), w.join(t, false), w.join(t, false), w.join(t, false)
	ctx := context.Background()
	tariff, _, err := site.Tariff()
	if err != nil {
		t.Fatal(err)
	}
	ga, err := a.Request(ctx, ask(site, 2000, 8<<30, 2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Request(ctx, ask(site, 2000, 8<<30, 3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ga.Site != site.id || ga.Grantee != a.id || ga.Made || ga.State != "active" || ga.Price.CPUNanosPerSecond != tariff.Price.CpuNanosPerSecond {
		t.Errorf("retailer's view of its grant: %+v", ga)
	}
	if want, _ := ga.Price.Cost(ga.Resources, 2*time.Hour); ga.Cost != want || want == 0 {
		t.Errorf("slice cost %d, want %d for the whole slice", ga.Cost, want)
	}
	if got := site.market.free(); got.CPUMillis != 4000 {
		t.Errorf("site's own retail has %dm CPU free, want 4000m: the slices are held apart", got.CPUMillis)
	}
	if made := site.Grants(); len(made) != 2 || !made[0].Made {
		t.Errorf("site's grants: %+v", made)
	}
	w.clock.Advance(90 * time.Minute)
	_, err = c.Request(ctx, ask(site, 1000, 1<<30, 3*time.Hour))
	wantCode(t, err, pb.Code_CODE_SLICE_FULL, "no room")
	if ra := protocol.RetryAfterOf(err); ra != 30*time.Minute {
		t.Errorf("retry after %s, want 30m, the soonest end", ra)
	}
	for _, m := range []*member{site, a} {
		if _, err := m.store.Grant(ga.ID); err != nil {
			t.Errorf("grant not stored: %v", err)
		}
	}
}

// TestSliceRefusals: each check of SPEC 6.7's site steps refuses with its
// code and says why.
func TestSliceRefusals(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	ctx := context.Background()
	_, err := r.Request(ctx, ask(site, 500, 8<<30, 2*time.Hour))
	wantCode(t, err, pb.Code_CODE_SLICE_BELOW_MINIMUM, "below the minimum")
	_, err = r.Request(ctx, ask(site, 1000, 1<<30, 30*time.Minute))
	wantCode(t, err, pb.Code_CODE_SLICE_BELOW_MINIMUM, "shorter than the minimum")
	_, err = site.Request(ctx, ask(r, 1000, 1<<30, time.Hour))
	if err == nil {
		t.Fatal("a retailer that publishes no tariff granted a slice")
	}
	_, err = r.Request(ctx, Ask{Site: r.id, End: t0.Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "of itself") {
		t.Fatalf("a slice of oneself: %v", err)
	}
	// A request at another tariff than the one published now.
	_, env, _ := site.Tariff()
	req := &pb.SliceRequest{Nonce: make([]byte, 16), Site: []byte(site.id), TariffHash: make([]byte, 32),
		Resources: &pb.Resources{CpuMillis: 1000, MemoryBytes: 1 << 30}, EndAtMs: protocol.UnixMs(t0.Add(2 * time.Hour))}
	ans := site.Answer(ctx, string(r.id), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Slice{Slice: req}})
	wantCode(t, protocol.FromPB(ans.GetRefusal()), pb.Code_CODE_TARIFF_MISMATCH, "read it again")
	// Draining.
	site.cfg.Draining = func() bool { return true }
	req.TariffHash = record.TariffHash(env)
	ans = site.Answer(ctx, string(r.id), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Slice{Slice: req}})
	wantCode(t, protocol.FromPB(ans.GetRefusal()), pb.Code_CODE_DRAINING, "leaving")
}

// TestRetryGetsTheSameGrant: a request sent again under its nonce gets the
// grant it was answered, even after the tariff changed; the nonce on other
// terms is a replay.
func TestRetryGetsTheSameGrant(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	ctx := context.Background()
	_, env, _ := site.Tariff()
	req := &pb.SliceRequest{Nonce: []byte("0123456789abcdef"), Site: []byte(site.id), TariffHash: record.TariffHash(env),
		Resources: &pb.Resources{CpuMillis: 1000, MemoryBytes: 1 << 30}, EndAtMs: protocol.UnixMs(t0.Add(2 * time.Hour))}
	send := func() *pb.WholesaleAnswer {
		return site.Answer(ctx, string(r.id), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Slice{Slice: req}})
	}
	first := send().GetGrant()
	tt := terms()
	tt.Price.CPUNanosPerSecond++
	site.SetTerms(tt)
	if again := send().GetGrant(); first == nil || string(again) != string(first) {
		t.Fatal("a retry did not get the grant it was answered")
	}
	req.Resources.CpuMillis = 2000
	wantCode(t, protocol.FromPB(send().GetRefusal()), pb.Code_CODE_REPLAYED, "another slice")
	if n := len(site.Grants()); n != 1 {
		t.Errorf("%d grants made, want 1", n)
	}
}

// TestGrantOffTermsIsKept: a grant at another price than the tariff's is
// refused by the retailer, and kept as proof.
func TestGrantOffTermsIsKept(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	w.rewrite = func(_, _ string, a *pb.WholesaleAnswer) *pb.WholesaleAnswer {
		env := a.GetGrant()
		if env == nil {
			return a
		}
		g, err := record.OpenGrant(env, w.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		g.Price.CpuNanosPerSecond *= 2 // the site charges this retailer double
		forged, err := record.Seal(site.key, g)
		if err != nil {
			t.Fatal(err)
		}
		return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Grant{Grant: forged}}
	}
	_, err := r.Request(context.Background(), ask(site, 1000, 1<<30, 2*time.Hour))
	if !errors.Is(err, ErrOffTerms) || protocol.CodeOf(err) != pb.Code_CODE_TARIFF_MISMATCH || !strings.Contains(err.Error(), "price") {
		t.Fatalf("grant off terms: %v", err)
	}
	kept, err := r.store.Grants()
	if err != nil || len(kept) != 1 || !kept[0].OffTerms || kept[0].Tariff == nil {
		t.Fatalf("grant off terms kept as %+v, %v", kept, err)
	}
	if len(r.Grants()) != 0 {
		t.Error("a grant off terms is listed as held")
	}
}

// TestWithdrawal: a site withdraws a slice no sooner than its notice; the
// grantee stores it and the slice ends then; a withdrawal signed without
// the notice is refused by the grantee and kept as proof.
func TestWithdrawal(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	ctx := context.Background()
	g, err := r.Request(ctx, ask(site, 2000, 2<<30, 10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = site.Withdraw(ctx, g.ID, t0.Add(time.Hour))
	wantCode(t, err, pb.Code_CODE_NOTICE_TOO_SHORT, "notice of 24h0m0s")
	end := t0.Add(48 * time.Hour)
	out, err := site.Withdraw(ctx, g.ID, end)
	if err != nil || !out.Delivered || out.Err != nil {
		t.Fatalf("Withdraw = %+v, %v", out, err)
	}
	if again, err := site.Withdraw(ctx, g.ID, end); err != nil || !again.Delivered {
		t.Fatalf("the same withdrawal sent again: %+v, %v", again, err)
	}
	held := r.Grants()
	if len(held) != 1 || !held[0].Withdrawn || !held[0].End.Equal(end) || !held[0].Granted.Equal(t0.Add(10*24*time.Hour)) {
		t.Fatalf("retailer's view after the withdrawal: %+v", held)
	}

	// A second grant, withdrawn by a site that skips its own market's check.
	g2, err := r.Request(ctx, ask(site, 1000, 1<<30, 10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	short := &pb.SliceWithdrawal{Site: []byte(site.id), Grantee: []byte(r.id), GrantId: []byte(g2.ID),
		IssuedAtMs: protocol.UnixMs(t0), EndAtMs: protocol.UnixMs(t0.Add(time.Hour))}
	env, err := record.Seal(site.key, short)
	if err != nil {
		t.Fatal(err)
	}
	ans := r.Answer(ctx, string(site.id), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Withdrawal{Withdrawal: env}})
	wantCode(t, protocol.FromPB(ans.GetRefusal()), pb.Code_CODE_NOTICE_TOO_SHORT, "before its notice")
	kept, err := r.store.Grant(g2.ID)
	if err != nil || !kept.WithdrawalRefused || string(kept.Withdrawal) != string(env) {
		t.Fatalf("refused withdrawal kept as %+v, %v", kept, err)
	}
	for _, v := range r.Grants() {
		if v.ID == g2.ID && (!v.End.Equal(g2.End) || !v.WithdrawalRefused) {
			t.Errorf("a refused withdrawal ended the slice: %+v", v)
		}
	}
	// Sent by another peer than its site: not the site's word.
	ans = r.Answer(ctx, string(r.id), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Withdrawal{Withdrawal: env}})
	wantCode(t, protocol.FromPB(ans.GetRefusal()), pb.Code_CODE_WRONG_SIGNER, "another peer")

	// At the new end, the first slice is gone on both sides and its
	// capacity is the site's own again.
	w.clock.Advance(48 * time.Hour)
	for _, m := range []*member{site, r} {
		for _, v := range m.Grants() {
			if v.ID == g.ID {
				t.Errorf("slice listed past its withdrawal: %+v", v)
			}
		}
	}
	if free := site.market.free(); free.CPUMillis != 7000 {
		t.Errorf("site's retail has %dm CPU free after the withdrawal, want 7000m", free.CPUMillis)
	}
}

// TestGrantsSurviveARestart: a site started again holds again the slices
// it granted (its own retail keeps off them), and a retailer still holds
// its grant.
func TestGrantsSurviveARestart(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	g, err := r.Request(context.Background(), ask(site, 3000, 4<<30, 5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	site.store.Close()
	r.store.Close()
	mc := site.market.m.State()
	fresh, err := scheduler.NewMarket(scheduler.MarketConfig{Provider: string(site.id), Capacity: mc.Capacity, Executors: []string{"wasm"},
		Pricing: scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 10_000}}})
	if err != nil {
		t.Fatal(err)
	}
	site.market = &market{m: fresh, clock: w.clock}
	w.open(t, site)
	w.open(t, r)
	if free := site.market.free(); free.CPUMillis != 5000 {
		t.Errorf("after a restart the site's retail has %dm CPU free, want 5000m", free.CPUMillis)
	}
	if held := r.Grants(); len(held) != 1 || held[0].ID != g.ID {
		t.Errorf("after a restart the retailer holds %+v", held)
	}
	w.clock.Advance(5 * time.Hour)
	site.store.Close()
	w.open(t, site) // an ended slice is not held again
	if len(site.Grants()) != 0 {
		t.Errorf("an ended slice is listed: %+v", site.Grants())
	}
}

// TestEvidenceAndAudit: a retailer's evidence of a site, its grant at the
// tariff, passes the audit; that of a retailer the site charged double
// fails it, on the grant's terms.
func TestEvidenceAndAudit(t *testing.T) {
	w := newWorld()
	site, fair, wronged := w.join(t, true), w.join(t, false), w.join(t, false)
	ctx := context.Background()
	if _, err := fair.Request(ctx, ask(site, 1000, 1<<30, 2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.rewrite = func(from, _ string, a *pb.WholesaleAnswer) *pb.WholesaleAnswer {
		if env := a.GetGrant(); env != nil && from == string(wronged.id) {
			g, _ := record.OpenGrant(env, w.clock.Now())
			g.Price.CpuNanosPerSecond *= 2
			forged, _ := record.Seal(site.key, g)
			return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Grant{Grant: forged}}
		}
		return a
	}
	if _, err := wronged.Request(ctx, ask(site, 1000, 1<<30, 2*time.Hour)); !errors.Is(err, ErrOffTerms) {
		t.Fatalf("a grant at double the price: %v", err)
	}
	_, published, _ := site.Tariff()
	audit := func(m *member) record.AuditReport {
		t.Helper()
		ev, err := m.Evidence(site.id)
		if err != nil || len(ev) != 1 {
			t.Fatalf("evidence: %d, %v", len(ev), err)
		}
		rep, err := record.Audit(site.id, published, nil, ev, w.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := audit(fair); !rep.Pass() {
		t.Errorf("the fair retailer's evidence: %+v", rep)
	}
	if rep := audit(wronged); rep.Pass() || rep.Findings[0].Rule != record.RuleTerms {
		t.Errorf("the wronged retailer's evidence: %+v", rep)
	}
	if ev, _ := fair.Evidence(fair.id); len(ev) != 0 {
		t.Errorf("evidence of a site the retailer holds nothing of: %d", len(ev))
	}
}

// TestRelease: a retailer gives a slice back with the grant's notice; the
// site ends it then, in its market and its store, and its capacity is its
// own again; a release without notice, or from another peer, is refused.
func TestRelease(t *testing.T) {
	w := newWorld()
	site, r, other := w.join(t, true), w.join(t, false), w.join(t, false)
	ctx := context.Background()
	g, err := r.Request(ctx, ask(site, 2000, 2<<30, 10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Release(ctx, g.ID, t0.Add(time.Hour))
	wantCode(t, err, pb.Code_CODE_NOTICE_TOO_SHORT, "release of grant")
	end := t0.Add(48 * time.Hour)
	released, err := r.Release(ctx, g.ID, end)
	if err != nil || !released.Released || !released.End.Equal(end) {
		t.Fatalf("Release = %+v, %v", released, err)
	}
	made := site.Grants()
	if len(made) != 1 || !made[0].Released || !made[0].End.Equal(end) {
		t.Fatalf("the site's view of the released slice: %+v", made)
	}
	kept, err := r.store.Grant(g.ID)
	if err != nil || kept.Release == nil {
		t.Fatalf("release not stored by the retailer: %+v, %v", kept, err)
	}
	// The same release again is acknowledged; sent by another, refused.
	ans := site.Answer(ctx, string(r.id), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Release{Release: kept.Release}})
	if !ans.GetAccepted() {
		t.Errorf("the same release again: %v", ans.GetRefusal())
	}
	ans = site.Answer(ctx, string(other.id), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Release{Release: kept.Release}})
	wantCode(t, protocol.FromPB(ans.GetRefusal()), pb.Code_CODE_WRONG_SIGNER, "another peer")

	w.clock.Advance(48 * time.Hour)
	if free := site.market.free(); free.CPUMillis != 8000 {
		t.Errorf("the site's retail has %dm CPU free after the release, want 8000m", free.CPUMillis)
	}
	if len(site.Grants())+len(r.Grants()) != 0 {
		t.Errorf("a released slice listed past its end: %+v %+v", site.Grants(), r.Grants())
	}
}

// TestRent: a site bills the rent of a slice for the time since its last
// bill; the retailer checks each bill against its grant and countersigns
// it; a bill off the grant is refused with its code; a retailer that does
// not answer leaves its bill unsigned, kept and visible.
func TestRent(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	ctx := context.Background()
	g, err := r.Request(ctx, ask(site, 2000, 2<<30, 10*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(2 * time.Hour)
	bills, err := site.BillRent(ctx)
	if err != nil || len(bills) != 1 || !bills[0].Countersigned || bills[0].Epoch != 1 || bills[0].Until.Sub(bills[0].From) != 2*time.Hour {
		t.Fatalf("the first bill: %+v, %v", bills, err)
	}
	if want, _ := g.Price.Cost(g.Resources, 2*time.Hour); bills[0].Amount.Nanos != want {
		t.Errorf("the bill is %d, two hours of the slice cost %d", bills[0].Amount.Nanos, want)
	}
	if again, _ := site.BillRent(ctx); len(again) != 0 {
		t.Errorf("billed again with no time gone by: %+v", again)
	}
	for _, m := range []*member{site, r} {
		kept, err := m.store.Receipt(g.ID, 1)
		if err != nil || kept.Countersignature == nil {
			t.Errorf("the bill kept countersigned: %+v, %v", kept, err)
		}
	}

	// A bill at double the grant's price is refused.
	last, _ := site.store.Receipt(g.ID, 1)
	rc, _ := record.OpenReceipt(last.Envelope)
	rc.Epoch, rc.Price.CpuNanosPerSecond = 2, rc.Price.CpuNanosPerSecond*2
	forged, _ := record.Seal(site.key, rc)
	ans := r.Answer(ctx, string(site.id), &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Rent{Rent: forged}})
	wantCode(t, protocol.FromPB(ans.GetRefusal()), pb.Code_CODE_TARIFF_MISMATCH, "not at the grant's price")

	// The retailer stops answering: the next bill is kept unsigned.
	w.mu.Lock()
	delete(w.desks, string(r.id))
	w.mu.Unlock()
	w.clock.Advance(time.Hour)
	bills, _ = site.BillRent(ctx)
	if len(bills) != 1 || bills[0].Countersigned || bills[0].Err == nil || bills[0].Epoch != 2 {
		t.Fatalf("a bill to a retailer gone: %+v", bills)
	}
	if kept, err := site.store.Receipt(g.ID, 2); err != nil || kept.Countersignature != nil {
		t.Errorf("the unpaid bill: %+v, %v", kept, err)
	}
}

// TestBillRentEvery: on its timer the site bills each period of a slice,
// asks a retailer that was gone again for the bill it missed once it is
// back, bills the last period up to the slice's end and nothing after, and
// stops when told.
func TestBillRentEvery(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	g, err := r.Request(context.Background(), ask(site, 2000, 2<<30, 3*time.Hour+30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	stop := site.BillRentEvery(time.Hour)
	bill := func(epoch uint64) (store.Receipt, error) { return site.store.Receipt(g.ID, epoch) }

	w.clock.Advance(time.Hour)
	if kept, err := bill(1); err != nil || kept.Countersignature == nil {
		t.Fatalf("the first hour's bill: countersigned %v, %v: want it made and countersigned", kept.Countersignature != nil, err)
	}
	w.mu.Lock()
	delete(w.desks, string(r.id)) // the retailer is gone for an hour
	w.mu.Unlock()
	w.clock.Advance(time.Hour)
	if kept, err := bill(2); err != nil || kept.Countersignature != nil {
		t.Fatalf("the second hour's bill: countersigned %v, %v: want it made, unsigned", kept.Countersignature != nil, err)
	}
	w.mu.Lock()
	w.desks[string(r.id)] = r.Desk
	w.mu.Unlock()
	w.clock.Advance(time.Hour)
	for epoch := uint64(2); epoch <= 3; epoch++ {
		if kept, err := bill(epoch); err != nil || kept.Countersignature == nil {
			t.Errorf("bill %d once the retailer is back: countersigned %v, %v: want it countersigned", epoch, kept.Countersignature != nil, err)
		}
	}
	w.clock.Advance(2 * time.Hour)
	last, err := bill(4)
	if err != nil || last.Countersignature == nil {
		t.Fatalf("the last bill: countersigned %v, %v", last.Countersignature != nil, err)
	}
	if rc, _ := record.OpenReceipt(last.Envelope); rc.EndedAtMs-rc.StartedAtMs != uint64((30 * time.Minute).Milliseconds()) {
		t.Errorf("the last bill runs from %d to %d: want the slice's last half hour", rc.StartedAtMs, rc.EndedAtMs)
	}
	if _, err := bill(5); err == nil {
		t.Error("a bill past the slice's end")
	}

	// Stopped, it bills no more: a slice granted now goes unbilled.
	stop()
	g2, err := r.Request(context.Background(), Ask{Site: site.id, Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30}, End: w.clock.Now().Add(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(2 * time.Hour)
	if kept, err := site.store.Receipt(g2.ID, 1); err == nil {
		t.Errorf("billed after stop: bill %d", kept.Epoch)
	}
	if n := w.clock.Pending(); n != 0 {
		t.Errorf("%d timers armed after stop", n)
	}
}

// TestBillRentAcrossRestarts: a site restarted more often than its period
// still bills each slice a period after its last bill, not a period after
// each start.
func TestBillRentAcrossRestarts(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	g, err := r.Request(context.Background(), ask(site, 1000, 1<<30, 3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // a start every 40 minutes
		stop := site.BillRentEvery(time.Hour)
		w.clock.Advance(40 * time.Minute)
		stop()
	}
	for epoch, hours := range map[uint64]time.Duration{1: 1, 2: 2} {
		kept, err := site.store.Receipt(g.ID, epoch)
		if err != nil {
			t.Errorf("after two hours of restarts, no bill %d: %v", epoch, err)
			continue
		}
		if rc, _ := record.OpenReceipt(kept.Envelope); protocol.FromUnixMs(rc.EndedAtMs) != t0.Add(hours*time.Hour) {
			t.Errorf("bill %d ends at %s, want %s", epoch, protocol.FromUnixMs(rc.EndedAtMs), t0.Add(hours*time.Hour))
		}
	}
}

// TestJurisdictionRule: a site whose tariff publishes the jurisdictions
// retailers may declare refuses the others SLICE_NOT_ALLOWED, saying its
// rule, and records in each grant what its grantee declared.
func TestJurisdictionRule(t *testing.T) {
	w := newWorld()
	site, r := w.join(t, true), w.join(t, false)
	tt := terms()
	tt.RetailerJurisdictions = []string{"be", "fr"}
	site.SetTerms(tt)
	ctx := context.Background()
	a := ask(site, 1000, 1<<30, 2*time.Hour)
	a.Jurisdiction = "de"
	_, err := r.Request(ctx, a)
	wantCode(t, err, pb.Code_CODE_SLICE_NOT_ALLOWED, "only to retailers under be, fr")
	a.Jurisdiction = ""
	_, err = r.Request(ctx, a)
	wantCode(t, err, pb.Code_CODE_SLICE_NOT_ALLOWED, "declares none")
	a.Jurisdiction = "fr"
	if _, err := r.Request(ctx, a); err != nil {
		t.Fatal(err)
	}
	ev, _ := r.Evidence(site.id)
	g, err := record.OpenGrant(ev[0].Grant, w.clock.Now())
	if err != nil || g.Jurisdiction != "fr" {
		t.Errorf("the grant records %q, %v", g.GetJurisdiction(), err)
	}
	_, published, _ := site.Tariff()
	if rep, err := record.Audit(site.id, published, nil, ev, w.clock.Now()); err != nil || !rep.Pass() {
		t.Errorf("the audit of a grant within the rule: %+v, %v", rep, err)
	}
}
