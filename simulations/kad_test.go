package simulations

import (
	"slices"
	"testing"
)

// TestKadWalks holds the model of kad-dht's lookups to what is true by
// construction and to the hop counts it gives: a lookup among as many
// servers as a bucket holds reaches a holder at its first hop (or at none,
// from a requester that holds the records, which k of k+1 servers do), and
// one that ends walks one round more (the follow-up); at 10^3 and 10^4
// servers the first holder is 1.2 to 1.3 and 1.7 to 1.9 hops away, the
// figures of Trautwein et al.'s order (docs/SIMULATOR.md).
func TestKadWalks(t *testing.T) {
	p := kadParams{k: DefaultK, alpha: DefaultAlpha, beta: DefaultBeta}
	small := kadFor(21, p, false)
	if small.rtShare != 1 {
		t.Errorf("21 servers: routing tables hold %.2f of the others, want all", small.rtShare)
	}
	for _, w := range small.walks {
		if w.hops != 1 || w.end < 2 || w.dials != 0 {
			t.Fatalf("21 servers, a client: walk %+v, want the first hop to reach a holder, an end at 2 rounds or more, no dial", w)
		}
	}
	local := 0
	for _, w := range kadFor(21, p, true).walks {
		if w.hops == 0 {
			local++
		}
	}
	if share := float64(local) / kadWalks; share < 0.9 {
		t.Errorf("21 servers, a server: %.2f of the lookups held locally, want about 20/21", share)
	}
	for _, c := range []struct {
		n        int
		lo, hi   float64
		endAbove float64
	}{{1000, 1.2, 1.35, 2.5}, {10000, 1.7, 1.95, 3}} {
		m := kadFor(c.n, p, false)
		first, end := m.meanHops()
		if first < c.lo || first > c.hi || end < c.endAbove {
			t.Errorf("%d servers: %.2f hops to the first holder (want %.2f to %.2f), %.2f to the end (want above %.1f)", c.n, first, c.lo, c.hi, end, c.endAbove)
		}
		for _, w := range m.walks {
			if w.hops > w.end || w.dials > w.hops || w.endDials > w.end {
				t.Fatalf("%d servers: walk %+v", c.n, w)
			}
		}
	}
	// One function of its arguments: the same walks each time.
	a, b := newKad(500, p, false), newKad(500, p, false)
	if !slices.Equal(a.walks, b.walks) || a.rtShare != b.rtShare {
		t.Error("two models of 500 servers differ")
	}
}

// TestKadNearest: a routing table's nearest peers to a key are those of its
// table closest by XOR, in order; with fewer servers than a bucket holds,
// every other server.
func TestKadNearest(t *testing.T) {
	sp := &kadSpace{p: kadParams{k: 4, alpha: 3, beta: 3}, seed: 1}
	for i := range 200 {
		sp.ids = append(sp.ids, uint64(i)*0x0147ae147ae147ae+12345)
	}
	slices.Sort(sp.ids)
	v, key := sp.ids[17], uint64(0xdeadbeefcafe1234)
	var table []uint64
	for c := 0; c < 64 && sp.deeper(v, c); c++ {
		table = sp.bucketPeers(v, c, table)
	}
	if len(table) != sp.tableSize(v) {
		t.Fatalf("table of %d peers, tableSize says %d", len(table), sp.tableSize(v))
	}
	sortByDistance(table, key)
	if got := sp.nearest(v, key, 6); !slices.Equal(got, table[:6]) {
		t.Errorf("nearest 6: %x, want %x", got, table[:6])
	}
	all := &kadSpace{p: kadParams{k: 20}, ids: sp.ids[:15]}
	if got := all.nearest(all.ids[3], key, 20); len(got) != 14 || slices.Contains(got, all.ids[3]) {
		t.Errorf("15 servers: nearest gave %d peers (itself among them: %v), want the 14 others", len(got), slices.Contains(got, all.ids[3]))
	}
	holders := sp.closest(key)
	byXOR := slices.Clone(sp.ids)
	sortByDistance(byXOR, key)
	if !slices.Equal(holders, byXOR[:4]) {
		t.Errorf("closest: %x, want %x", holders, byXOR[:4])
	}
}
