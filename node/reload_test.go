package node

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/config"
)

// TestDaemonReload: a reload applies changed labels and prices (their effect
// on offers is TestReprice's) and lists every other change as waiting for a
// restart, whose running value stays, so that the next reload lists it again.
func TestDaemonReload(t *testing.T) {
	dir, c := loopbackDaemon(t)
	c.Labels.Region = "fr-par"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := StartDaemon(ctx, dir, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop(0)

	paths := func(cs []config.Change) []string {
		var p []string
		for _, c := range cs {
			p = append(p, c.Path)
		}
		return p
	}
	if r, err := d.Reload(c); err != nil || len(r.Applied)+len(r.Restart) != 0 {
		t.Fatalf("reload of the same config: %+v, %v; want nothing changed", r, err)
	}

	nc := c
	nc.Labels.Region = "de-fra"
	nc.Pricing.CPUPerHour = c.Pricing.CPUPerHour * 2
	nc.API.Listen = "127.0.0.1:4999"
	r, err := d.Reload(nc)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(r.Applied), []string{"pricing.cpu_per_hour", "labels.region"}; !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	if got, want := paths(r.Restart), []string{"api.listen"}; !slices.Equal(got, want) {
		t.Errorf("waiting for a restart %v, want %v", got, want)
	}
	r, err = d.Reload(nc)
	if err != nil || len(r.Applied) != 0 || !slices.Equal(paths(r.Restart), []string{"api.listen"}) {
		t.Errorf("second reload: %+v, %v; want nothing applied and api.listen still waiting", r, err)
	}
}
