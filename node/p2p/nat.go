package p2p

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
)

// NAT is how a host gets reachable from behind a router, and how it helps
// others do so: libp2p's services, each on its own switch.
type NAT struct {
	// AutoNAT asks peers whether the host is reachable, and answers theirs
	// (AutoNAT v1, which decides the host's reachability, and v2, which
	// checks each address).
	AutoNAT bool
	// HolePunching turns relayed connections into direct ones (DCUtR). It
	// needs RelayClient.
	HolePunching bool
	// RelayClient is the circuit relay v2 transport: dial peers through
	// relays and, while the host is not reachable, hold a slot on relays
	// (Relays, or relays found among the DHT's peers) and announce it.
	RelayClient bool
	// PortMapping asks the router for a port (UPnP, NAT-PMP): traffic to
	// the host's LAN.
	PortMapping bool
	// Reachability, unless Unknown, is what the host takes itself to be,
	// whatever AutoNAT finds: for networks AutoNAT cannot judge (a private
	// federation), or a NAT known in advance.
	Reachability network.Reachability
	// Relays are the relays a host not reachable holds a slot on; none:
	// relays found among the DHT's peers.
	Relays []peer.AddrInfo
	// RelayService is when the host relays for peers behind NATs.
	RelayService RelayMode
	// RelayLimits bound the relay service; zero fields take libp2p's
	// defaults.
	RelayLimits RelayLimits
	// PrivateAddrs announces addresses in private ranges (10/8,
	// 172.16/12, 192.168/16, 100.64/10, fc00::/7...): for a federation on
	// a routed private network. go-libp2p relays and punches holes between
	// public addresses only, so there nodes must reach each other directly.
	PrivateAddrs bool
}

// relayBootDelay is how long a host not reachable looks for relays among
// the DHT's peers before it takes a slot on those it found.
const relayBootDelay = 20 * time.Second

// RelayMode is when a host runs the circuit relay v2 service.
type RelayMode int

const (
	RelayOff  RelayMode = iota // never
	RelayAuto                  // while the host is reachable (public)
	RelayOn                    // always
)

// RelayLimits bound a relay service: a relayed connection is only for small
// messages and for the time hole punching takes.
type RelayLimits struct {
	Reservations    int           // peers holding a slot at once; libp2p's default 128
	CircuitsPerPeer int           // relayed connections of one peer at once; default 16
	CircuitDuration time.Duration // a relayed connection's longest life; default 2 minutes
	CircuitData     int64         // bytes one relayed connection carries each way; default 128 KiB
}

func (l RelayLimits) resources() relayv2.Resources {
	r := relayv2.DefaultResources()
	lim := *r.Limit
	r.Limit = &lim
	if l.Reservations > 0 {
		r.MaxReservations = l.Reservations
	}
	if l.CircuitsPerPeer > 0 {
		r.MaxCircuits = l.CircuitsPerPeer
	}
	if l.CircuitDuration > 0 {
		r.Limit.Duration = l.CircuitDuration
	}
	if l.CircuitData > 0 {
		r.Limit.Data = l.CircuitData
	}
	return r
}

// relayOptions are the relay service's options.
func (n NAT) relayOptions() []relayv2.Option {
	return []relayv2.Option{relayv2.WithResources(n.RelayLimits.resources())}
}

// options are the libp2p options of n's switches. relays finds relay
// candidates among the DHT's peers, when no relay is configured; punches
// hears of each hole punch.
func (n NAT) options(relays autorelay.PeerSource, punches holepunch.EventTracer) []libp2p.Option {
	var opts []libp2p.Option
	if n.AutoNAT {
		opts = append(opts, libp2p.EnableAutoNATv2(), libp2p.EnableNATService())
	}
	switch n.Reachability {
	case network.ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case network.ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if n.RelayClient {
		opts = append(opts, libp2p.EnableRelay())
		// autorelay waits up to its boot delay (3 minutes by default) for
		// 4 candidates before it takes a slot: a federation of small
		// operators may have fewer relays, and a provider is unsellable
		// until it has a slot.
		boot := autorelay.WithBootDelay(relayBootDelay)
		if len(n.Relays) > 0 {
			opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(n.Relays, boot))
		} else {
			opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(relays, boot))
		}
		if n.HolePunching {
			opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(punches)))
		}
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	if n.RelayService == RelayAuto {
		opts = append(opts, libp2p.EnableRelayService(n.relayOptions()...))
	}
	if n.PortMapping {
		opts = append(opts, libp2p.NATPortMap())
	}
	return opts
}

// announced returns the addresses of addrs a host tells the federation
// about: only those others can dial. Loopback ones are for a federation on
// one machine (a devnet: every listen address loopback), private ones for a
// private network (PrivateAddrs); relayed ones are always kept.
func announced(addrs []ma.Multiaddr, devnet, private bool) []ma.Multiaddr {
	return slices.DeleteFunc(slices.Clone(addrs), func(a ma.Multiaddr) bool {
		switch {
		case isRelayed(a):
			return false
		case manet.IsIPLoopback(a):
			return !devnet
		case manet.IsIPUnspecified(a):
			return true
		case manet.IsPrivateAddr(a) || !manet.IsPublicAddr(a):
			return !private && !devnet
		}
		return false
	})
}

// isRelayed says whether a goes through a circuit relay.
func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// Reach is what the host knows of its own reachability, for `cuivre id`
// and `cuivre node status` (api.Reach says what each field is).
type Reach struct {
	Reachability string // public, private or unknown
	Announced    []string
	Listen       []string
	Observed     []string
	Relayed      []string
	Reachable    []string
	Unreachable  []string
	RelayService bool
}

// reachName names a reachability as Reach and the metrics do.
func reachName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// reachState follows the host's reachability from libp2p's events: it logs
// each change and exports it as metrics.
type reachState struct {
	mu          sync.Mutex
	reach       network.Reachability
	reachable   []ma.Multiaddr
	unreachable []ma.Multiaddr
	relayAddrs  int
	relaying    bool

	gauge   *prometheus.GaugeVec   // cuivre_reachability{state}
	changes *prometheus.CounterVec // cuivre_reachability_changes_total{state}
	punches *prometheus.CounterVec // cuivre_hole_punches_total{result}
	relayed *prometheus.CounterVec // cuivre_relayed_streams_total{protocol}
	served  *prometheus.CounterVec // cuivre_streams_served_total{protocol,conn}
}

func newReachState() *reachState {
	s := &reachState{
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cuivre_reachability",
			Help: "1 for the node's reachability (public, private or unknown), 0 for the others."}, []string{"state"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cuivre_reachability_changes_total",
			Help: "Changes of the node's reachability, by the state it changed to."}, []string{"state"}),
		punches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cuivre_hole_punches_total",
			Help: "DCUtR upgrades of relayed connections this node started, by result: direct_dial (it dialled the peer directly), success or failure (of a hole punch)."}, []string{"result"}),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cuivre_relayed_streams_total",
			Help: "Streams this node opened over a relayed connection, hole punching having failed, by protocol."}, []string{"protocol"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cuivre_streams_served_total",
			Help: "Streams of the cuivre protocols this node answered, by protocol and connection (direct or relayed)."}, []string{"protocol", "conn"}),
	}
	s.set(network.ReachabilityUnknown)
	return s
}

func (s *reachState) set(r network.Reachability) {
	for _, st := range []network.Reachability{network.ReachabilityUnknown, network.ReachabilityPublic, network.ReachabilityPrivate} {
		v := 0.0
		if st == r {
			v = 1
		}
		s.gauge.WithLabelValues(reachName(st)).Set(v)
	}
}

func (s *reachState) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.gauge, s.changes, s.punches, s.relayed, s.served}
}

// Trace counts the hole punches (holepunch.EventTracer).
func (s *reachState) Trace(ev *holepunch.Event) {
	switch e := ev.Evt.(type) {
	case *holepunch.DirectDialEvt:
		if e.Success {
			s.punches.WithLabelValues("direct_dial").Inc() // the peer was dialled back directly: no hole needed
		}
	case *holepunch.EndHolePunchEvt:
		result := "failure"
		if e.Success {
			result = "success"
		}
		s.punches.WithLabelValues(result).Inc()
	}
}

// followReach reads h's reachability events until ctx ends, logging each change.
func (h *Host) followReach(ctx context.Context) error {
	sub, err := h.host.EventBus().Subscribe([]any{new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged), new(event.EvtAutoRelayAddrsUpdated), new(event.EvtLocalAddressesUpdated)})
	if err != nil {
		return err
	}
	go func() {
		defer sub.Close()
		s := h.reach
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-sub.Out():
				s.mu.Lock()
				switch ev := e.(type) {
				case event.EvtLocalReachabilityChanged:
					if ev.Reachability != s.reach {
						h.log.Info("reachability changed", "from", reachName(s.reach), "to", reachName(ev.Reachability),
							"addrs", h.host.Addrs())
						s.reach = ev.Reachability
						s.set(ev.Reachability)
						s.changes.WithLabelValues(reachName(ev.Reachability)).Inc()
					}
				case event.EvtHostReachableAddrsChanged:
					if !slices.EqualFunc(s.reachable, ev.Reachable, ma.Multiaddr.Equal) || !slices.EqualFunc(s.unreachable, ev.Unreachable, ma.Multiaddr.Equal) {
						h.log.Info("addresses checked (AutoNAT v2)", "reachable", ev.Reachable, "unreachable", ev.Unreachable)
					}
					s.reachable, s.unreachable = ev.Reachable, ev.Unreachable
				case event.EvtLocalAddressesUpdated:
					if ev.Diffs && h.opts.AddrsChanged != nil {
						h.opts.AddrsChanged()
					}
				case event.EvtAutoRelayAddrsUpdated:
					if len(ev.RelayAddrs) != s.relayAddrs {
						h.log.Info("relay addresses", "addrs", ev.RelayAddrs)
					}
					s.relayAddrs = len(ev.RelayAddrs)
				}
				s.mu.Unlock()
			}
		}
	}()
	return nil
}

// Reach returns what the host knows of its reachability.
func (h *Host) Reach() Reach {
	s := h.reach
	s.mu.Lock()
	r := Reach{Reachability: reachName(s.reach), Reachable: strs(s.reachable), Unreachable: strs(s.unreachable)}
	s.mu.Unlock()
	r.RelayService = h.relaying()
	listen, _ := h.host.Network().InterfaceListenAddresses()
	listen = slices.DeleteFunc(listen, isRelayed) // the relay transport's bare /p2p-circuit
	r.Listen = strs(listen)
	for _, a := range h.host.Addrs() {
		r.Announced = append(r.Announced, a.String())
		if isRelayed(a) {
			r.Relayed = append(r.Relayed, a.String())
		}
	}
	if all, ok := h.host.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		for _, a := range all.AllAddrs() {
			if !isRelayed(a) && !slices.ContainsFunc(listen, a.Equal) {
				r.Observed = append(r.Observed, a.String())
			}
		}
	}
	return r
}

// relaying says whether the host runs the relay service now.
func (h *Host) relaying() bool {
	switch h.opts.NAT.RelayService {
	case RelayOn:
		return h.relay != nil
	case RelayAuto:
		return slices.Contains(h.host.Mux().Protocols(), circuit.ProtoIDv2Hop)
	}
	return false
}

func strs(as []ma.Multiaddr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// dhtRelays is the autorelay's source of relay candidates when none is
// configured: the peers of the DHT's routing table (autorelay keeps those
// that offer the relay service).
func (h *Host) dhtRelays(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	go func() {
		defer close(out)
		d := h.dhtRef.Load()
		if d == nil {
			return
		}
		for _, p := range d.RoutingTable().ListPeers() {
			if num == 0 {
				return
			}
			select {
			case out <- h.host.Peerstore().PeerInfo(p):
				num--
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
