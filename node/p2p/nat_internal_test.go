package p2p

import (
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// TestAnnounced: a host announces only addresses others can dial: loopback
// ones on a devnet only, private ones where configured (or on a devnet),
// relayed ones always, unspecified ones never.
func TestAnnounced(t *testing.T) {
	const (
		loop    = "/ip4/127.0.0.1/udp/4242/quic-v1"
		loop6   = "/ip6/::1/tcp/4242"
		private = "/ip4/192.168.1.5/udp/4242/quic-v1"
		cgnat   = "/ip4/100.64.1.5/tcp/4242"
		ula     = "/ip6/fd00::5/tcp/4242"
		public  = "/ip4/203.0.114.7/udp/4242/quic-v1"
		relayed = "/ip4/203.0.114.9/udp/4242/quic-v1/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq/p2p-circuit"
		any4    = "/ip4/0.0.0.0/tcp/4242"
	)
	all := []string{loop, loop6, private, cgnat, ula, public, relayed, any4}
	for _, tc := range []struct {
		devnet, private bool
		want            []string
	}{
		{false, false, []string{public, relayed}},
		{false, true, []string{private, cgnat, ula, public, relayed}},
		{true, false, []string{loop, loop6, private, cgnat, ula, public, relayed}},
	} {
		var addrs []ma.Multiaddr
		for _, s := range all {
			addrs = append(addrs, ma.StringCast(s))
		}
		var got []string
		for _, a := range announced(addrs, tc.devnet, tc.private) {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("devnet %v, private %v: announced %v, want %v", tc.devnet, tc.private, got, tc.want)
		}
	}
}
