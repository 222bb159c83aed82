package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// TestBookStanding: a provider weighs what its offers say it sells; each
// refusal for capacity halves its weight, down to a sixteenth, and each offer
// makes one halving up; other refusals change nothing. A provider that claims
// 1,000 vCPUs and refuses what the claim draws soon weighs no more than one
// that sells 4.
func TestBookStanding(t *testing.T) {
	b := NewBook()
	f := protocol.FacetSize
	if w := b.Weight("big", f); w != protocol.PresenceUnitMillis {
		t.Fatalf("unknown provider weighs %d, want one unit", w)
	}
	b.offered("big", Resources{CPUMillis: 1_000_000})
	if w := b.Weight("big", f); w != 62500 {
		t.Fatalf("1000 vCPUs under 16 shards weigh %d, want 62500", w)
	}
	b.refused("big", pb.Code_CODE_RATE_LIMITED)
	b.refused("big", pb.Code_CODE_CONSTRAINT_MISMATCH)
	if w := b.Weight("big", f); w != 62500 {
		t.Fatalf("after refusals not for capacity: %d, want 62500", w)
	}
	for range 10 {
		b.refused("big", pb.Code_CODE_INSUFFICIENT_CPU)
	}
	if w := b.Weight("big", f); w != 62500>>maxShort || w > protocol.PresenceUnitMillis {
		t.Fatalf("after 10 refusals for capacity: %d, want %d, at most one unit", w, 62500>>maxShort)
	}
	b.offered("big", Resources{})
	if w := b.Weight("big", f); w != 62500>>(maxShort-1) {
		t.Fatalf("one offer later: %d, want %d (capacity kept from the earlier offer)", w, 62500>>(maxShort-1))
	}
	// A provider that weighs one unit under every facet takes no room.
	b.offered("small", Resources{CPUMillis: 8000})
	if b.Len() != 1 {
		t.Fatalf("book holds %d providers, want 1 (big)", b.Len())
	}
	b.offered("odd", Resources{CPUMillis: 6000})
	if w := b.Weight("odd", f); w != 3000 || b.Len() != 2 {
		t.Fatalf("6 vCPUs weigh %d (want 3000), book holds %d", w, b.Len())
	}
}

// TestCapacityProportionalDraw runs the discovery rule end to end, as a
// requester of the reference meets it: providers of 1 to 1,000 vCPUs announce
// their presences (ProviderKeys), each placement looks up two random shards
// of the size facet, each answering at most MinLookup random providers of the
// shard, and draws d = 2 of them by the book's weights. Each class of
// providers below the cap of presences must be asked in proportion to the
// capacity it sells, within 15%, and the sites past it at least half their
// share; drawing uniformly from the same lookups, the sites are asked a
// tenth of their share and the 1-vCPU providers four times theirs.
func TestCapacityProportionalDraw(t *testing.T) {
	type class struct {
		name  string
		count int
		cpu   uint64
	}
	classes := []class{{"site", 2, 1_000_000}, {"tiny", 300, 1000}, {"budget", 500, 4000}, {"standard", 400, 8000}, {"certified", 100, 16_000}}
	var providers []string
	classOf := map[string]int{}
	index := map[protocol.FacetKey][]string{}
	book := NewBook()
	for ci, c := range classes {
		for i := range c.count {
			id := fmt.Sprintf("%s-%d", c.name, i)
			providers = append(providers, id)
			classOf[id] = ci
			caps := Resources{CPUMillis: c.cpu, MemoryBytes: 8 << 30}
			for _, k := range ProviderKeys(id, nil, nil, caps) {
				index[k] = append(index[k], id)
			}
			book.offered(id, caps) // a warm requester knows what each sells
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	run := func(b *Book) []float64 {
		p := NewPlacement(Config{Book: b}, Job{}, [32]byte{9})
		asked := make([]float64, len(classes))
		for range 40_000 {
			var cands []string
			for _, shard := range rng.Perm(int(protocol.FacetSize.Shards()))[:2] {
				k, _ := protocol.NewFacetKey(protocol.FacetSize, "s", uint32(shard))
				all := index[k]
				for _, i := range rng.Perm(len(all))[:min(len(all), MinLookup)] {
					if j, dup := slices.BinarySearch(cands, all[i]); !dup {
						cands = slices.Insert(cands, j, all[i])
					}
				}
			}
			p.draw(cands, 2, protocol.FacetSize)
			for _, c := range cands[:2] {
				asked[classOf[c]]++
			}
		}
		return asked
	}
	ratios := func(asked []float64) []float64 {
		var sum, capSum float64
		for i, c := range classes {
			sum += asked[i]
			capSum += float64(c.cpu) * float64(c.count)
		}
		out := make([]float64, len(classes))
		for i, c := range classes {
			out[i] = (asked[i] / sum) / (float64(c.cpu) * float64(c.count) / capSum)
		}
		return out
	}
	weighted, uniform := ratios(run(book)), ratios(run(nil))
	t.Logf("asked / share of capacity, by class: weighted %.2f, uniform %.2f", weighted, uniform)
	for i, r := range weighted[1:] {
		if math.Abs(r-1) > 0.15 {
			t.Errorf("%s: asked %.2f times its share of capacity, want within 15%% of 1", classes[i+1].name, r)
		}
	}
	// Past the cap of presences, a site is found in every shard but among
	// few others, and asked at most once a placement: less than its share,
	// but many times what a uniform draw gives it.
	if weighted[0] < 0.5 {
		t.Errorf("sites: asked %.2f times their share of capacity, want at least 0.5", weighted[0])
	}
	if uniform[0] > 0.2 || uniform[1] < 3 {
		t.Errorf("uniform draw: sites asked %.2f, 1-vCPU providers %.2f times their share; the test cannot tell the rules apart", uniform[0], uniform[1])
	}
}
