package chaos

import (
	"reflect"
	"testing"
	"time"
)

// TestPlan: a plan is the same for the same seed, holds every kind (the
// full run's at least 200 faults), never targets a provider while an
// earlier fault still holds it down, keeps more than half of the
// providers up outside the mass kills, and keeps requester kills out of
// the mass kills' windows.
func TestPlan(t *testing.T) {
	full := planConfig{Seed: 7, Duration: 10 * time.Minute, Providers: 10, Requesters: 1, Partitions: true, PartitionFor: 90 * time.Second}
	smoke := planConfig{Seed: 7, Duration: time.Minute, Providers: 5, Requesters: 1, Faults: 8, Partitions: true, PartitionFor: 15 * time.Second}
	tiny := planConfig{Seed: 3, Duration: 30 * time.Second, Providers: 2, Requesters: 2} // too short to keep a requester kill clear
	for _, c := range []planConfig{full, smoke, tiny} {
		plan := makePlan(c)
		if again := makePlan(c); !reflect.DeepEqual(plan, again) {
			t.Fatalf("%+v: two plans from one seed differ", c)
		}
		if other := makePlan(planConfig{Seed: c.Seed + 1, Duration: c.Duration, Providers: c.Providers, Requesters: c.Requesters,
			Faults: c.Faults, Partitions: c.Partitions, PartitionFor: c.PartitionFor}); reflect.DeepEqual(plan, other) {
			t.Errorf("%+v: seeds %d and %d give one plan", c, c.Seed, c.Seed+1)
		}
		kinds := map[Kind]int{}
		type down struct{ from, to time.Duration }
		held := map[int][]down{}
		for i, f := range plan {
			kinds[f.Kind]++
			if i > 0 && f.At < plan[i-1].At {
				t.Errorf("%+v: fault %d at %v before fault %d at %v", c, i, f.At, i-1, plan[i-1].At)
			}
			if f.At < 5*time.Second || f.At > c.Duration {
				t.Errorf("%+v: fault %v outside the stream", c, f)
			}
			if len(f.Targets) == 0 {
				t.Errorf("%+v: fault %v has no target", c, f)
			}
			if f.Kind == KillRequester {
				for _, m := range plan {
					if m.Kind == KillMass && c != tiny && f.At < m.At+massWindow && m.At-2*time.Second < f.At+f.Down+3*time.Second {
						t.Errorf("%+v: requester kill %v inside the window of mass kill %v", c, f, m)
					}
				}
				continue
			}
			for _, p := range f.Targets {
				if p < 0 || p >= c.Providers {
					t.Fatalf("%+v: fault %v targets provider %d", c, f, p)
				}
				for _, d := range held[p] {
					if f.At < d.to {
						t.Errorf("%+v: fault %v targets p%d, down until %v", c, f, p, d.to)
					}
				}
				held[p] = append(held[p], down{f.At, f.At + f.Down})
			}
			if f.Kind != KillMass {
				n := 0
				for _, ds := range held {
					for _, d := range ds {
						if d.from <= f.At && f.At < d.to {
							n++
						}
					}
				}
				if n > c.Providers/2 {
					t.Errorf("%+v: at %v, %d of %d providers down", c, f.At, n, c.Providers)
				}
			}
		}
		for _, k := range []Kind{KillMass, KillRequester} {
			if kinds[k] == 0 {
				t.Errorf("%+v: no %s in %v", c, k, plan)
			}
		}
		if c.Partitions && kinds[Partition] == 0 {
			t.Errorf("%+v: no partition in %v", c, plan)
		}
		if !c.Partitions && kinds[Partition] != 0 {
			t.Errorf("%+v: partitions not asked, planned %d", c, kinds[Partition])
		}
		if c == smoke && (kinds[KillFast] == 0 || kinds[KillSlow] == 0) {
			t.Errorf("smoke plan lacks a fast or slow kill: %v", plan)
		}
		if c == full && len(plan) < 200 {
			t.Errorf("full plan: %d faults, want at least 200", len(plan))
		}
	}
}

// TestMeasure: detection runs from the fault to the "lost" event of each
// lease live at the fault, re-placement from there to the next epoch's
// "leased"; leases over before the fault, or on another provider, are not
// counted.
func TestMeasure(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	j := &job{view: jobView{Events: []eventView{
		{At: at(0), Slot: 0, Epoch: 1, Provider: "A", Kind: "leased"},
		{At: at(1500), Slot: 0, Epoch: 1, Provider: "A", Kind: "lost"},
		{At: at(1900), Slot: 0, Epoch: 2, Provider: "B", Kind: "leased"},
		{At: at(2500), Slot: 0, Epoch: 2, Provider: "B", Kind: "ended"},
	}}}
	done := &job{view: jobView{Events: []eventView{ // ended before the fault
		{At: at(-900), Slot: 0, Epoch: 1, Provider: "A", Kind: "leased"},
		{At: at(-100), Slot: 0, Epoch: 1, Provider: "A", Kind: "ended"},
	}}}
	missed := &job{view: jobView{Events: []eventView{ // hit, never declared lost
		{At: at(-50), Slot: 0, Epoch: 1, Provider: "A", Kind: "leased"},
		{At: at(3000), Slot: 0, Epoch: 1, Provider: "A", Kind: "ended"},
	}}}
	// A lease whose requester (1) was down between the fault and the
	// declaration counts apart.
	late := &job{requester: 1, view: jobView{Events: []eventView{
		{At: at(100), Slot: 0, Epoch: 1, Provider: "A", Kind: "leased"},
		{At: at(4000), Slot: 0, Epoch: 1, Provider: "A", Kind: "lost"},
	}}}
	down := []outage{{requester: 1, from: at(1000), to: at(2500)}, {requester: 0, from: at(5000), to: at(6000)}}
	var r Report
	measure(&r, []*job{j, done, missed, late}, []hit{{Provider: "A", At: at(200)}, {Provider: "C", At: at(200)}}, down)
	if !r.EventsSeen || r.LeasesHit != 3 || r.Undeclared != 1 {
		t.Fatalf("seen %v, hit %d, undeclared %d: want true, 3, 1", r.EventsSeen, r.LeasesHit, r.Undeclared)
	}
	if d := r.DetectionRequesterDown; d.N != 1 || d.MaxMs != 3800 {
		t.Fatalf("detection with the requester down %+v: want the one lease, 3800 ms", d)
	}
	if r.Detection.N != 1 || r.Detection.P50Ms != 1300 || r.Replacement.N != 1 || r.Replacement.P50Ms != 400 {
		t.Fatalf("detection %+v, re-placement %+v: want 1300 ms and 400 ms", r.Detection, r.Replacement)
	}
	if len(r.Slowest) != 1 || r.Slowest[0].NewProvider != "B" || r.Slowest[0].ReplaceMs != 400 {
		t.Fatalf("slowest %+v: want the one re-placement, 400 ms, on B", r.Slowest)
	}
}
