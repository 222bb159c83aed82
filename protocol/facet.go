package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Facet is a dimension along which providers announce themselves in the DHT
// (SPEC 4.2). A requester looks up the facet that selects the fewest providers.
type Facet string

// The facets, with the number of shards each is split into. Shard counts are
// part of the key format: changing one is a new key version.
const (
	FacetAny           Facet = "any"
	FacetRegion        Facet = "region"
	FacetJurisdiction  Facet = "jurisdiction"
	FacetExecutor      Facet = "executor"
	FacetCertification Facet = "cert"
	FacetSize          Facet = "size"
	// FacetWholesale is where a site that publishes a wholesale tariff is
	// found, under its jurisdiction (SPEC 4.5).
	FacetWholesale Facet = "wholesale"
)

var facetShards = map[Facet]uint32{
	FacetAny:           64,
	FacetRegion:        16,
	FacetJurisdiction:  16,
	FacetExecutor:      16,
	FacetCertification: 8,
	FacetSize:          16,
	FacetWholesale:     16,
}

// Facets lists every facet, in SPEC order.
func Facets() []Facet {
	return []Facet{FacetAny, FacetRegion, FacetJurisdiction, FacetExecutor, FacetCertification, FacetSize, FacetWholesale}
}

// Shards returns the number of shards of a facet, or 0 for an unknown facet.
func (f Facet) Shards() uint32 { return facetShards[f] }

// FacetKey is one DHT provider key: a facet, a value and a shard.
type FacetKey struct {
	Facet Facet
	Value string // "" for FacetAny
	Shard uint32
}

// NewFacetKey checks and normalises a facet key: values are lower-cased, and must
// be 1 to 64 characters of a-z, 0-9, '-', '_' and '.'.
func NewFacetKey(f Facet, value string, shard uint32) (FacetKey, error) {
	n := f.Shards()
	if n == 0 {
		return FacetKey{}, fmt.Errorf("facet %q: unknown", f)
	}
	if shard >= n {
		return FacetKey{}, fmt.Errorf("facet %s: shard %d out of range [0,%d)", f, shard, n)
	}
	value = strings.ToLower(value)
	if f == FacetAny {
		if value != "" {
			return FacetKey{}, fmt.Errorf("facet any takes no value, got %q", value)
		}
	} else if err := checkFacetValue(value); err != nil {
		return FacetKey{}, fmt.Errorf("facet %s: %w", f, err)
	}
	return FacetKey{Facet: f, Value: value, Shard: shard}, nil
}

func checkFacetValue(v string) error {
	if len(v) == 0 || len(v) > 64 {
		return fmt.Errorf("value %q must be 1 to 64 characters", v)
	}
	for _, r := range v {
		if !isValueRune(r) {
			return fmt.Errorf("value %q: character %q not allowed (a-z 0-9 - _ .)", v, r)
		}
	}
	return nil
}

// String returns the canonical key string, e.g. "cuivre/v1/region=fr/shard=7" or
// "cuivre/v1/any/shard=12".
func (k FacetKey) String() string {
	var b strings.Builder
	b.WriteString("cuivre/v1/")
	b.WriteString(string(k.Facet))
	if k.Facet != FacetAny {
		b.WriteByte('=')
		b.WriteString(k.Value)
	}
	b.WriteString("/shard=")
	b.WriteString(strconv.FormatUint(uint64(k.Shard), 10))
	return b.String()
}

// ShardOf returns the shard of a facet in which a provider, named by its binary
// peer ID, announces itself:
// the first 8 bytes of sha2-256("cuivre/v1/shard" 0x00 facet 0x00 peer-id-bytes),
// read big-endian, modulo the facet's shard count (SPEC 4.3).
func ShardOf(f Facet, peerID string) uint32 {
	n := f.Shards()
	if n == 0 {
		return 0
	}
	h := sha256.New()
	h.Write([]byte("cuivre/v1/shard\x00"))
	h.Write([]byte(f))
	h.Write([]byte{0})
	h.Write([]byte(peerID))
	var sum [sha256.Size]byte
	return uint32(binary.BigEndian.Uint64(h.Sum(sum[:0])[:8]) % uint64(n))
}

// ProviderKey returns the key of a provider's first presence under a facet
// value: the shard its peer ID hashes to.
func ProviderKey(f Facet, value string, peerID string) (FacetKey, error) {
	return NewFacetKey(f, value, ShardOf(f, peerID))
}

// PresenceUnitMillis is the capacity one presence stands for: a provider
// announces each facet value in one shard per 4 vCPUs it sells (SPEC 4.3).
const PresenceUnitMillis = 4000

// Presences returns the number of shards of f a provider selling cpuMillis
// announces each value in: one per PresenceUnitMillis, rounded up, at least
// one and at most the facet's shard count.
func Presences(f Facet, cpuMillis uint64) uint32 {
	n := f.Shards()
	if n == 0 {
		return 0
	}
	p := (cpuMillis + PresenceUnitMillis - 1) / PresenceUnitMillis
	return uint32(max(1, min(p, uint64(n))))
}

// ProviderShards returns the shards of f a provider announces in: the one
// its peer ID hashes to (ShardOf) and the next Presences-1, wrapping round.
func ProviderShards(f Facet, peerID string, cpuMillis uint64) []uint32 {
	n, p := f.Shards(), Presences(f, cpuMillis)
	first := ShardOf(f, peerID)
	out := make([]uint32, p)
	for i := range out {
		out[i] = (first + uint32(i)) % n
	}
	return out
}

// SampleWeight is the weight a requester gives a candidate found under f
// that sells cpuMillis, so that each provider is asked in proportion to
// what it sells: the capacity each of its presences stands for (it is
// found in proportion to its presences). A provider whose capacity is not
// known weighs one unit, as one presence of a full unit would.
func SampleWeight(f Facet, cpuMillis uint64) uint64 {
	if cpuMillis == 0 || f.Shards() == 0 {
		return PresenceUnitMillis
	}
	return cpuMillis / uint64(Presences(f, cpuMillis))
}

// Size classes by memory (SPEC 4.2): a provider announces the class of its
// memory capacity; a job looks up its class and every larger one.
var sizeClasses = []struct {
	name string
	max  uint64 // exclusive upper bound in bytes; 0 for the last
}{
	{"xs", 1 << 30},
	{"s", 4 << 30},
	{"m", 16 << 30},
	{"l", 64 << 30},
	{"xl", 0},
}

// SizeClass returns the size class of an amount of memory.
func SizeClass(memoryBytes uint64) string {
	for _, c := range sizeClasses {
		if c.max == 0 || memoryBytes < c.max {
			return c.name
		}
	}
	return "xl"
}

// SizeClassesFrom returns the class of memoryBytes and every larger class:
// the classes whose providers may fit a job of that size, where providers
// of revisions before 1.4 announce their own class only (SPEC 4.2).
func SizeClassesFrom(memoryBytes uint64) []string {
	var out []string
	for _, c := range sizeClasses {
		if len(out) > 0 || c.max == 0 || memoryBytes < c.max {
			out = append(out, c.name)
		}
	}
	return out
}

// SizeClassesUpTo returns the class of memoryBytes and every smaller class:
// the classes a provider of that much memory announces (SPEC 4.2), since it
// may fit a job of any of them. A job then looks up its own class alone and
// finds every provider that may fit it, each as often as its presences.
func SizeClassesUpTo(memoryBytes uint64) []string {
	var out []string
	for _, c := range sizeClasses {
		out = append(out, c.name)
		if c.max == 0 || memoryBytes < c.max {
			break
		}
	}
	return out
}
