package protocol_test

import (
	"testing"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/cuivre/cuivre/protocol"
)

// FuzzFacetKey checks that a facet key NewFacetKey accepts is in range and
// checks again as it was normalised.
func FuzzFacetKey(f *testing.F) {
	f.Add("region", "fr-par", uint32(7))
	f.Add("any", "", uint32(63))
	f.Fuzz(func(t *testing.T, facet, value string, shard uint32) {
		defer fuzzguard.Start()()
		k, err := protocol.NewFacetKey(protocol.Facet(facet), value, shard)
		if err != nil {
			return
		}
		if k.Shard >= k.Facet.Shards() {
			t.Fatalf("shard %d out of range", k.Shard)
		}
		k2, err := protocol.NewFacetKey(k.Facet, k.Value, k.Shard)
		if err != nil || k2.String() != k.String() {
			t.Fatalf("normalised key does not check again: %v", err)
		}
	})
}
