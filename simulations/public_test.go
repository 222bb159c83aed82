package simulations

import (
	"math"
	"testing"
	"time"
)

// TestPublicOf: the public sites' shares, utilisation and subsidy per hour,
// from a run's providers and jobs; NaN when no class is subsidised.
func TestPublicOf(t *testing.T) {
	r := &Result{
		Classes: []ClassRecord{{Class: "site", SubsidyRate: 0.5}, {Class: "sme"}},
		Providers: []ProviderRecord{
			{Class: "site", CPUMillis: 100_000, BusyCPUSecs: 7200, Utilisation: 0.2, Subsidy: 3},
			{Class: "sme", CPUMillis: 100_000, BusyCPUSecs: 3600, Utilisation: 0.1},
			{Class: "sme", CPUMillis: 200_000, BusyCPUSecs: 7200, Utilisation: 0.1},
		},
		Jobs: []JobRecord{{State: "succeeded", Run: 2 * time.Hour}, {State: "succeeded", Run: time.Hour}, {State: "failed", Run: 5 * time.Hour}},
	}
	f := PublicOf(r)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"capacity share", f.CapacityShare, 0.25},
		{"work share", f.WorkShare, 0.4},
		{"utilisation", f.Utilisation, 0.2},
		{"subsidy", f.Subsidy, 3},
		{"per job-hour", f.SubsidyPerJobHour, 1},
		{"per public CPU-hour", f.SubsidyPerPublicCPUHour, 1.5},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %g, want %g", c.name, c.got, c.want)
		}
	}
	r.Classes[0].SubsidyRate = 0
	if f := PublicOf(r); !math.IsNaN(f.CapacityShare) || !math.IsNaN(f.Subsidy) {
		t.Errorf("no subsidised class: %+v, want NaN", f)
	}
}
