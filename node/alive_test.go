package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestAlive: a node whose bootstrap peer is out of reach is not ready, but
// alive: the watchdog must not kill a daemon for having no peers. A closed
// node is not alive.
func TestAlive(t *testing.T) {
	gone, err := peer.IDFromPrivateKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Identity: newKey(t), Market: testMarket(), Store: openStore(t),
		Bootstrap: []peer.AddrInfo{{ID: gone, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/9/quic-v1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if n.Ready() == nil {
		t.Error("Ready() = nil with no DHT peer, want not ready")
	}
	if err := n.Alive(); err != nil {
		t.Errorf("Alive() = %v, want nil: a node alone is alive", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if n.Alive() == nil {
		t.Error("Alive() = nil after Close")
	}
}
