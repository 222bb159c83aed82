package scheduler

import (
	"slices"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// The value types of the core. They are plain and small on purpose: the node
// converts wire messages to them at its edge (wire.go), and the simulator builds
// them directly, millions at a time. IDs are strings holding binary peer IDs,
// nonces and CIDs; the core never interprets them.

// Resources is an amount of compute.
type Resources struct {
	CPUMillis    uint64 `json:"cpu_millis"`
	MemoryBytes  uint64 `json:"memory_bytes"`
	ScratchBytes uint64 `json:"scratch_bytes"`
}

// Fits reports whether r fits within free.
func (r Resources) Fits(free Resources) bool {
	return r.CPUMillis <= free.CPUMillis && r.MemoryBytes <= free.MemoryBytes && r.ScratchBytes <= free.ScratchBytes
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{r.CPUMillis + o.CPUMillis, r.MemoryBytes + o.MemoryBytes, r.ScratchBytes + o.ScratchBytes}
}

// Sub returns r - o, each field floored at zero.
func (r Resources) Sub(o Resources) Resources {
	sub := func(a, b uint64) uint64 {
		if b > a {
			return 0
		}
		return a - b
	}
	return Resources{sub(r.CPUMillis, o.CPUMillis), sub(r.MemoryBytes, o.MemoryBytes), sub(r.ScratchBytes, o.ScratchBytes)}
}

// Price is a tariff in nano-units of Currency per resource-second (SPEC 5.5).
type Price struct {
	Currency                string
	CPUNanosPerSecond       uint64
	MemoryNanosPerGiBSecond uint64
	EgressNanosPerGiB       uint64
}

// Cost returns what reserving r for d costs at p, in nano-units.
func (p Price) Cost(r Resources, d time.Duration) (uint64, error) {
	return protocol.CostNanos(r.CPUMillis, r.MemoryBytes, p.CPUNanosPerSecond, p.MemoryNanosPerGiBSecond, d)
}

// Amount is a sum of money.
type Amount struct {
	Currency string
	Nanos    uint64
}

// Label is one attribute of a provider.
type Label struct{ Key, Value string }

// Labels is a provider's attributes, sorted by key, keys unique.
type Labels []Label

// Get returns the value of a label.
func (l Labels) Get(key string) (string, bool) {
	i, ok := slices.BinarySearchFunc(l, key, func(x Label, k string) int {
		switch {
		case x.Key < k:
			return -1
		case x.Key > k:
			return 1
		}
		return 0
	})
	if !ok {
		return "", false
	}
	return l[i].Value, true
}

// NewLabels sorts and de-duplicates labels (the last value of a key wins).
func NewLabels(kv ...Label) Labels {
	l := slices.Clone(kv)
	slices.SortStableFunc(l, func(a, b Label) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	out := l[:0]
	for i, x := range l {
		if i+1 < len(l) && l[i+1].Key == x.Key {
			continue
		}
		out = append(out, x)
	}
	return out
}

// Selector is a label selector: a hard constraint or, with a weight, an affinity.
type Selector struct {
	Key    string
	Op     pb.Operator
	Values []string // sorted
	Weight int32    // affinities only: -100..100
}

// Matches reports whether labels satisfy the selector.
func (s Selector) Matches(l Labels) bool {
	v, ok := l.Get(s.Key)
	switch s.Op {
	case pb.Operator_OPERATOR_EXISTS:
		return ok
	case pb.Operator_OPERATOR_IN, pb.Operator_OPERATOR_EQUAL:
		_, found := slices.BinarySearch(s.Values, v)
		return ok && found
	case pb.Operator_OPERATOR_NOT_IN, pb.Operator_OPERATOR_NOT_EQUAL:
		_, found := slices.BinarySearch(s.Values, v)
		return !ok || !found
	}
	return false
}

// Spread asks that a job's instances be spread across the values of a label.
type Spread struct {
	Attribute string
	Weight    uint32
}

// Request is what a requester asks a provider to quote: an OfferRequest.
type Request struct {
	Nonce       string
	Requester   string
	JobCID      string
	Executor    string
	Resources   Resources
	Timeout     time.Duration
	Constraints []Selector
	MaxPrice    Amount // an empty Currency means no ceiling
	ExpiresAt   time.Time
	// Origin groups the requests that come from one place (the node sets
	// the network prefix of the requester's connection), for the limits
	// of MarketConfig. Empty: none but the requester's own.
	Origin string
	// Grantee is the retailer on whose slice the offer is made (SPEC 6.7):
	// the node sets it from a grant it has checked. Empty: the site's own
	// retail, which never uses a slice granted to another. An offer on a
	// slice bills nothing: the slice is paid whole (SPEC 4.5).
	Grantee string
	// Grant is the sealed SliceGrant a grantee's request carries on the
	// wire (SPEC 6.7), opaque here: the site checks it and sets Grantee.
	Grant string
}

// Offer is a provider's promise: these resources at this price until ExpiresAt.
type Offer struct {
	Provider     string
	Requester    string
	RequestNonce string
	Nonce        string
	JobCID       string
	Resources    Resources
	Price        Price
	Total        Amount
	ExpiresAt    time.Time
	LoadPermille uint32
	Labels       Labels
	Capacity     Resources // what the provider sells in all (SPEC 6.1); zero if it did not say
	// Site is, for a retailer's offer, the site the lease runs on (SPEC
	// 6.7), its grant checked by the requester; empty for a provider's own.
	Site string
}

// Lease is a requester's order to run a job under an offer.
type Lease struct {
	ID         string
	Provider   string
	Requester  string
	OfferNonce string
	JobCID     string
	Epoch      uint64
	ExpiresAt  time.Time
	Resources  Resources
	Timeout    time.Duration
	Instance   uint32 // the job's instance the slot runs: slot / replicas (SPEC 6.2)
}

// Usage is what a released lease bills: its resources for the time it held them.
type Usage struct {
	LeaseID   string
	Epoch     uint64
	Resources Resources
	Started   time.Time
	Ended     time.Time
	Price     Price
	Amount    Amount
}
