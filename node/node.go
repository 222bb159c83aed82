package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// Options configure a Node. The zero value of each optional field means its
// documented default.
type Options struct {
	Identity  crypto.PrivKey // required: the node's Ed25519 key
	Listen    []ma.Multiaddr // default QUIC v1 and TCP on 127.0.0.1, random ports
	Bootstrap []peer.AddrInfo
	Market    scheduler.MarketConfig // Provider is filled with the node's peer ID

	// ProvideValidity is how long a provider record lives in the DHT (SPEC
	// 4.1); the node reprovides at a third of it. Default
	// scheduler.DefaultProvideValidity (10 minutes).
	ProvideValidity time.Duration
	// DiversityFilter turns on kad-dht's routing-table peer diversity filter
	// (DESIGN: plain dht.New leaves it off). Off on loopback devnets, where
	// every peer shares one IP group.
	DiversityFilter bool
	// NAT traversal: AutoNAT v2, hole punching and the relay client.
	NAT bool
	// MaxConnsPerIP bounds connections from one IP, loopback included: the
	// resource manager exempts loopback unless told (DESIGN, security rules).
	// Default 64.
	MaxConnsPerIP int

	// Store and Exec make the node a provider that runs leases; without
	// them it refuses leases. Store also lets it serve modules and keep
	// receipts. The node does not close them.
	Store *store.Store
	Exec  *exec.Executor
	// Placement tunes the requester's placements (scheduler defaults).
	Placement scheduler.Config
	// CandidateTTL is how long a requester reuses what a DHT lookup of a
	// facet key returned. Default scheduler.DefaultCandidateTTL (10 seconds).
	CandidateTTL time.Duration
	// ReplayCacheSize bounds the live lease nonces remembered. Default 100,000.
	ReplayCacheSize int

	Now func() time.Time // default time.Now
	Log *slog.Logger     // default slog.Default()
}

// Node is one cuivre daemon: a libp2p host on QUIC (TCP as a fallback), the
// private Kademlia DHT, and the protocol handlers that drive the scheduler's
// market with real time. It is safe for concurrent use.
type Node struct {
	opts Options
	host host.Host
	dht  *dht.IpfsDHT
	log  *slog.Logger
	now  func() time.Time

	mu     sync.Mutex // guards market
	market *scheduler.Market

	store      *store.Store
	exec       *exec.Executor
	replay     *protocol.ReplayCache
	runsMu     sync.Mutex
	runs       map[runKey]*run
	watching   sync.WaitGroup // watch streams following a run
	jobsMu     sync.Mutex
	jobs       map[string]*job // by job CID, text form
	candidates candidateCache

	metrics  *metrics
	changed  chan struct{} // what the node sells changed: re-announce soon
	loaded   atomic.Bool   // leases came or went: republish the capacity record in a while
	draining atomic.Bool

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts a node: host, DHT, handlers, and the advertising loop.
func New(ctx context.Context, o Options) (*Node, error) {
	if o.Identity == nil {
		return nil, errors.New("node: no identity key")
	}
	if o.ProvideValidity <= 0 {
		o.ProvideValidity = scheduler.DefaultProvideValidity
	}
	if o.CandidateTTL <= 0 {
		o.CandidateTTL = scheduler.DefaultCandidateTTL
	}
	if o.ReplayCacheSize <= 0 {
		o.ReplayCacheSize = 100_000
	}
	if o.MaxConnsPerIP <= 0 {
		o.MaxConnsPerIP = 64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if len(o.Listen) == 0 {
		for _, s := range []string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"} {
			o.Listen = append(o.Listen, ma.StringCast(s))
		}
	}
	h, err := newHost(o)
	if err != nil {
		return nil, err
	}
	id := h.ID()
	o.Market.Provider = string(id)
	market, err := scheduler.NewMarket(o.Market)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("node: market: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &Node{opts: o, host: h, log: o.Log.With("peer", id.ShortString()), now: o.Now, market: market, ctx: ctx, cancel: cancel, changed: make(chan struct{}, 1),
		store: o.Store, exec: o.Exec, replay: protocol.NewReplayCache(o.ReplayCacheSize), runs: map[runKey]*run{}, jobs: map[string]*job{},
		candidates: candidateCache{ttl: o.CandidateTTL}}
	dopts := []dht.Option{
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(protocol.DHTPrefix),
		dht.BootstrapPeers(o.Bootstrap...),
		dht.ProviderManagerOpts(records.ProvideValidity(o.ProvideValidity)),
		dht.NamespacedValidator(protocol.CapacityNamespace, capacityValidator{now: o.Now}),
	}
	if o.DiversityFilter {
		dopts = append(dopts, dht.RoutingTablePeerDiversityFilter(dht.NewRTPeerDiversityFilter(h, 2, 3)))
	}
	n.dht, err = dht.New(h, dopts...)
	if err != nil {
		cancel()
		h.Close()
		return nil, fmt.Errorf("node: dht: %w", err)
	}
	n.metrics = newMetrics(n)
	if err := n.recover(); err != nil {
		n.dht.Close()
		cancel()
		h.Close()
		return nil, err
	}
	n.handle()
	if err := n.resumeJobs(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func newHost(o Options) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()),
		rcmgr.WithMetricsDisabled(), // see DisableMetrics below
		rcmgr.WithNetworkPrefixLimit(
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("127.0.0.0/8"), ConnCount: o.MaxConnsPerIP}},
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("::1/128"), ConnCount: o.MaxConnsPerIP}},
		))
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(100, 400, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(o.Identity),
		libp2p.ListenAddrs(o.Listen...),
		libp2p.Transport(quic.NewTransport),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent("cuivre"),
		// libp2p's own metrics (and the resource manager's above) would go
		// to Prometheus' default registry, which the node does not serve
		// (it serves its own, see metrics.go), and cost a traced event under
		// a global lock for every stream opened and closed.
		libp2p.DisableMetrics(),
	}
	if o.NAT {
		opts = append(opts, libp2p.EnableAutoNATv2(), libp2p.EnableHolePunching(), libp2p.EnableRelay(), libp2p.NATPortMap())
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("node: libp2p host: %w", err)
	}
	return h, nil
}

// Identity returns the node's private key, which also signs the jobs the
// node's own operator submits (SPEC 1: the customer's key may be the node's).
func (n *Node) Identity() crypto.PrivKey { return n.opts.Identity }

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// AddrInfo returns the node's peer ID and listen addresses, for bootstrapping.
func (n *Node) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()} }

// Bootstrap connects to the bootstrap peers and fills the routing table.
func (n *Node) Bootstrap(ctx context.Context) error {
	for _, p := range n.opts.Bootstrap {
		if err := n.host.Connect(ctx, p); err != nil {
			n.log.Warn("bootstrap peer unreachable", "bootstrap", p.ID, "err", err)
		}
	}
	return n.dht.Bootstrap(ctx)
}

// RoutingTableSize returns the number of peers in the DHT routing table.
func (n *Node) RoutingTableSize() int { return n.dht.RoutingTable().Size() }

// MarketState returns a snapshot of the node's market.
func (n *Node) MarketState() scheduler.MarketState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.market.State()
}

// Advertise announces the node's facet keys as DHT provider records (SPEC 4.3).
func (n *Node) Advertise(ctx context.Context) error {
	c := n.opts.Market
	keys := scheduler.ProviderKeys(string(n.ID()), c.Labels, c.Executors, c.Capacity)
	var errs []error
	for _, k := range keys {
		if err := n.dht.Provide(ctx, wire.FacetCID(k), true); err != nil {
			errs = append(errs, fmt.Errorf("provide %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// FindProviders looks a facet key up in the DHT and returns up to want peers.
func (n *Node) FindProviders(ctx context.Context, key protocol.FacetKey, want int) []peer.AddrInfo {
	out, _ := n.findProviders(ctx, wire.FacetCID(key), want, want, 0)
	return out
}

// FindCID looks any CID up (a module's providers, for instance).
func (n *Node) FindCID(ctx context.Context, c cid.Cid, want int) []peer.AddrInfo {
	out, _ := n.findProviders(ctx, c, want, want, 0)
	return out
}

// findProviders looks c up until it has want providers, or need and grace
// has passed since (a placement that waits needs no more), or the lookup
// ends; complete says it ran to its end.
func (n *Node) findProviders(ctx context.Context, c cid.Cid, want, need int, grace time.Duration) (out []peer.AddrInfo, complete bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := n.dht.FindProvidersAsync(ctx, c, want)
	var enough <-chan time.Time
	for {
		select {
		case p, ok := <-found:
			if !ok {
				return out, ctx.Err() == nil
			}
			out = append(out, p)
			if len(out) == need {
				enough = time.After(grace)
			}
		case <-enough:
			return out, false
		}
	}
}

// CancelRuns stops every run still going and waits, up to timeout, until each
// has recorded its end and told its watchers (a draining daemon's last step).
func (n *Node) CancelRuns(timeout time.Duration) {
	n.runsMu.Lock()
	var live []*run
	for _, r := range n.runs {
		live = append(live, r)
	}
	n.runsMu.Unlock()
	deadline := time.Now().Add(timeout)
	for _, r := range live {
		r.cancel()
		for {
			r.mu.Lock()
			done, changed := r.result != nil, r.changed
			r.mu.Unlock()
			if done || time.Now().After(deadline) {
				break
			}
			select {
			case <-changed:
			case <-time.After(time.Until(deadline)):
			}
		}
	}
	// Let the watch streams carry the results out before the host closes.
	done := make(chan struct{})
	go func() { n.watching.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
	}
}

// Close stops the node. Closing it again does nothing.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.closeErr = errors.Join(n.dht.Close(), n.host.Close())
	})
	return n.closeErr
}
