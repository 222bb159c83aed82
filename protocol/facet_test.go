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
	if diff := cmp.Diff([]string{"m", "l", "xl"}, SizeClassesFrom(8<<30)); diff != "" {
		t.Errorf("SizeClassesFrom(8Gi): %s", diff)
	}
}
