package node

import (
	"testing"

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
