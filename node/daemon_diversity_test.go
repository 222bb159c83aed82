package node

import (
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/p2p"
	ma "github.com/multiformats/go-multiaddr"
)

// TestDiversityFilter: a daemon turns the DHT's routing-table diversity
// filter on whenever it listens beyond loopback (SPEC 4.1), and leaves it off
// on loopback only, where every peer shares one IP group.
func TestDiversityFilter(t *testing.T) {
	for _, tc := range []struct {
		listen []string
		want   bool
	}{
		{nil, false},
		{[]string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip6/::1/udp/0/quic-v1"}, false},
		{[]string{"/ip4/0.0.0.0/udp/4001/quic-v1"}, true},
		{[]string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/192.0.2.7/udp/4001/quic-v1"}, true},
		{[]string{"/ip6/::/tcp/4001"}, true},
	} {
		var addrs []ma.Multiaddr
		for _, s := range tc.listen {
			addrs = append(addrs, ma.StringCast(s))
		}
		if got := diversityFilter(addrs); got != tc.want {
			t.Errorf("listening on %v: diversity filter %v, want %v", tc.listen, got, tc.want)
		}
	}
}

// TestNATSwitches: each NAT switch of a daemon's config does what its name
// says, alone (they used to be ORed into one flag that turned on every
// service, port mapping included); port mapping stays off when every listen
// address is loopback, where it would only probe the host's LAN.
func TestNATSwitches(t *testing.T) {
	public := []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/udp/4001/quic-v1")}
	loopback := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
	def := config.Default().NAT
	with := func(f func(*config.NAT)) config.NAT {
		c := def
		c.AutoNAT, c.HolePunching, c.RelayClient, c.PortMapping = false, false, false, false
		f(&c)
		return c
	}
	limits := p2p.RelayLimits{Reservations: 128, CircuitsPerPeer: 16, CircuitDuration: 2 * time.Minute, CircuitData: 128 << 10}
	relay := "/ip4/192.0.2.1/udp/4242/quic-v1/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"
	relayInfo, _ := peer.AddrInfoFromString(relay)
	for _, tc := range []struct {
		c      config.NAT
		listen []ma.Multiaddr
		want   p2p.NAT
	}{
		{with(func(c *config.NAT) { c.AutoNAT = true }), public, p2p.NAT{AutoNAT: true, RelayService: p2p.RelayAuto, RelayLimits: limits}},
		{with(func(c *config.NAT) { c.HolePunching = true }), public, p2p.NAT{HolePunching: true, RelayService: p2p.RelayAuto, RelayLimits: limits}},
		{with(func(c *config.NAT) { c.RelayClient = true }), public, p2p.NAT{RelayClient: true, RelayService: p2p.RelayAuto, RelayLimits: limits}},
		{with(func(c *config.NAT) { c.PortMapping = true }), public, p2p.NAT{PortMapping: true, RelayService: p2p.RelayAuto, RelayLimits: limits}},
		{with(func(c *config.NAT) { c.PortMapping, c.AutoNAT = true, true }), loopback, p2p.NAT{AutoNAT: true, RelayService: p2p.RelayAuto, RelayLimits: limits}},
		{def, public, p2p.NAT{AutoNAT: true, HolePunching: true, RelayClient: true, PortMapping: true, RelayService: p2p.RelayAuto, RelayLimits: limits}},
		{with(func(c *config.NAT) { c.Reachability, c.RelayService, c.PrivateAddrs = "public", "on", true }), public,
			p2p.NAT{Reachability: network.ReachabilityPublic, RelayService: p2p.RelayOn, RelayLimits: limits, PrivateAddrs: true}},
		{with(func(c *config.NAT) {
			c.Reachability, c.RelayService, c.RelayClient, c.Relays = "private", "off", true, []string{relay}
		}), public,
			p2p.NAT{Reachability: network.ReachabilityPrivate, RelayClient: true, Relays: []peer.AddrInfo{*relayInfo}, RelayLimits: limits}},
	} {
		got, err := natOf(tc.c, tc.listen)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("config %+v listening on %v: %+v, %v; want %+v", tc.c, tc.listen, got, err, tc.want)
		}
	}
}
