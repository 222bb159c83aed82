package devnet

import (
	"context"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/protocol"
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
			found = found || ai.ID == p.ID()
		}
		if !found {
			t.Errorf("provider %d (%s) not found under %s", i, d.Profiles[i].Name, key)
		}
	}
	api, err := d.Serve()
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close(ctx)
	c, err := node.DialAPI(d.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var st node.NodeStatus
	if err := c.Get("/v1/status", &st); err != nil || st.DHTPeers == 0 {
		t.Fatalf("status %+v, %v", st, err)
	}
}
