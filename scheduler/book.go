package scheduler

import (
	"sync"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Book is what a requester has learnt of the providers it asked, shared by
// all its placements: the capacity each says it sells in its offers, and
// its standing, lowered by each refusal for lack of capacity and raised
// again by each offer. A placement draws its candidates in proportion to
// Weight, so that a provider is asked in proportion to what it sells
// (SPEC 4.3), and one that claims more than it has, and refuses what its
// claim draws, is soon asked no more than its refusals allow.
//
// It is safe for concurrent use: the daemon's placements share one.
type Book struct {
	mu      sync.Mutex
	entries map[string]bookEntry
}

// bookEntry holds what differs from an unknown provider in good standing:
// a provider without an entry weighs one presence unit.
type bookEntry struct {
	cpuMillis uint64 // capacity its last offer claimed; 0 if none said
	short     uint8  // refusals for capacity not yet made up by offers: each halves its weight
}

// maxShort bounds how far a provider's standing falls: at 1/16 of its claim,
// a provider that refused for capacity is still asked now and then, and
// comes back with its first offer.
const maxShort = 4

// maxBookEntries bounds a Book: past it, it starts afresh (a requester that
// met that many providers relearns their claims from their next offers).
const maxBookEntries = 1 << 20

// NewBook returns an empty book.
func NewBook() *Book { return &Book{entries: map[string]bookEntry{}} }

// Weight returns the weight of a candidate found under facet f: the
// capacity each of its presences stands for (protocol.SampleWeight),
// halved for each refusal for capacity it has not made up, and never 0.
func (b *Book) Weight(provider string, f protocol.Facet) uint64 {
	b.mu.Lock()
	e := b.entries[provider]
	b.mu.Unlock()
	return max(1, protocol.SampleWeight(f, e.cpuMillis)>>e.short)
}

// offered records an offer: the capacity it claims, and one step of standing
// made up.
func (b *Book) offered(provider string, capacity Resources) {
	b.update(provider, func(e *bookEntry) {
		if capacity.CPUMillis > 0 {
			e.cpuMillis = capacity.CPUMillis
		}
		if e.short > 0 {
			e.short--
		}
	})
}

// refused records a refusal: one for lack of capacity lowers the provider's
// standing; others say nothing about its claim.
func (b *Book) refused(provider string, code pb.Code) {
	switch code {
	case pb.Code_CODE_INSUFFICIENT_CPU, pb.Code_CODE_INSUFFICIENT_MEMORY, pb.Code_CODE_INSUFFICIENT_SCRATCH:
		b.update(provider, func(e *bookEntry) { e.short = min(e.short+1, maxShort) })
	}
}

func (b *Book) update(provider string, f func(*bookEntry)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.entries == nil || len(b.entries) >= maxBookEntries {
		b.entries = map[string]bookEntry{}
	}
	e := b.entries[provider]
	f(&e)
	// A provider that weighs what an unknown one does needs no entry: most
	// of a federation's, whose capacity is a whole number of units below
	// the cap, in good standing.
	if e.short == 0 && (e.cpuMillis == 0 || e.cpuMillis%protocol.PresenceUnitMillis == 0 && e.cpuMillis <= protocol.PresenceUnitMillis*uint64(minShards)) {
		delete(b.entries, provider)
		return
	}
	b.entries[provider] = e
}

// minShards is the fewest shards of any facet: below the unit times it, a
// whole number of units weighs one unit under every facet.
var minShards = func() uint32 {
	n := uint32(0)
	for _, f := range protocol.Facets() {
		if s := f.Shards(); n == 0 || s < n {
			n = s
		}
	}
	return n
}()

// Len returns the number of providers the book holds something on.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}
