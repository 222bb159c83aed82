package devnet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/wire"
)

// TestDevnet: five real nodes on loopback form a DHT; a provider of each
// profile is found from the requester under its region; the API of the
// requester answers through the data dir's files.
func TestDevnet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Start(ctx, Options{N: 5, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, p := range d.Providers {
		key, _ := protocol.ProviderKey(protocol.FacetRegion, d.Profiles[i].Region, string(p.ID()))
		found := false
		for _, ai := range d.Requester.FindProviders(ctx, key, 8) {
			found = found || ai == p.ID()
		}
		if !found {
			t.Errorf("provider %d (%s) not found under %s", i, d.Profiles[i].Name, key)
		}
	}
	srv, err := d.Serve()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(ctx)
	c, err := api.Dial(d.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var st api.NodeStatus
	if err := c.Get("/v1/status", &st); err != nil || st.DHTPeers == 0 {
		t.Fatalf("status %+v, %v", st, err)
	}
}

// TestProfileFile: the example profile file is the built-in mix, and a bad
// file is refused with the profile and the field.
func TestProfileFile(t *testing.T) {
	got, err := LoadProfiles("../../examples/devnet/profiles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Profiles, got); diff != "" {
		t.Fatalf("examples/devnet/profiles.yaml differs from Profiles (-built-in +file):\n%s", diff)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("profiles:\n  - {name: x, region: FR, operator: o, cpu: lots, memory: 1Gi, cpu_per_hour: \"0.01\", memory_gib_per_hour: \"0\"}\n"), 0o644)
	_, err = LoadProfiles(bad)
	if err == nil || !strings.Contains(err.Error(), "profiles[0] (x).region") || !strings.Contains(err.Error(), "profiles[0] (x).cpu") {
		t.Fatalf("bad file: %v", err)
	}
}

// TestNewRequester: a requester added to a running devnet joins its DHT and
// finds a provider's facet key; Close closes it with the rest.
func TestNewRequester(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Start(ctx, Options{N: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.NewRequester(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID() == d.Requester.ID() {
		t.Fatal("the new requester has the devnet requester's identity")
	}
	p := d.Providers[2]
	key, _ := protocol.ProviderKey(protocol.FacetRegion, d.Profiles[2].Region, string(p.ID()))
	found := false
	for _, ai := range r.FindProviders(ctx, key, 8) {
		found = found || ai == p.ID()
	}
	if !found {
		t.Fatalf("the new requester does not find provider 3 under %s", key)
	}
}

// TestBootstrapFile: a devnet writes its bootstrap multiaddrs to
// Dir/bootstrap.txt, one a line, each ending in a provider's peer ID, with a
// QUIC v1 address for every provider; a stock go-libp2p host running a
// stock kad-dht client, given only that file, joins the devnet's DHT and finds a provider under its region's
// facet key (SPEC 4.1, 4.3), as a third-party implementation would.
func TestBootstrapFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Start(ctx, Options{N: 3, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := os.ReadFile(filepath.Join(d.Dir, BootstrapFile))
	if err != nil {
		t.Fatal(err)
	}
	var boot []peer.AddrInfo
	ids := map[peer.ID]bool{}
	for line := range strings.Lines(string(b)) {
		ai, err := peer.AddrInfoFromString(strings.TrimSpace(line))
		if err != nil {
			t.Fatalf("%s: line %q: %v", BootstrapFile, line, err)
		}
		boot = append(boot, *ai)
		ids[ai.ID] = ids[ai.ID] || strings.Contains(line, "/quic-v1/p2p/")
	}
	for i, p := range d.Providers {
		if !ids[p.ID()] {
			t.Errorf("%s lists no QUIC v1 address of provider %d: %q", BootstrapFile, i, b)
		}
	}

	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	kad, err := dht.New(h, dht.Mode(dht.ModeClient), dht.ProtocolPrefix("/cuivre"), dht.BootstrapPeers(boot...))
	if err != nil {
		t.Fatal(err)
	}
	defer kad.Close()
	for _, ai := range boot {
		if err := h.Connect(ctx, ai); err != nil {
			t.Fatalf("connect to %s: %v", ai, err)
		}
	}
	// The client takes a peer into its routing table once identify has
	// said it speaks the DHT, after the connection: a lookup before that
	// has no one to ask.
	if err := WaitFor(ctx, time.Minute, func() bool { return kad.RoutingTable().Size() >= len(d.Providers) }); err != nil {
		t.Fatalf("the client's routing table holds %d of the %d providers: %v", kad.RoutingTable().Size(), len(d.Providers), err)
	}
	p := d.Providers[0]
	key, err := protocol.ProviderKey(protocol.FacetRegion, d.Profiles[0].Region, string(p.ID()))
	if err != nil {
		t.Fatal(err)
	}
	found, err := kad.FindProviders(ctx, wire.FacetCID(key))
	if err != nil {
		t.Fatalf("find providers of %s: %v", key, err)
	}
	for _, ai := range found {
		if ai.ID == p.ID() {
			return
		}
	}
	t.Fatalf("a stock kad-dht client found %v under %s, not provider %s", found, key, p.ID())
}
