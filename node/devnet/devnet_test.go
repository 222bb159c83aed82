package devnet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/node/api"
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
