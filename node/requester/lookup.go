package requester

import (
	"context"
	"sync"
	"time"

	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// Grace periods of a lookup once it has found what it needs: short when a
// placement waits for it, longer for a refresh behind the cache, which may
// gather the records of a few more peers. The simulator's model shares them.
const (
	lookupGrace  = scheduler.LookupGrace
	refreshGrace = scheduler.RefreshGrace
)

// findFunc looks a key up until it has need providers and grace has passed,
// and says whether the lookup ran to its end.
type findFunc func(need int, grace time.Duration) ([]string, bool)

// lookup carries out a Lookup: each key is answered from the cache if it
// can be, or looked up (once, however many placements ask) in a goroutine.
func (r *Requester) lookup(ctx context.Context, a scheduler.Lookup, send func(scheduler.Event)) {
	for _, k := range a.Keys {
		key := k.String()
		// A lookup ends once it has found need providers and a little
		// grace has passed: the peers that store a key's records answer
		// with all they hold, so walking the rest of the DHT for the 16
		// records a sparse shard never has would only cost dials.
		find := func(need int, grace time.Duration) ([]string, bool) {
			lctx, cancel := context.WithTimeout(r.ctx, r.cfg.Placement.WithDefaults().LookupTimeout)
			defer cancel()
			found, complete := r.t.FindProviders(lctx, wire.FacetCID(k), a.Want+1, need, grace)
			return r.others(found), complete
		}
		if peers, ok := r.candidates.cached(key, r.clock.Now(), r.spawn, find); ok {
			send(scheduler.CandidatesFound{Key: k, Peers: r.dead.filter(peers, r.clock.Now()), Done: true})
			continue
		}
		r.spawn(func() {
			peers := r.candidates.lookup(key, r.clock.Now, max(a.Need, 1), find)
			send(scheduler.CandidatesFound{Key: k, Peers: r.dead.filter(peers, r.clock.Now()), Done: true})
		})
	}
}

// others returns the providers found, less this node: a node does not lease
// to itself over the network; its own capacity serves other requesters.
func (r *Requester) others(found []string) []string {
	var peers []string
	for _, p := range found {
		if p != r.id {
			peers = append(peers, p)
		}
	}
	return peers
}

// candidateCache keeps what DHT lookups returned for a short while: provider
// records are hints, never authorities (SPEC 4), and a warm requester need not ask the DHT again
// for every job. A stale entry costs one refused or silent probe, which the
// placement already handles.
//
// Under load it must not multiply lookups: concurrent misses of a key share
// one lookup, and an entry past its TTL (but not by more than staleFor) is
// still served while a single refresh runs behind it, so that placements
// never wait for the DHT once a key is known.
type candidateCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]*candidateEntry
}

type candidateEntry struct {
	peers   []string
	expires time.Time
	busy    chan struct{} // a lookup is running; closed when it ends
}

// emptyTTL is how long an empty answer is kept: long enough to spare a
// placement's widening lookups of empty shards, short enough that a provider
// announcing itself is seen by the next attempt but one.
const emptyTTL = scheduler.EmptyCandidateTTL

// staleFor is how long past its TTL an entry may still be served while it is
// refreshed.
const staleFor = scheduler.CandidateStaleFor

// cached returns the peers of key if they can be served at once: fresh, or
// stale but not by more than staleFor (then starting a refresh with find, if
// none runs, that looks for as many as the entry holds, in a goroutine
// started with spawn).
func (c *candidateCache) cached(key string, now time.Time, spawn func(func()), find findFunc) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	switch {
	case e == nil || e.expires.IsZero():
		return nil, false
	case now.Before(e.expires):
		return e.peers, true
	case len(e.peers) == 0 || now.Sub(e.expires) > staleFor:
		return nil, false
	}
	if e.busy == nil {
		e.busy = make(chan struct{})
		need := len(e.peers)
		spawn(func() { c.run(e, now, func() ([]string, bool) { return find(need, refreshGrace) }) })
	}
	return e.peers, true
}

// lookup returns the peers of key, looking need of them up with find unless a
// lookup of key is running already, whose answer it then shares.
func (c *candidateCache) lookup(key string, now func() time.Time, need int, find findFunc) []string {
	c.mu.Lock()
	if c.entries == nil || len(c.entries) > scheduler.MaxCandidateKeys {
		c.entries = map[string]*candidateEntry{} // crude bound: start afresh
	}
	e := c.entries[key]
	if e == nil {
		e = &candidateEntry{}
		c.entries[key] = e
	}
	if e.busy == nil {
		e.busy = make(chan struct{})
		c.mu.Unlock()
		return c.run(e, now(), func() ([]string, bool) { return find(need, lookupGrace) })
	}
	busy := e.busy
	c.mu.Unlock()
	<-busy
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.peers
}

// run does e's lookup and keeps its answer: for the TTL if it found
// providers, for emptyTTL if it ran to its end and found none; an empty
// answer cut short (a timeout) is not kept.
func (c *candidateCache) run(e *candidateEntry, now time.Time, find func() ([]string, bool)) []string {
	peers, complete := find()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(peers) > 0:
		e.peers, e.expires = peers, now.Add(c.ttl)
	case complete:
		e.peers, e.expires = peers, now.Add(min(c.ttl, emptyTTL))
	}
	close(e.busy)
	e.busy = nil
	return peers
}
