package node

import (
	"testing"

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
	for _, tc := range []struct {
		c      config.NAT
		listen []ma.Multiaddr
		want   p2p.NAT
	}{
		{config.NAT{AutoNAT: true}, public, p2p.NAT{AutoNAT: true}},
		{config.NAT{HolePunching: true}, public, p2p.NAT{HolePunching: true}},
		{config.NAT{RelayClient: true}, public, p2p.NAT{RelayClient: true}},
		{config.NAT{PortMapping: true}, public, p2p.NAT{PortMapping: true}},
		{config.NAT{PortMapping: true, AutoNAT: true}, loopback, p2p.NAT{AutoNAT: true}},
		{config.Default().NAT, public, p2p.NAT{AutoNAT: true, HolePunching: true, RelayClient: true, PortMapping: true}},
	} {
		if got := natOf(tc.c, tc.listen); got != tc.want {
			t.Errorf("config %+v listening on %v: %+v, want %+v", tc.c, tc.listen, got, tc.want)
		}
	}
}
