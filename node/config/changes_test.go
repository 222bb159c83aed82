package config

import (
	"slices"
	"testing"
)

// TestChanges: the settings that differ, in the order of the file, written
// as config.yaml takes them; a nil list or map is the empty one.
func TestChanges(t *testing.T) {
	old := Default()
	old.Labels.Certifications = nil
	old.Labels.Extra = nil
	if cs := Changes(old, Default()); len(cs) != 0 {
		t.Errorf("Changes(defaults, defaults with nil lists) = %v, want none", cs)
	}

	nu := Default()
	nu.Listen = []string{"/ip4/127.0.0.1/udp/4242/quic-v1"}
	nu.Pricing.CPUPerHour = old.Pricing.CPUPerHour * 2
	nu.Labels.Region = "fr-lyo"
	nu.Labels.Extra = map[string]string{"tier": "gold", "gpu": "none"}
	got := Changes(old, nu)
	var paths []string
	for _, c := range got {
		paths = append(paths, c.Path)
	}
	want := []string{"listen", "pricing.cpu_per_hour", "labels.region", "labels.extra"}
	if !slices.Equal(paths, want) {
		t.Fatalf("changed paths %v, want %v (all: %v)", paths, want, got)
	}
	if c := got[1]; c.Old != old.Pricing.CPUPerHour.String() || c.New != nu.Pricing.CPUPerHour.String() {
		t.Errorf("price change %+v, want %s -> %s", c, old.Pricing.CPUPerHour, nu.Pricing.CPUPerHour)
	}
	if c := got[3]; c.New != "gpu=none, tier=gold" {
		t.Errorf("labels.extra written %q, want its pairs sorted", c.New)
	}
	for _, c := range got {
		if Reloadable(c.Path) != (c.Path != "listen") {
			t.Errorf("Reloadable(%q) = %v", c.Path, Reloadable(c.Path))
		}
	}
}
