package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ipld "github.com/ipfs/go-ipld-format"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/p2p"
	"github.com/cuivre/cuivre/node/provider"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/retail"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/node/wholesale"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// Options configure a Node. The zero value of each optional field means its
// documented default.
type Options struct {
	Identity  crypto.PrivKey // required: the node's Ed25519 key
	Listen    []ma.Multiaddr // default QUIC v1 and TCP on 127.0.0.1, random ports
	Bootstrap []peer.AddrInfo
	Market    scheduler.MarketConfig // Provider is filled with the node's peer ID; unused by a requester only

	// RequesterOnly makes the node one that buys and never sells (config
	// role requester, SPEC 1): it has no market and no provider's driver,
	// announces no facet key and no capacity record, runs the DHT in client
	// mode, and answers only the module and block requests of the providers
	// that run its jobs (p2p.Options.RequesterOnly). Market and Exec are
	// ignored. Default false: a provider, which buys too.
	RequesterOnly bool

	// ProvideValidity is how long a provider record lives in the DHT (SPEC
	// 4.1); the node reprovides at a third of it. Default
	// scheduler.DefaultProvideValidity.
	ProvideValidity time.Duration
	// DiversityFilter turns on kad-dht's routing-table peer diversity
	// filter. Off on loopback devnets, where every peer shares one IP group.
	DiversityFilter bool
	// NAT is which NAT traversal services the node runs (p2p.NAT); none by
	// default.
	NAT p2p.NAT
	// Limits are what one peer, and one place, may ask of the node's host.
	Limits p2p.Limits

	// Store and Exec make the node a provider that runs leases; without
	// them it refuses leases. Store also lets it keep jobs, serve modules
	// and keep receipts. The node does not close them.
	Store *store.Store
	Exec  *exec.Executor
	// Retail makes a provider a retailer (config role retailer, SPEC 6.7):
	// it sells the slices it holds of one site, at Market's prices, under
	// Market's operator label and the site's other labels, and runs its
	// leases there rather than on Exec, which it ignores. It needs Store and
	// Data. Market's capacity and other labels are replaced by its slices'.
	Retail bool
	// Tariff makes a provider with a Store a wholesale site (SPEC 4.5, 6.7):
	// it publishes a tariff of these terms, announces itself under the
	// wholesale facet of their jurisdiction, and grants slices. Nil: it
	// grants none. Any node with a Store may rent slices of sites.
	Tariff *config.TariffTerms
	// RentEvery is how often a site bills its grantees their slices' rent
	// and asks again for the countersignatures missing (SPEC 6.7, rent); 0
	// bills only when BillRent is called.
	RentEvery time.Duration
	// Data keeps content-addressed files and directories (UnixFS DAGs);
	// without it the node holds none. The node does not close it.
	Data *data.Store
	// Blocks bound what the node serves of its data to other peers.
	Blocks data.ServerLimits
	// MaxDataImport bounds one CAR taken through the API. Default
	// DefaultMaxDataImport.
	MaxDataImport int64
	// Placement tunes the requester's placements (scheduler defaults).
	Placement scheduler.Config
	// CandidateTTL is how long a requester reuses what a DHT lookup of a
	// facet key returned. Default scheduler.DefaultCandidateTTL.
	CandidateTTL time.Duration
	// ReplayCacheSize bounds the live lease nonces remembered. Default 100,000.
	ReplayCacheSize int
	// Build names the binary, for cuivre_build_info. Default "dev" and
	// "unknown".
	Build Build

	Clock clock.Clock  // default clock.Real
	Log   *slog.Logger // default slog.Default()
}

// DefaultMaxDataImport is the largest CAR the API takes by default.
const DefaultMaxDataImport = 1 << 30

// Node is one cuivre daemon's network side composed: the libp2p transport
// (p2p), the provider's driver serving on it, the requester's driver placing
// on it, the announcements in the DHT, and the metrics. It is safe for
// concurrent use.
type Node struct {
	opts     Options
	net      *p2p.Host
	blocks   *data.Server
	prov     *provider.Provider // nil on a requester-only node
	handler  transport.Handler  // what the host serves: prov, or a buyer
	req      *requester.Requester
	desk     *wholesale.Desk // nil without a store
	stopRent func()          // stops billing rent on a timer; nil if it does not
	// retailTimer syncs a retailer's market at the next start or end of a
	// slice it holds.
	retailMu    sync.Mutex
	retailTimer clock.Timer
	reg         *prometheus.Registry
	log         *slog.Logger
	clock       clock.Clock

	changed  chan struct{} // what the node sells changed: re-announce soon
	loaded   atomic.Bool   // leases came or went: republish the capacity record in a while
	draining atomic.Bool

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the advertiser
	closeOnce sync.Once
	closeErr  error
}

// New starts a node: host, DHT, the provider's handlers and the requester
// (which takes up the jobs in the store). Its lifetime is its own: it runs
// until Close, whatever the context of its caller.
func New(o Options) (*Node, error) {
	if o.Identity == nil {
		return nil, errors.New("node: no identity key")
	}
	if o.ProvideValidity <= 0 {
		o.ProvideValidity = scheduler.DefaultProvideValidity
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.MaxDataImport <= 0 {
		o.MaxDataImport = DefaultMaxDataImport
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	n := &Node{opts: o, clock: o.Clock, changed: make(chan struct{}, 1)}
	h, err := p2p.New(p2p.Options{Identity: o.Identity, Listen: o.Listen, Bootstrap: o.Bootstrap, ProvideValidity: o.ProvideValidity,
		DiversityFilter: o.DiversityFilter, NAT: o.NAT, Limits: o.Limits, RequesterOnly: o.RequesterOnly, AddrsChanged: n.marketChanged,
		Now: o.Clock.Now, Log: o.Log})
	if err != nil {
		return nil, err
	}
	log := o.Log.With("peer", protocol.ShortPeerID(string(h.ID())))
	ctx, cancel := context.WithCancel(context.Background())
	n.net, n.log, n.ctx, n.cancel = h, log, ctx, cancel
	var jd requester.Data
	egress := prometheus.NewCounter(prometheus.CounterOpts{Name: "cuivre_data_served_bytes_total",
		Help: "Bytes of blocks this node served to other peers over /cuivre/blocks: the egress of its inputs and outputs."})
	if o.Data != nil {
		lim := o.Blocks
		next := lim.OnServe
		lim.OnServe = func(peer string, root cid.Cid, n int) {
			egress.Add(float64(n))
			if next != nil {
				next(peer, root, n)
			}
		}
		n.blocks = data.NewServer(o.Data, lim)
		jd = data.NewJobData(o.Data, n.blocks, h, o.Clock)
	}
	if o.RequesterOnly {
		n.handler = &buyer{store: o.Store, blocks: n.blocks, log: log}
	} else {
		pc := provider.Config{Key: o.Identity, Market: o.Market, Store: o.Store, Exec: o.Exec, Data: o.Data, Blocks: n.blocks, Transport: h,
			ReplayCacheSize: o.ReplayCacheSize, Clock: o.Clock, Log: log, Loaded: func() { n.loaded.Store(true) }}
		if o.Retail {
			pc.Exec = nil
			if pc.Remote, err = retail.New(retail.Config{Key: o.Identity, Transport: h, Store: o.Store, Data: o.Data, Blocks: n.blocks, Slice: n.retailSlice,
				Clock: o.Clock, Log: log}); err != nil {
				cancel()
				h.Close()
				return nil, err
			}
		}
		n.prov, err = provider.New(pc)
		if err != nil {
			cancel()
			h.Close()
			return nil, err
		}
		n.handler = n.prov
	}
	h.Serve(n.handler)
	if o.Store != nil {
		dc := wholesale.Config{Key: o.Identity, Store: o.Store, Net: h, Draining: n.draining.Load, Changed: n.retailChanged, Clock: o.Clock, Log: log}
		if o.Tariff != nil && n.prov != nil {
			dc.Market, dc.Terms = n.prov, o.Tariff
		}
		if n.desk, err = wholesale.New(dc); err != nil {
			cancel()
			if n.prov != nil {
				n.prov.Close()
			}
			h.Close()
			return nil, err
		}
		n.serveWholesale()
		n.syncRetail()
	}
	n.req, err = requester.New(requester.Config{Key: o.Identity, Transport: h, Store: o.Store, Placement: o.Placement,
		CandidateTTL: o.CandidateTTL, Data: jd, Clock: o.Clock, Log: log})
	if err != nil {
		cancel()
		if n.prov != nil {
			n.prov.Close()
		}
		h.Close()
		return nil, err
	}
	n.reg = prometheus.NewRegistry()
	if n.prov != nil {
		n.reg.MustRegister(n.prov.Metrics().Collectors()...)
	}
	n.reg.MustRegister(h.Collectors()...)
	n.reg.MustRegister(egress, buildInfo(o.Build))
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("cuivre_leases_live", "Leases committed and not yet released.", func() float64 { return float64(n.MarketState().Leases) }),
		gauge("cuivre_reservations_live", "Offers out, holding a reservation.", func() float64 { return float64(n.MarketState().Reservations) }),
		gauge("cuivre_load_permille", "Committed and reserved share of capacity, in permille.", func() float64 { return float64(n.MarketState().LoadPermille) }),
	)
	return n, nil
}

// Identity returns the node's private key, which also signs the jobs the
// node's own operator submits (SPEC 1: the customer's key may be the node's).
func (n *Node) Identity() crypto.PrivKey { return n.opts.Identity }

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.net.ID() }

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.net.Host() }

// Transport returns the node's libp2p transport.
func (n *Node) Transport() *p2p.Host { return n.net }

// Handler returns what the node's transport serves: its provider's answers
// to other peers (SPEC 6), or a requester-only node's modules and blocks,
// for a caller that serves them wrapped.
func (n *Node) Handler() transport.Handler { return n.handler }

// Role returns what the node does: config.RoleProvider, or
// config.RoleRequester for a requester-only node.
func (n *Node) Role() string {
	if n.opts.RequesterOnly {
		return config.RoleRequester
	}
	if n.opts.Retail {
		return config.RoleRetailer
	}
	return config.RoleProvider
}

// AddrInfo returns the node's peer ID and listen addresses, for bootstrapping.
func (n *Node) AddrInfo() peer.AddrInfo { return n.net.AddrInfo() }

// Bootstrap connects to the bootstrap peers and fills the routing table.
func (n *Node) Bootstrap(ctx context.Context) error { return n.net.Bootstrap(ctx) }

// RoutingTableSize returns the number of peers in the DHT routing table.
func (n *Node) RoutingTableSize() int { return n.net.RoutingTableSize() }

// MarketState returns a snapshot of the node's market; a requester-only
// node has none, and returns the zero state.
func (n *Node) MarketState() scheduler.MarketState {
	if n.prov == nil {
		return scheduler.MarketState{}
	}
	return n.prov.MarketState()
}

// Metrics returns the node's Prometheus registry.
func (n *Node) Metrics() prometheus.Gatherer { return n.reg }

// Refusals returns the count of requests refused on protocol (offer, lease,
// receipt) with reason (a code, lower case). A requester-only node, which
// answers none of them, counts none.
func (n *Node) Refusals(protocol, reason string) prometheus.Counter {
	if n.prov == nil {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "cuivre_requests_refused_total"})
	}
	return n.prov.Metrics().Refusals(protocol, reason)
}

// FindProviders looks a facet key up in the DHT and returns up to want peers.
func (n *Node) FindProviders(ctx context.Context, key protocol.FacetKey, want int) []peer.ID {
	return n.FindCID(ctx, wire.FacetCID(key), want)
}

// FindCID looks any CID up (a module's providers, for instance).
func (n *Node) FindCID(ctx context.Context, c cid.Cid, want int) []peer.ID {
	found, _ := n.net.FindProviders(ctx, c, want, want, 0)
	out := make([]peer.ID, len(found))
	for i, p := range found {
		out[i] = peer.ID(p)
	}
	return out
}

// Provide announces any CID in the DHT as provided by this node.
func (n *Node) Provide(ctx context.Context, c cid.Cid) error { return n.net.Provide(ctx, c) }

// RequestOffer asks a provider for an offer (SPEC 6.1). It returns the
// verified offer and its envelope, or the provider's refusal.
func (n *Node) RequestOffer(ctx context.Context, p peer.ID, r scheduler.Request) (scheduler.Offer, []byte, error) {
	return requester.RequestOffer(ctx, n.net, string(p), r, n.clock.Now)
}

// Submit places a customer-sealed job; see requester.Requester.Submit.
func (n *Node) Submit(jobEnv, module []byte, spec string) (string, error) {
	return n.req.Submit(jobEnv, module, spec)
}

// AddModule keeps a module in the store, for providers to fetch by CID.
func (n *Node) AddModule(bin []byte) (cid.Cid, error) { return n.req.AddModule(bin) }

// Wait blocks until a job ends or ctx does.
func (n *Node) Wait(ctx context.Context, key string) (requester.JobView, error) {
	return n.req.Wait(ctx, key)
}

// Job returns a job's view, by its CID in text form.
func (n *Node) Job(key string) (requester.JobView, bool) { return n.req.Job(key) }

// Jobs lists the jobs this node placed, oldest first.
func (n *Node) Jobs() []requester.JobView {
	jobs := n.req.Jobs()
	sort.Slice(jobs, func(i, k int) bool { return jobs[i].Submitted.Before(jobs[k].Submitted) })
	return jobs
}

// Stop cancels a job; it never blocks.
func (n *Node) Stop(key string) bool { return n.req.Stop(key) }

// Logs returns what a job's instances wrote so far; see requester.Requester.Logs.
func (n *Node) Logs(key string) (stdout, stderr []byte, changed <-chan struct{}, done bool, ok bool) {
	return n.req.Logs(key)
}

// Quote asks every provider in the routing table for an offer on a sealed
// job and declines them all: a market quote that leases nothing.
func (n *Node) Quote(ctx context.Context, jobEnv []byte) ([]requester.QuoteView, error) {
	return n.req.Quote(ctx, jobEnv, n.net.RoutingPeers())
}

// errNoData is what a node without a data store says.
var errNoData = errors.New("this node keeps no data")

// ImportData keeps the DAG of a CAR stream of one root, every block checked
// against its CID, and returns the root; public shares it with every peer.
func (n *Node) ImportData(ctx context.Context, car io.Reader, public bool) (cid.Cid, error) {
	if n.opts.Data == nil {
		return cid.Undef, errNoData
	}
	c, err := n.opts.Data.ImportCAR(ctx, car, n.opts.MaxDataImport)
	if err == nil && public {
		n.blocks.Share(c)
	}
	return c, err
}

// Data returns the node's store of content-addressed data, nil if it has none.
func (n *Node) Data() *data.Store { return n.opts.Data }

// Blocks returns what serves the node's data to other peers, where roots are
// granted and shared (SPEC 6.6); nil if the node keeps no data.
func (n *Node) Blocks() *data.Server { return n.blocks }

// FetchData fetches the DAG rooted at c from the peers from (binary peer
// IDs) into the node's data, over /cuivre/blocks (SPEC 6.6); blocks already
// held are not fetched again.
func (n *Node) FetchData(ctx context.Context, c cid.Cid, from []peer.ID) error {
	if n.opts.Data == nil {
		return errNoData
	}
	holders := make([]string, len(from))
	for i, p := range from {
		holders[i] = string(p)
	}
	return n.opts.Data.Fetch(ctx, n.net, holders, c, data.FetchOptions{Clock: n.clock})
}

// StatData sizes the DAG under c if the node holds it whole.
func (n *Node) StatData(ctx context.Context, c cid.Cid) (api.DataStat, error) {
	if n.opts.Data == nil {
		return api.DataStat{}, errNoData
	}
	st, err := n.opts.Data.Stat(ctx, c, data.Limits{})
	if errors.Is(err, data.ErrNotFound) || ipld.IsNotFound(err) {
		return api.DataStat{}, fmt.Errorf("%s: %w", c, api.ErrNotHeld)
	}
	if err != nil {
		return api.DataStat{}, err
	}
	return api.DataStat{CID: c.String(), Size: st.Size, Entries: st.Entries, Dir: st.Dir}, nil
}

// HasModule says whether the node's store holds a module.
func (n *Node) HasModule(c cid.Cid) bool {
	if n.opts.Store == nil {
		return false
	}
	ok, err := n.opts.Store.HasModule(c)
	return err == nil && ok
}

// HasData reports whether the node holds the root c.
func (n *Node) HasData(ctx context.Context, c cid.Cid) bool {
	if n.opts.Data == nil {
		return false
	}
	ok, err := n.opts.Data.Has(ctx, c)
	return err == nil && ok
}

// ExportData streams the DAG rooted at c as a CARv1.
func (n *Node) ExportData(ctx context.Context, c cid.Cid, w io.Writer) error {
	if n.opts.Data == nil {
		return errNoData
	}
	return n.opts.Data.ExportCAR(ctx, c, w)
}

// Ready says why the node cannot place jobs yet, or nil.
func (n *Node) Ready() error {
	if n.net.HasBootstrap() && n.RoutingTableSize() == 0 {
		return errors.New("no DHT peer yet")
	}
	return nil
}

// Alive says whether the node still answers, for a watchdog: an error once
// it is closed, else nil, after taking in turn the locks every request
// takes (the provider's market, the store, the host's connections), so that
// it does not return while one of them is stuck. Unlike Ready it asks for no
// peer: a node alone is alive.
func (n *Node) Alive() error {
	if n.ctx.Err() != nil {
		return errors.New("node closed")
	}
	n.MarketState()
	if n.opts.Store != nil {
		if err := n.opts.Store.View(func(*store.Tx) error { return nil }); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	n.Host().Network().Peers()
	return nil
}

// Identify returns the node's peer ID and its addresses with /p2p/.
func (n *Node) Identify() api.Identity {
	id := api.Identity{ID: n.ID().String(), Reach: api.Reach(n.net.Reach())}
	for _, a := range n.Host().Addrs() {
		id.Addrs = append(id.Addrs, a.String()+"/p2p/"+n.ID().String())
	}
	return id
}

// Peers returns the connected peers.
func (n *Node) Peers() []api.Peer {
	var out []api.Peer
	for _, p := range n.net.Peers() {
		out = append(out, api.Peer{ID: p.ID, Addrs: p.Addrs})
	}
	return out
}

// Status returns the node's market and network state.
func (n *Node) Status() api.NodeStatus {
	st := n.MarketState()
	out := api.NodeStatus{
		ID: n.ID().String(), Role: n.Role(), Capacity: st.Capacity, Committed: st.Committed, Reserved: st.Reserved, Free: st.Free,
		Leases: st.Leases, Reservations: st.Reservations, LoadPermille: st.LoadPermille, Draining: st.Draining,
		Peers: len(n.Host().Network().Peers()), DHTPeers: n.RoutingTableSize(), Reach: api.Reach(n.net.Reach()),
	}
	if n.desk != nil {
		w := api.WholesaleStatus{Site: n.desk.Site()}
		for _, g := range n.desk.Grants() {
			if g.Made {
				w.Granted, w.Grants = w.Granted.Add(g.Resources), w.Grants+1
			} else {
				w.Held, w.Holds = w.Held.Add(g.Resources), w.Holds+1
			}
		}
		if w.Site || w.Holds > 0 {
			out.Wholesale = &w
		}
	}
	if n.prov == nil {
		return out
	}
	var err error
	out.Earnings, out.Countersigned, err = n.prov.Earnings()
	if err != nil {
		n.log.Warn("read receipts", "err", err)
	}
	return out
}

// Leases returns the leases running here, oldest first, each with the last
// api.LeaseLogTail bytes of its output; none on a requester.
func (n *Node) Leases() []api.LeaseView {
	if n.prov == nil {
		return []api.LeaseView{}
	}
	runs := n.prov.Runs(api.LeaseLogTail)
	out := make([]api.LeaseView, len(runs))
	for i, r := range runs {
		l := r.Lease
		v := api.LeaseView{ID: hex.EncodeToString([]byte(l.ID)), Epoch: l.Epoch, Requester: peer.ID(l.Requester).String(),
			State: strings.ToLower(strings.TrimPrefix(r.State.String(), "LEASE_STATE_")), Committed: l.Committed, Reserved: l.Reserved,
			Price:  protocol.FormatAmount(&pb.Amount{Currency: l.Price.Currency, Nanos: l.Price.CPUNanosPerSecond * 3600}),
			Stdout: string(r.Stdout), Stderr: string(r.Stderr), Cut: r.Cut}
		if c, err := cid.Cast([]byte(l.JobCID)); err == nil {
			v.Job = c.String()
		}
		if !r.Since.IsZero() {
			v.Since = &r.Since
		}
		out[i] = v
	}
	return out
}

// Providers reads the capacity records of the peers in the routing table, in
// parallel, and returns those that verify, sorted by ID.
func (n *Node) Providers(ctx context.Context) []api.ProviderView {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var out []api.ProviderView
	var wg sync.WaitGroup
	for _, p := range n.net.RoutingPeers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := n.net.Capacity(ctx, peer.ID(p))
			if err != nil {
				return
			}
			v := api.ProviderView{ID: peer.ID(p).String(), Labels: map[string]string{}, Total: conv.ResourcesFromPB(rec.Total), Free: conv.ResourcesFromPB(rec.Free),
				RecordAgeMs: n.clock.Now().Sub(protocol.FromUnixMs(rec.IssuedAtMs)).Milliseconds()}
			for _, l := range rec.Labels {
				v.Labels[l.Key] = l.Value
			}
			hour := func(perSecond uint64) string {
				return protocol.FormatAmount(&pb.Amount{Currency: rec.GetPrice().GetCurrency(), Nanos: perSecond * 3600})
			}
			v.CPUPerHour, v.MemPerHour = hour(rec.GetPrice().GetCpuNanosPerSecond()), hour(rec.GetPrice().GetMemoryNanosPerGibSecond())
			mu.Lock()
			out = append(out, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out
}

// ServeAPI serves the node's local HTTP API on addr (loopback), writing its
// address and token in dir; see api.Serve.
func (n *Node) ServeAPI(addr, dir string) (*api.API, error) { return api.Serve(n, addr, dir) }

// Capacity reads and verifies a provider's capacity record from the DHT.
func (n *Node) Capacity(ctx context.Context, p peer.ID) (*pb.CapacityRecord, error) {
	return n.net.Capacity(ctx, p)
}

// Drain stops offering at once and stops announcing the node (its records
// expire), lets running leases finish until grace has passed, then cancels
// the rest, each recorded cancelled, billed, and its watching requester told
// within tell. It returns the number of leases cancelled.
func (n *Node) Drain(grace, tell time.Duration) int {
	n.SetDraining(true)
	if n.prov == nil {
		return 0
	}
	return n.prov.Drain(grace, tell)
}

// CancelRuns stops every run still going and waits, up to timeout, until each
// has recorded its end and told its watchers.
func (n *Node) CancelRuns(timeout time.Duration) int {
	if n.prov == nil {
		return 0
	}
	return n.prov.CancelRuns(timeout)
}

// Close stops the node: the advertiser, the requester (its jobs stay in the
// store), the provider (runs still going are cancelled and recorded), then
// the host. Closing it again does nothing.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		if n.stopRent != nil {
			n.stopRent()
		}
		n.retailMu.Lock()
		if n.retailTimer != nil {
			n.retailTimer.Stop()
		}
		n.retailMu.Unlock()
		n.wg.Wait()
		var provErr error
		if n.prov != nil {
			provErr = n.prov.Close()
		}
		n.closeErr = errors.Join(n.req.Close(), provErr, n.net.Close())
	})
	return n.closeErr
}

// capacityRecord builds the node's signed capacity record (SPEC 4.4).
func (n *Node) capacityRecord(now time.Time, seq uint64) ([]byte, error) {
	st := n.MarketState()
	c := n.prov.Offering()
	rec := &pb.CapacityRecord{
		Provider: []byte(n.ID()), Seq: seq, IssuedAtMs: protocol.UnixMs(now),
		ExpiresAtMs: protocol.UnixMs(now.Add(protocol.MaxCapacityTTL)),
		Total:       conv.ResourcesToPB(st.Capacity), Free: conv.ResourcesToPB(st.Free),
		Price: conv.PriceToPB(c.Pricing.PriceAt(st.LoadPermille)), Labels: conv.LabelsToPB(c.Labels),
		Executors: c.Executors,
	}
	for _, a := range n.Host().Addrs() {
		rec.Addrs = append(rec.Addrs, a.Bytes())
	}
	return record.Seal(n.opts.Identity, rec)
}

// PublishCapacity puts the node's signed capacity record in the DHT, where
// anyone can audit what it claims. Its seq is the issue time in milliseconds,
// which only grows. A requester-only node has none: it refuses.
func (n *Node) PublishCapacity(ctx context.Context) error {
	if n.prov == nil {
		return fmt.Errorf("publish capacity: %w", errSellsNothing)
	}
	now := n.clock.Now()
	env, err := n.capacityRecord(now, protocol.UnixMs(now))
	if err != nil {
		return err
	}
	return n.net.PutCapacity(ctx, env)
}

// Advertise announces the node's facet keys as DHT provider records (SPEC
// 4.3). A requester-only node has none: it refuses.
func (n *Node) Advertise(ctx context.Context) error { return n.advertiseWith(ctx, n.net.Provide) }

// advertiseWith announces the node's facet keys with provide.
func (n *Node) advertiseWith(ctx context.Context, provide func(context.Context, cid.Cid) error) error {
	if n.prov == nil {
		return fmt.Errorf("advertise: %w", errSellsNothing)
	}
	c := n.prov.Offering()
	if c.Capacity == (scheduler.Resources{}) {
		return nil // a retailer without a slice: nothing to sell
	}
	keys := scheduler.ProviderKeys(string(n.ID()), c.Labels, c.Executors, c.Capacity)
	var errs []error
	for _, k := range keys {
		if err := provide(ctx, wire.FacetCID(k)); err != nil {
			errs = append(errs, fmt.Errorf("provide %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// loadRepublish is how often at most a node republishes its capacity record
// because leases came or went. The record's free resources are a hint for
// auditors (SPEC 4.4), never a reason to place a job, so they may lag; the
// node's DHT traffic must not grow with the leases it takes.
const loadRepublish = 30 * time.Second

// advertise keeps the node's announcements fresh (SPEC 4.1): its facet keys as
// provider records and its capacity record, at start, then every third of the
// provider-record validity, and soon after what it sells changes (at most once
// per second). Leases coming and going only republish the capacity record, at
// most every loadRepublish. A draining node stops, so its records expire.
func (n *Node) advertise() {
	defer n.wg.Done()
	every := n.opts.ProvideValidity / 3
	var last, lastAlone time.Time
	announce := func() (retry bool) {
		if n.draining.Load() {
			return false
		}
		if n.RoutingTableSize() == 0 {
			// Alone so far, or with DHT clients only (requester-only
			// nodes, which never enter a routing table): nobody to store
			// records with. They are kept in this node's own DHT store,
			// which the clients' lookups ask, and announced to the DHT
			// once a server is met; look again soon.
			if lastAlone.IsZero() || n.clock.Now().Sub(lastAlone) >= every {
				lastAlone = n.clock.Now()
				ctx, cancel := context.WithTimeout(n.ctx, every)
				defer cancel()
				n.syncRetail()
				if err := n.advertiseWith(ctx, n.net.ProvideLocally); err != nil {
					n.log.Warn("advertise locally", "err", err)
				}
			}
			return true
		}
		lastAlone = time.Time{}
		last = n.clock.Now()
		ctx, cancel := context.WithTimeout(n.ctx, every)
		defer cancel()
		n.syncRetail() // slices started or ended since
		if err := n.Advertise(ctx); err != nil {
			n.log.Warn("advertise", "err", err)
		}
		if err := n.PublishCapacity(ctx); err != nil {
			n.log.Warn("publish capacity", "err", err)
		}
		if err := n.publishTariff(ctx); err != nil {
			n.log.Warn("publish tariff", "err", err)
		}
		if n.desk != nil {
			n.serveWholesale() // a grant held may have ended
		}
		return false
	}
	// Each wait is drawn between 3/4 and 5/4 of loadRepublish, so that nodes
	// that started, or got busy, together do not republish together.
	jittered := func() time.Duration { return loadRepublish*3/4 + rand.N(loadRepublish/2) }
	tick, load := n.clock.After(every), n.clock.After(jittered())
	var retry <-chan time.Time
	if announce() {
		retry = n.clock.After(time.Second)
	}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick:
			tick = n.clock.After(every)
		case <-retry:
		case <-load:
			load = n.clock.After(jittered())
			if n.loaded.Swap(false) && !n.draining.Load() && n.RoutingTableSize() > 0 {
				ctx, cancel := context.WithTimeout(n.ctx, loadRepublish)
				if err := n.PublishCapacity(ctx); err != nil {
					n.log.Warn("publish capacity", "err", err)
				}
				cancel()
			}
			continue
		case <-n.changed:
			if wait := time.Second - n.clock.Now().Sub(last); wait > 0 {
				select {
				case <-n.clock.After(wait):
				case <-n.ctx.Done():
					return
				}
			}
		}
		retry = nil
		if announce() {
			retry = n.clock.After(time.Second)
		}
	}
}

// marketChanged wakes the advertiser without blocking: what the node sells
// (prices, labels, draining) changed.
func (n *Node) marketChanged() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// SetDraining stops or resumes offering: a draining node refuses offer
// requests with CODE_DRAINING and stops re-announcing itself, so requesters
// stop finding it once its records expire; running leases go on.
func (n *Node) SetDraining(on bool) {
	n.draining.Store(on)
	if n.prov == nil {
		return
	}
	n.prov.SetDraining(on)
	if !on {
		n.marketChanged()
	}
}

// Start begins the node's background work: bootstrapping and advertising
// (a requester-only node bootstraps only: it announces nothing).
func (n *Node) Start(ctx context.Context) error {
	if err := n.Bootstrap(ctx); err != nil {
		return err
	}
	if n.prov == nil {
		return nil
	}
	if n.desk != nil && n.opts.RentEvery > 0 {
		n.stopRent = n.desk.BillRentEvery(n.opts.RentEvery)
	}
	n.wg.Add(1)
	go n.advertise()
	return nil
}

// Reprice applies new prices and labels (an operator's reload): new offers use
// them, and the node re-announces itself under its new facet keys (the old
// ones expire).
func (n *Node) Reprice(p scheduler.PricePolicy, labels scheduler.Labels) error {
	if n.prov == nil {
		return fmt.Errorf("reprice: %w", errSellsNothing)
	}
	err := n.prov.Reprice(p, labels)
	if err == nil {
		n.syncRetail() // a retailer's labels are its site's
		n.marketChanged()
	}
	return err
}
