package protocol

import (
	"container/heap"
	"sync"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
)

// ReplayCache remembers the nonces of accepted records until they expire, so a
// signed offer or lease is accepted once (SPEC 3.4). Since every such record
// expires within a bounded TTL, the cache stays bounded: a nonce is forgotten once
// its record could no longer be accepted anyway. It is safe for concurrent use.
//
// Its entries, forgotten ones included, never exceed max. The cache lives in memory; a daemon persists each nonce it accepts and reloads
// them with Add at start, so that replay protection survives a restart.
type ReplayCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]uint64 // nonce -> expiry, Unix ms
	exp  expiryHeap
}

// NewReplayCache returns a cache holding at most max live nonces. When it is full
// of live nonces, Check refuses new ones with CODE_RATE_LIMITED rather than
// forget one that could be replayed.
func NewReplayCache(max int) *ReplayCache {
	return &ReplayCache{max: max, seen: make(map[string]uint64)}
}

// Check accepts a nonce once: ErrExpired if the record expired at now,
// ErrReplayed if the nonce was accepted before, otherwise it records the nonce.
func (c *ReplayCache) Check(nonce []byte, expiresAtMs uint64, now time.Time) error {
	if len(nonce) != NonceSize {
		return Errorf(CodeMalformed, "nonce is %d bytes, want %d", len(nonce), NonceSize)
	}
	nowMs := UnixMs(now)
	if expiresAtMs <= nowMs {
		return Errorf(CodeExpired, "record expired %d ms ago", nowMs-expiresAtMs)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prune(nowMs)
	if _, ok := c.seen[string(nonce)]; ok {
		return Errorf(CodeReplayed, "nonce %x already used", nonce)
	}
	if len(c.exp) >= c.max { // forgotten nonces count until they expire: memory stays bounded
		return Errorf(pb.Code_CODE_RATE_LIMITED, "replay cache full (%d live nonces)", c.max)
	}
	c.add(string(nonce), expiresAtMs)
	return nil
}

// Forget drops a nonce Check accepted for a record that was refused after
// all, so that the nonce stays the honest record's (SPEC 3.4 remembers the
// nonces of accepted records): a peer that copies another's nonce into a
// record of its own must not burn it. The heap entry stays until it expires.
func (c *ReplayCache) Forget(nonce []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, string(nonce))
}

// Add records a nonce without checking it, to reload a persisted cache.
func (c *ReplayCache) Add(nonce []byte, expiresAtMs uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[string(nonce)]; !ok {
		c.add(string(nonce), expiresAtMs)
	}
}

// Len returns the number of nonces held, live or not yet pruned.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *ReplayCache) add(nonce string, exp uint64) {
	c.seen[nonce] = exp
	heap.Push(&c.exp, expiryEntry{nonce, exp})
}

func (c *ReplayCache) prune(nowMs uint64) {
	for len(c.exp) > 0 && c.exp[0].exp <= nowMs {
		e := heap.Pop(&c.exp).(expiryEntry)
		if c.seen[e.nonce] == e.exp { // not one forgotten and checked again since
			delete(c.seen, e.nonce)
		}
	}
}

type expiryEntry struct {
	nonce string
	exp   uint64
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
