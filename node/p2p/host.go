package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// Options configure a Host. The zero value of each optional field means its
// documented default.
type Options struct {
	Identity  crypto.PrivKey // required: the node's Ed25519 key
	Listen    []ma.Multiaddr // default QUIC v1 and TCP on 127.0.0.1, random ports
	Bootstrap []peer.AddrInfo
	// ProvideValidity is how long a provider record lives in the DHT (SPEC
	// 4.1). Default scheduler.DefaultProvideValidity.
	ProvideValidity time.Duration
	// DiversityFilter turns on kad-dht's routing-table peer diversity filter
	// (plain dht.New leaves it off). Off on loopback devnets, where every
	// peer shares one IP group.
	DiversityFilter bool
	// NAT is which NAT traversal services the host runs, and which
	// addresses it announces; none, and no private address, by default.
	NAT NAT
	// RequesterOnly makes the host that of a node that sells nothing (SPEC 1,
	// 4.1): its DHT runs in client mode (it asks, but keeps and serves no
	// one's records, and stays out of other nodes' routing tables), and
	// Serve answers only what a buyer serves, /cuivre/module and
	// /cuivre/blocks: a stream opened to it on /cuivre/offer, /cuivre/lease,
	// /cuivre/watch or /cuivre/receipt fails protocol negotiation.
	RequesterOnly bool
	// Limits are what one peer, and one place, may ask of the host.
	Limits Limits
	// PunchWait bounds the wait for hole punching to turn a relayed
	// connection into a direct one before placement goes through the
	// relay. Default 5 seconds: a few round trips.
	PunchWait time.Duration
	// AddrsChanged, if set, is called when the addresses the host
	// announces change (a relay slot taken or lost, a NAT's address
	// learnt), to announce them again.
	AddrsChanged func()
	Now          func() time.Time // checks capacity records and times rate limits; default time.Now
	Log          *slog.Logger     // default slog.Default()
}

// Host is the libp2p transport: a host on QUIC (TCP as a fallback) and the
// private Kademlia DHT, carrying the cuivre protocols over streams. It is a
// transport.Transport, safe for concurrent use.
type Host struct {
	opts    Options
	host    host.Host
	dht     *dht.IpfsDHT
	log     *slog.Logger
	handler atomic.Pointer[transport.Handler]
	// streamErr counts streams that failed or were refused, by protocol.
	streamErr *prometheus.CounterVec
	// limited counts the requests refused for their peer's rate, by protocol.
	limited *prometheus.CounterVec
	rates   rateLimiter
	watchMu sync.Mutex
	watches map[peer.ID]int // open watches by peer, which protect it (LeaseTag)
	reach   *reachState
	dhtRef  atomic.Pointer[dht.IpfsDHT] // for the autorelay's candidates
	relay   *relayv2.Relay              // the relay service when NAT.RelayService is RelayOn
	punches sync.Map                    // peer.ID -> time.Time: when a wait for hole punching to it failed

	ctx       context.Context
	cancel    context.CancelFunc
	mu        sync.Mutex     // guards closing, and wg's additions
	closing   bool           // Close has begun: no new stream is served
	wg        sync.WaitGroup // stream handlers running
	closeOnce sync.Once
	closeErr  error
}

// New starts a host and its DHT, in server mode (client mode for a
// RequesterOnly host). It answers no cuivre protocol until Serve is called.
func New(o Options) (*Host, error) {
	if o.Identity == nil {
		return nil, errors.New("p2p: no identity key")
	}
	if o.ProvideValidity <= 0 {
		o.ProvideValidity = scheduler.DefaultProvideValidity
	}
	o.Limits = o.Limits.withDefaults()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PunchWait <= 0 {
		o.PunchWait = defaultPunchWait
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if len(o.Listen) == 0 {
		for _, s := range []string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"} {
			o.Listen = append(o.Listen, ma.StringCast(s))
		}
	}
	hs := &Host{opts: o, reach: newReachState(),
		streamErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_stream_errors_total", Help: "Streams that failed or were refused, by protocol.",
		}, []string{"protocol"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_rate_limited_total", Help: "Requests refused with CODE_RATE_LIMITED for their peer's request rate, by protocol.",
		}, []string{"protocol"}),
		rates: rateLimiter{limit: o.Limits.rateOf}}
	h, err := newHost(o, hs)
	if err != nil {
		return nil, err
	}
	hs.host, hs.log = h, o.Log.With("peer", protocol.ShortPeerID(string(h.ID())))
	hs.ctx, hs.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*Host, error) {
		hs.cancel()
		h.Close()
		return nil, err
	}
	if err := hs.followReach(hs.ctx); err != nil {
		return fail(fmt.Errorf("p2p: reachability events: %w", err))
	}
	if o.NAT.RelayService == RelayOn {
		if hs.relay, err = relayv2.New(h, o.NAT.relayOptions()...); err != nil {
			return fail(fmt.Errorf("p2p: relay service: %w", err))
		}
	}
	return hs, nil
}

// Streams one peer may have open to the cuivre protocols: in all, and on
// each protocol (a watch lasts as long as its run, so a requester has one
// per lease it holds here).
const (
	streamsPerPeer         = 256
	streamsPerPeerProtocol = 64
)

func newHost(o Options, hs *Host) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	perPeer := rcmgr.BaseLimit{StreamsInbound: streamsPerPeer, StreamsOutbound: streamsPerPeer, Streams: 2 * streamsPerPeer, Memory: 256 << 20}
	limits.AddServicePeerLimit(ServiceName, perPeer, rcmgr.BaseLimitIncrease{})
	for _, id := range cuivreProtocols {
		limits.AddProtocolPeerLimit(id, rcmgr.BaseLimit{StreamsInbound: streamsPerPeerProtocol, StreamsOutbound: streamsPerPeerProtocol,
			Streams: 2 * streamsPerPeerProtocol, Memory: 256 << 20}, rcmgr.BaseLimitIncrease{})
	}
	// Loopback is exempt, as libp2p's defaults have it, unless limited:
	// then each loopback address is an IP like any other.
	v4 := []rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("127.0.0.0/8"), ConnCount: math.MaxInt}}
	v6 := []rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("::1/128"), ConnCount: math.MaxInt}}
	if o.Limits.Loopback {
		v4, v6 = []rcmgr.NetworkPrefixLimit{}, []rcmgr.NetworkPrefixLimit{}
	}
	// Every connection relayed to this host comes from its relay's
	// address: the per-IP limit would let only a few peers reach a NATed
	// host through the relays it was given.
	for _, r := range o.NAT.Relays {
		for _, a := range r.Addrs {
			if ip, ok := ipOf(a); ok {
				limit := rcmgr.NetworkPrefixLimit{Network: netip.PrefixFrom(ip, ip.BitLen()), ConnCount: math.MaxInt}
				if ip.Is4() {
					v4 = append(v4, limit)
				} else {
					v6 = append(v6, limit)
				}
			}
		}
	}
	n := o.Limits.ConnsPerIP
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()),
		rcmgr.WithMetricsDisabled(), // see DisableMetrics below
		rcmgr.WithNetworkPrefixLimit(v4, v6),
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: n}},
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: n}, {PrefixLength: 48, ConnCount: 8 * n}},
		))
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(100, 400, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
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
		// (it serves its own), and cost a traced event under a global lock
		// for every stream opened and closed.
		libp2p.DisableMetrics(),
	}
	// Only addresses others can dial are announced: loopback ones on a
	// devnet (every listen address loopback), private ones where
	// configured; the relay's always.
	devnet := Devnet(o.Listen)
	opts = append(opts, libp2p.AddrsFactory(func(as []ma.Multiaddr) []ma.Multiaddr { return announced(as, devnet, o.NAT.PrivateAddrs) }))
	opts = append(opts, o.NAT.options(hs.dhtRelays, hs.reach)...)
	// The DHT is the host's peer routing too: a peer dialled with no
	// address known, or stale ones (a NATed peer's relay changed), is
	// looked up first.
	opts = append(opts, libp2p.Routing(func(h host.Host) (routing.PeerRouting, error) {
		d, err := dht.New(h, dhtOptions(o, h)...)
		if err != nil {
			return nil, fmt.Errorf("p2p: dht: %w", err)
		}
		hs.dht = d
		hs.dhtRef.Store(d)
		return d, nil
	}))
	h, err := libp2p.New(opts...)
	if err != nil {
		if hs.dht != nil {
			hs.dht.Close()
		}
		return nil, fmt.Errorf("p2p: libp2p host: %w", err)
	}
	return h, nil
}

// dhtOptions are the options of the host's DHT.
func dhtOptions(o Options, h host.Host) []dht.Option {
	mode := dht.ModeServer
	switch {
	case o.RequesterOnly:
		mode = dht.ModeClient // it keeps no one's records (SPEC 4.1)
	case o.NAT.Reachability == network.ReachabilityPrivate:
		mode = dht.ModeClient // peers could not dial it to ask
	case o.NAT.Reachability == network.ReachabilityUnknown && o.NAT.AutoNAT && !o.NAT.PrivateAddrs && !Devnet(o.Listen):
		// A server once AutoNAT finds it reachable; AutoNAT cannot judge
		// private addresses, so on a private network it stays a server.
		mode = dht.ModeAuto
	}
	opts := []dht.Option{
		dht.Mode(mode),
		dht.ProtocolPrefix(protocol.DHTPrefix),
		dht.BootstrapPeers(o.Bootstrap...),
		dht.ProviderManagerOpts(records.ProvideValidity(o.ProvideValidity)),
		dht.NamespacedValidator(protocol.CapacityNamespace, record.CapacityValidator{Now: o.Now}),
		dht.NamespacedValidator(protocol.TariffNamespace, record.TariffValidator{Now: o.Now}),
	}
	if o.DiversityFilter {
		opts = append(opts, dht.RoutingTablePeerDiversityFilter(dht.NewRTPeerDiversityFilter(h, 2, 3)))
	}
	return opts
}

// Devnet says whether a host listening on listen is on a devnet: every
// address loopback, the whole federation on one machine.
func Devnet(listen []ma.Multiaddr) bool {
	return !slices.ContainsFunc(listen, func(a ma.Multiaddr) bool { return !manet.IsIPLoopback(a) })
}

// Self returns the host's peer ID, in binary form.
func (h *Host) Self() string { return string(h.host.ID()) }

// ID returns the host's peer ID.
func (h *Host) ID() peer.ID { return h.host.ID() }

// Host returns the libp2p host.
func (h *Host) Host() host.Host { return h.host }

// AddrInfo returns the peer ID and listen addresses, for bootstrapping.
func (h *Host) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: h.host.ID(), Addrs: h.host.Addrs()} }

// Collectors returns the host's metrics and gauges, to register.
func (h *Host) Collectors() []prometheus.Collector {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	conns := func(kind string, relayed bool) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cuivre_connections", ConstLabels: prometheus.Labels{"kind": kind},
			Help: "Open connections to peers, direct or through a circuit relay."}, func() float64 {
			n := 0
			for _, c := range h.host.Network().Conns() {
				if isRelayed(c.RemoteMultiaddr()) == relayed {
					n++
				}
			}
			return float64(n)
		})
	}
	return append(h.reach.collectors(), h.streamErr, h.limited,
		gauge("cuivre_peers", "Connected peers.", func() float64 { return float64(len(h.host.Network().Peers())) }),
		gauge("cuivre_dht_routing_table_peers", "Peers in the DHT routing table.", func() float64 { return float64(h.RoutingTableSize()) }),
		conns("direct", false), conns("relayed", true),
	)
}

// Bootstrap connects to the bootstrap peers and fills the routing table.
func (h *Host) Bootstrap(ctx context.Context) error {
	for _, p := range h.opts.Bootstrap {
		if err := h.host.Connect(ctx, p); err != nil {
			h.log.Warn("bootstrap peer unreachable", "bootstrap", p.ID, "err", err)
		}
	}
	return h.dht.Bootstrap(ctx)
}

// HasBootstrap reports whether the host was given bootstrap peers.
func (h *Host) HasBootstrap() bool { return len(h.opts.Bootstrap) > 0 }

// RoutingTableSize returns the number of peers in the DHT routing table.
func (h *Host) RoutingTableSize() int { return h.dht.RoutingTable().Size() }

// RoutingPeers returns the peers of the DHT routing table.
func (h *Host) RoutingPeers() []string {
	var out []string
	for _, p := range h.dht.RoutingTable().ListPeers() {
		out = append(out, string(p))
	}
	return out
}

// Provide announces a CID (a facet key's, a module's) as provided by this
// host (SPEC 4.3).
func (h *Host) Provide(ctx context.Context, c cid.Cid) error { return h.dht.Provide(ctx, c, true) }

// ProvideLocally keeps a provider record of c for this host in its own DHT
// store only, where the lookups that ask this host find it: for a host
// whose routing table is empty, which has nobody else to store it with.
func (h *Host) ProvideLocally(ctx context.Context, c cid.Cid) error {
	return h.dht.Provide(ctx, c, false)
}

// FindProviders looks key up until it has want providers, or need and grace
// has passed since (a placement that waits needs no more), or the lookup
// ends; complete says it ran to its end.
func (h *Host) FindProviders(ctx context.Context, key cid.Cid, want, need int, grace time.Duration) (out []string, complete bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := h.dht.FindProvidersAsync(ctx, key, want)
	var enough <-chan time.Time
	for {
		select {
		case p, ok := <-found:
			if !ok {
				return out, ctx.Err() == nil
			}
			out = append(out, string(p.ID))
			if len(out) == need {
				enough = time.After(grace)
			}
		case <-enough:
			return out, false
		}
	}
}

// PeerInfo is one connected peer, as `cuivre peers` shows it.
type PeerInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// Peers returns the connected peers.
func (h *Host) Peers() []PeerInfo {
	var out []PeerInfo
	for _, p := range h.host.Network().Peers() {
		pi := PeerInfo{ID: p.String()}
		for _, c := range h.host.Network().ConnsToPeer(p) {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr().String())
		}
		out = append(out, pi)
	}
	return out
}

// Close stops serving, waits for the stream handlers, and closes the DHT and
// the host. Closing it again does nothing.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closing = true
		h.mu.Unlock()
		h.cancel()
		h.Serve(nil)
		h.wg.Wait()
		var relayErr error
		if h.relay != nil {
			relayErr = h.relay.Close()
		}
		h.closeErr = errors.Join(h.dht.Close(), relayErr, h.host.Close())
	})
	return h.closeErr
}

// DHT returns the host's Kademlia DHT.
func (h *Host) DHT() *dht.IpfsDHT { return h.dht }
