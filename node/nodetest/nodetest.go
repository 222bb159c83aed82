// Package nodetest builds federations of the node's real drivers (requester
// and provider, with real bbolt stores and a real wazero executor) on an
// in-memory network (memnet), for tests. Run a federation inside a
// testing/synctest bubble and its clock is virtual: heartbeats, offer
// timeouts and backoffs pass in no time and never depend on the machine's
// speed. A run that computes holds virtual time still while it does, so a
// job that must outlive a timer is held (Member.Hold) rather than left to
// spin.
package nodetest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/memnet"
	"github.com/cuivre/cuivre/node/provider"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// Federation is a requester and providers on one memnet network.
type Federation struct {
	T         testing.TB
	Net       *memnet.Network
	Clock     clock.Clock
	Exec      *exec.Executor
	Placement scheduler.Config
	MaxLog    int // what providers keep of each stream; default theirs
	Requester *Member
	Providers []*Member
}

// Member is one node of a federation: a peer, its store, its provider and,
// for the requester, its requester.
type Member struct {
	f         *Federation
	ID        string
	Key       crypto.PrivKey
	Peer      *memnet.Peer
	Store     *store.Store
	Data      *data.Store
	Blocks    *data.Server // serves Data; grant or share roots here
	Provider  *provider.Provider
	Requester *requester.Requester
	Market    scheduler.MarketConfig
	dir       string
	runs      bool // runs leases: a provider, not only a requester

	mu           sync.Mutex
	hold         bool
	held         []func()
	onLease      func(env []byte)
	onOffer      func(*pb.OfferResponse)
	onWatch      func(*pb.WatchEvent)
	failReceipts int
	crashOn      bool
}

// Market is the market of a test provider in region (its jurisdiction is
// the region's first two letters), run by operator.
func Market(region, operator string) scheduler.MarketConfig {
	return scheduler.MarketConfig{
		Capacity: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 8 << 30, ScratchBytes: 10 << 30},
		Labels: scheduler.NewLabels(scheduler.Label{Key: "jurisdiction", Value: region[:2]}, scheduler.Label{Key: "region", Value: region},
			scheduler.Label{Key: "operator", Value: operator}),
		Executors: []string{"wasm"},
		Pricing:   scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 10_000, MemoryNanosPerGiBSecond: 1_000}},
	}
}

// New returns a federation with a requester and a provider in each region,
// each of its own operator. The clock is the real one, which is virtual
// inside a synctest bubble.
func New(t testing.TB, regions ...string) *Federation {
	f := &Federation{T: t, Clock: clock.Real{}, Placement: scheduler.Config{OfferTimeout: 2 * time.Second}}
	var seed [8]byte
	rand.Read(seed[:])
	f.Net = memnet.New(f.Clock, uint64(seed[0])|uint64(seed[1])<<8)
	f.Net.SetDelay(time.Millisecond, time.Millisecond)
	f.Exec = exectest.NewExecutor(t, exec.Config{})
	for i, r := range regions {
		f.AddProvider(Market(r, "op"+string(rune('a'+i))))
	}
	f.Requester = f.join(Market("fr-par", "requester"), "requester", false)
	f.Requester.startRequester()
	return f
}

// AddProvider adds a provider selling m, and announces its facet keys.
func (f *Federation) AddProvider(m scheduler.MarketConfig) *Member {
	p := f.join(m, "provider", true)
	f.Providers = append(f.Providers, p)
	p.Announce()
	return p
}

func (f *Federation) join(m scheduler.MarketConfig, name string, runs bool) *Member {
	t := f.T
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	m.Provider = string(id)
	mem := &Member{f: f, ID: string(id), Key: k, Market: m, dir: t.TempDir(), runs: runs}
	mem.start()
	return mem
}

// start opens the member's store and starts its provider, as a process would.
func (m *Member) start() {
	t := m.f.T
	t.Helper()
	st, err := store.Open(filepath.Join(m.dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Store = st
	t.Cleanup(func() { st.Close() })
	ds, err := data.Open(filepath.Join(m.dir, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	m.Data = ds
	m.Blocks = data.NewServer(ds, data.ServerLimits{})
	t.Cleanup(func() { ds.Close() })
	m.Peer = m.f.Net.Join(m.ID)
	var ex *exec.Executor
	if m.runs {
		ex = m.f.Exec
	}
	p, err := provider.New(provider.Config{Key: m.Key, Market: m.Market, Store: st, Exec: ex, Data: ds, Blocks: m.Blocks, Transport: m.Peer, Clock: m.f.Clock, MaxLog: m.f.MaxLog})
	if err != nil {
		t.Fatal(err)
	}
	m.Provider = p
	t.Cleanup(func() {
		m.Release()
		p.Close()
	})
	m.Peer.Serve(&handler{Handler: p, m: m})
}

func (m *Member) startRequester() {
	t := m.f.T
	t.Helper()
	r, err := requester.New(requester.Config{Key: m.Key, Transport: m.Peer, Store: m.Store, Placement: m.f.Placement, Clock: m.f.Clock,
		Data: data.NewJobData(m.Data, m.Blocks, m.Peer, m.f.Clock)})
	if err != nil {
		t.Fatal(err)
	}
	m.Requester = r
	t.Cleanup(func() { r.Close() })
}

// Announce puts the member's facet keys in the network's provider records.
func (m *Member) Announce() {
	for _, k := range scheduler.ProviderKeys(m.ID, m.Market.Labels, m.Market.Executors, m.Market.Capacity) {
		m.Peer.Provide(wire.FacetCID(k))
	}
}

// Crash ends the member's process at once: the network hears nothing more
// of it, its drivers stop, its store closes (what it committed stays).
func (m *Member) Crash() {
	m.f.Net.Crash(m.ID)
	m.Release() // the runs held start, and find the process gone
	if m.Requester != nil {
		m.Requester.Close()
	}
	m.Provider.Close()
	m.Store.Close()
	m.Data.Close()
}

// Restart starts the member's process again on its store and key, after a
// Crash.
func (m *Member) Restart() {
	m.start()
	if m.Requester != nil {
		m.startRequester()
	}
}

// Hold keeps the runs of the leases the member accepts from starting until
// Release: a lease that stays accepted, and watched, for as long as a test
// needs, without a guest spinning.
func (m *Member) Hold() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hold = true
}

// Release starts the runs held, and holds no more.
func (m *Member) Release() {
	m.mu.Lock()
	held := m.held
	m.hold, m.held = false, nil
	m.mu.Unlock()
	for _, f := range held {
		f()
	}
}

// Receipt answers a countersigned receipt, or fails it as a provider
// whose disk is failing does (CODE_INTERNAL, which a requester takes for no
// answer) while FailReceipts has some left.
func (h *handler) Receipt(ctx context.Context, from string, sub *pb.ReceiptSubmit) *pb.ReceiptAck {
	h.m.mu.Lock()
	fail := h.m.failReceipts > 0
	if fail {
		h.m.failReceipts--
	}
	h.m.mu.Unlock()
	if fail {
		return &pb.ReceiptAck{Error: protocol.ToPB(protocol.Errorf(pb.Code_CODE_INTERNAL, "test: receipts fail"))}
	}
	return h.Handler.Receipt(ctx, from, sub)
}

// FailReceipts makes the member's provider fail the next n countersigned
// receipts handed to it.
func (m *Member) FailReceipts(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failReceipts = n
}

// OnLease calls f with every sealed lease the member receives, before its
// provider reads it.
func (m *Member) OnLease(f func(env []byte)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onLease = f
}

// OnOffer calls f with every offer response the member's provider makes,
// before it is sent: f may rewrite it, as a provider that deviates would.
func (m *Member) OnOffer(f func(*pb.OfferResponse)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onOffer = f
}

// OnWatchEvent calls f with every watch event the member's provider sends,
// before it is sent: f may rewrite it.
func (m *Member) OnWatchEvent(f func(*pb.WatchEvent)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onWatch = f
}

func (h *handler) Offer(ctx context.Context, from string, req *pb.OfferRequest) *pb.OfferResponse {
	resp := h.Handler.Offer(ctx, from, req)
	h.m.mu.Lock()
	on := h.m.onOffer
	h.m.mu.Unlock()
	if on != nil {
		on(resp)
	}
	return resp
}

func (h *handler) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	h.m.mu.Lock()
	on := h.m.onWatch
	h.m.mu.Unlock()
	if on == nil {
		return h.Handler.Watch(ctx, from, req, send)
	}
	return h.Handler.Watch(ctx, from, req, func(ev *pb.WatchEvent) error {
		on(ev)
		return send(ev)
	})
}

// Held returns the number of runs held.
func (m *Member) Held() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.held)
}

// handler is a member's provider as the network reaches it, with the
// member's test switches.
type handler struct {
	transport.Handler
	m *Member
}

func (h *handler) Lease(ctx context.Context, from string, req *pb.LeaseRequest) (*pb.LeaseAnswer, func()) {
	h.m.mu.Lock()
	on := h.m.onLease
	h.m.mu.Unlock()
	if l := req.GetLease(); l != nil && on != nil {
		on(l)
	}
	ans, then := h.Handler.Lease(ctx, from, req)
	if then == nil {
		return ans, nil
	}
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.m.hold {
		h.m.held = append(h.m.held, then)
		return ans, nil
	}
	return ans, then
}

// Job seals a job spec (YAML) with the requester's key, its module given as
// bytes, with a fresh nonce.
func (f *Federation) Job(spec string, module []byte) []byte {
	t := f.T
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
	sj, err := record.SealJob(f.Requester.Key, j)
	if err != nil {
		t.Fatal(err)
	}
	return sj.Envelope
}

// Submit seals a job spec and submits it to the requester; it returns the
// job's CID in text form.
func (f *Federation) Submit(spec string, module []byte) string {
	t := f.T
	t.Helper()
	key, err := f.Requester.Requester.Submit(f.Job(spec, module), module, "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Wait waits for a job to end (in virtual time inside a bubble: a test
// waits as long as the placement takes).
func (f *Federation) Wait(key string) requester.JobView {
	t := f.T
	t.Helper()
	v, err := f.Requester.Requester.Wait(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ProviderOf returns the member whose ID is id in text form.
func (f *Federation) ProviderOf(id string) *Member {
	for _, p := range f.Providers {
		if peer.ID(p.ID).String() == id {
			return p
		}
	}
	return nil
}

// Until waits, in steps of 10 ms of the clock, until cond holds; it fails
// the test after 10 minutes of it. Inside a synctest bubble the steps cost
// nothing and the wait never depends on the machine's speed.
func (f *Federation) Until(what string, cond func() bool) {
	t := f.T
	t.Helper()
	for start := f.Clock.Now(); !cond(); {
		if f.Clock.Now().Sub(start) > 10*time.Minute {
			t.Fatalf("gave up waiting for %s", what)
		}
		<-f.Clock.After(10 * time.Millisecond)
	}
}

// Settle lets d of the clock pass, for what happens behind a result
// (receipts settled, statuses saved).
func (f *Federation) Settle(d time.Duration) { <-f.Clock.After(d) }
