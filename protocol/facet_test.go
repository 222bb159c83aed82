package protocol

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFacetKeyStrings(t *testing.T) {
	tests := []struct {
		facet Facet
		value string
		shard uint32
		want  string
		err   bool
	}{
		{FacetAny, "", 12, "cuivre/v1/any/shard=12", false},
		{FacetRegion, "FR-par", 7, "cuivre/v1/region=fr-par/shard=7", false},
		{FacetJurisdiction, "fr", 0, "cuivre/v1/jurisdiction=fr/shard=0", false},
		{FacetCertification, "secnumcloud", 7, "cuivre/v1/cert=secnumcloud/shard=7", false},
		{FacetCertification, "x", 8, "", true}, // cert has 8 shards
		{FacetAny, "x", 0, "", true},
		{FacetRegion, "", 0, "", true},
		{FacetRegion, "fr/par", 0, "", true},
		{Facet("colour"), "red", 0, "", true},
	}
	for _, tt := range tests {
		k, err := NewFacetKey(tt.facet, tt.value, tt.shard)
		if (err != nil) != tt.err {
			t.Errorf("NewFacetKey(%s, %q, %d): err = %v, want error %v", tt.facet, tt.value, tt.shard, err, tt.err)
			continue
		}
		if err == nil && k.String() != tt.want {
			t.Errorf("key = %q, want %q", k.String(), tt.want)
		}
	}
}

// TestShardsSpread checks the shard rule spreads providers evenly: with 64,000
// peers over 64 shards, no shard holds more than 1.2x its share.
func TestShardsSpread(t *testing.T) {
	base := "base of the peer IDs"
	counts := make([]int, FacetAny.Shards())
	const n = 64_000
	for i := range n {
		p := binary.BigEndian.AppendUint32([]byte(base), uint32(i)) // distinct byte strings stand in for peer IDs
		counts[ShardOf(FacetAny, string(p))]++
	}
	share := n / len(counts)
	for s, c := range counts {
		if c > share*12/10 || c < share*8/10 {
			t.Errorf("shard %d holds %d providers, share %d", s, c, share)
		}
	}
}

func TestSizeClasses(t *testing.T) {
	if got := SizeClass(512 << 20); got != "xs" {
		t.Errorf("SizeClass(512Mi) = %s", got)
	}
	if got := SizeClass(64 << 30); got != "xl" {
		t.Errorf("SizeClass(64Gi) = %s", got)
	}
	if diff := cmp.Diff([]string{"xs", "s", "m"}, SizeClassesUpTo(8<<30)); diff != "" {
		t.Errorf("SizeClassesUpTo(8Gi): %s", diff)
	}
}

// TestPresences: a provider is announced in one shard per 4 vCPUs it sells,
// between one and the facet's shard count, in consecutive shards from its
// own; and the weight a requester gives it times its presences is what it
// sells, so that drawing candidates by weight from the shards asks each
// provider in proportion to its capacity.
func TestPresences(t *testing.T) {
	peer := string(make([]byte, 38))
	for _, tt := range []struct {
		facet     Facet
		cpuMillis uint64
		presences uint32
		weight    uint64
	}{
		{FacetSize, 0, 1, PresenceUnitMillis}, // capacity not said
		{FacetSize, 500, 1, 500},
		{FacetSize, 4000, 1, 4000},
		{FacetSize, 4001, 2, 2000},
		{FacetSize, 10_000, 3, 3333},
		{FacetSize, 64_000, 16, 4000},
		{FacetSize, 1_000_000, 16, 62500}, // past the cap, the weight carries the rest
		{FacetAny, 1_000_000, 64, 15625},
		{FacetCertification, 1_000_000, 8, 125000},
		{Facet("nope"), 4000, 0, PresenceUnitMillis},
	} {
		if got := Presences(tt.facet, tt.cpuMillis); got != tt.presences {
			t.Errorf("Presences(%s, %d) = %d, want %d", tt.facet, tt.cpuMillis, got, tt.presences)
		}
		if got := SampleWeight(tt.facet, tt.cpuMillis); got != tt.weight {
			t.Errorf("SampleWeight(%s, %d) = %d, want %d", tt.facet, tt.cpuMillis, got, tt.weight)
		}
		shards := ProviderShards(tt.facet, peer, tt.cpuMillis)
		if len(shards) != int(tt.presences) {
			t.Fatalf("ProviderShards(%s, %d): %d shards, want %d", tt.facet, tt.cpuMillis, len(shards), tt.presences)
		}
		seen := map[uint32]bool{}
		for i, s := range shards {
			if want := (ShardOf(tt.facet, peer) + uint32(i)) % tt.facet.Shards(); s != want || seen[s] {
				t.Errorf("ProviderShards(%s, %d)[%d] = %d, want %d, each once", tt.facet, tt.cpuMillis, i, s, want)
			}
			seen[s] = true
		}
		if tt.cpuMillis > 0 && tt.presences > 0 {
			if total := uint64(tt.presences) * tt.weight; total > tt.cpuMillis || tt.cpuMillis-total >= uint64(tt.presences) {
				t.Errorf("%s, %d: presences x weight = %d, want what it sells less rounding", tt.facet, tt.cpuMillis, total)
			}
		}
	}
}

// TestSizeClassesUpTo: a provider announces its memory's class and every
// smaller one.
func TestSizeClassesUpTo(t *testing.T) {
	for mem, want := range map[uint64][]string{
		512 << 20: {"xs"},
		1 << 30:   {"xs", "s"},
		16 << 30:  {"xs", "s", "m", "l"},
		4 << 40:   {"xs", "s", "m", "l", "xl"},
	} {
		if diff := cmp.Diff(want, SizeClassesUpTo(mem)); diff != "" {
			t.Errorf("SizeClassesUpTo(%d): %s", mem, diff)
		}
	}
}
