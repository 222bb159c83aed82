package scheduler

import (
	"slices"
	"time"

	"github.com/cuivre/cuivre/protocol"
)

// Defaults of discovery that the daemon and the simulator's model of it share.
const (
	// DefaultProvideValidity is how long a provider record stays in the DHT
	// once its provider stops reproviding it: SPEC 4.1 leaves the number to
	// the nodes, and asks for minutes. A node reprovides at a third of it.
	DefaultProvideValidity = 10 * time.Minute
	// DefaultCandidateTTL is how long a requester reuses the providers a DHT
	// lookup of a facet key returned before it looks the key up again.
	DefaultCandidateTTL = 10 * time.Second
	// DefaultDeadFor is how long a requester leaves a provider that did not
	// answer out of the candidates of all its placements (its negative
	// cache). Its records in the DHT outlive it by up to their validity;
	// without this, each job would spend a probe and an offer timeout on
	// it. Long enough to cover the placements of a burst, short enough that
	// a provider back from a restart is asked again soon.
	DefaultDeadFor = 10 * time.Second
	// LeaseAnswerWait is how long a requester waits for a provider's
	// answer to a lease before it takes the provider for dead.
	LeaseAnswerWait = 5 * time.Second

	// The requester's cache of lookups (node/requester/lookup.go), which
	// the simulator models by the same rules.
	//
	// LookupGrace is how long a lookup a placement waits for goes on once
	// it has found what the placement needs, and RefreshGrace the same for
	// a refresh behind the cache, which may gather the records of a few
	// more peers.
	LookupGrace  = 2 * time.Millisecond
	RefreshGrace = 10 * time.Millisecond
	// CandidateStaleFor is how long past its TTL a cached answer may still
	// be served while one lookup refreshes it.
	CandidateStaleFor = time.Minute
	// EmptyCandidateTTL is how long an empty answer (a lookup that ran to
	// its end and found no one) is kept: long enough to spare a
	// placement's widening lookups of empty shards, short enough that a
	// provider announcing itself is seen by the next attempt but one.
	EmptyCandidateTTL = time.Second
	// MaxCandidateKeys bounds the keys the cache holds: past it, it starts
	// afresh.
	MaxCandidateKeys = 10_000
)

// Label keys that have a facet in the DHT (SPEC 4.2).
const (
	LabelRegion        = "region"
	LabelJurisdiction  = "jurisdiction"
	LabelCertification = "certification"
	LabelOperator      = "operator"
)

// facetOrder is the facets a requester may look up, most selective first. It is
// a static guess: certified operators are few, a region holds fewer providers
// than the jurisdiction around it, and every provider runs some executor.
var facetOrder = []struct {
	facet protocol.Facet
	label string
}{
	{protocol.FacetCertification, LabelCertification},
	{protocol.FacetRegion, LabelRegion},
	{protocol.FacetJurisdiction, LabelJurisdiction},
}

// facetChoice is a facet and the values of it to look up.
type facetChoice struct {
	facet  protocol.Facet
	values []string
}

// lookupFacets are the facets a job's candidates are looked up under, in
// the order they are tried: first the most selective facet that one of its
// hard constraints pins to a set of values (= or in), then the other facets
// its constraints pin, then the size class of its memory, under which
// every provider that may fit it is announced, then the larger classes
// (where providers of SPEC revisions before 1.4 announce themselves, and
// only there). A round looks
// up the first facet's shards, doubling them until it has enough
// candidates; only when they gave none at all (their providers dead, or
// their records lost with the DHT nodes that held them) does it widen, to
// the first shards of the next facet alone. The wider facets hold providers
// the job's constraints may refuse, which their offers then sort out, and
// exclude for the rest of the placement.
func lookupFacets(j *Job) []facetChoice {
	var out []facetChoice
	for _, f := range facetOrder {
		for _, c := range j.Constraints {
			if c.Key == f.label && (c.Op == opIn || c.Op == opEqual) && len(c.Values) > 0 {
				out = append(out, facetChoice{f.facet, c.Values})
				break
			}
		}
	}
	class := protocol.SizeClass(j.Resources.MemoryBytes)
	out = append(out, facetChoice{protocol.FacetSize, []string{class}})
	// Providers of revisions before 1.4 announce their own class only: the
	// larger classes are the widening of last resort that finds them.
	if larger := slices.DeleteFunc(protocol.SizeClassesFrom(j.Resources.MemoryBytes), func(c string) bool { return c == class }); len(larger) > 0 {
		out = append(out, facetChoice{protocol.FacetSize, larger})
	}
	return out
}

// WholesaleKeys returns the keys a site that publishes a tariff announces
// (SPEC 4.5): its tariff's jurisdiction under the wholesale facet, in the
// shards its presences give for the capacity it grants in slices.
func WholesaleKeys(site, jurisdiction string, granted Resources) []protocol.FacetKey {
	var keys []protocol.FacetKey
	for _, shard := range protocol.ProviderShards(protocol.FacetWholesale, site, granted.CPUMillis) {
		if k, err := protocol.NewFacetKey(protocol.FacetWholesale, jurisdiction, shard); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// ProviderKeys returns the facet keys a provider announces: for each facet
// value its labels, executors and memory give it, its presences, one shard
// per so many vCPUs it sells (SPEC 4.2, 4.3). Values that are not valid
// facet values are skipped. The result is in a fixed order.
func ProviderKeys(provider string, labels Labels, executors []string, capacity Resources) []protocol.FacetKey {
	var keys []protocol.FacetKey
	add := func(f protocol.Facet, v string) {
		for _, shard := range protocol.ProviderShards(f, provider, capacity.CPUMillis) {
			if k, err := protocol.NewFacetKey(f, v, shard); err == nil {
				keys = append(keys, k)
			}
		}
	}
	add(protocol.FacetAny, "")
	for _, f := range []struct {
		facet protocol.Facet
		label string
	}{{protocol.FacetRegion, LabelRegion}, {protocol.FacetJurisdiction, LabelJurisdiction}, {protocol.FacetCertification, LabelCertification}} {
		if v, ok := labels.Get(f.label); ok {
			add(f.facet, v)
		}
	}
	for _, e := range executors {
		add(protocol.FacetExecutor, e)
	}
	for _, class := range protocol.SizeClassesUpTo(capacity.MemoryBytes) {
		add(protocol.FacetSize, class)
	}
	return keys
}
