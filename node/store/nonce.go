package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cuivre/cuivre/protocol"
)

// Nonce is a nonce of an accepted record and when that record expires.
type Nonce struct {
	Value       []byte
	ExpiresAtMs uint64 // Unix ms, as protocol.ReplayCache takes it
}

// AddNonce persists a nonce the replay cache accepted, until expiresAtMs
// (SPEC 3.4: before acknowledging what the nonce guards). Adding a nonce again
// keeps the later expiry. It does not check for replay: protocol.ReplayCache
// does, in memory.
//
// Two buckets hold nonces: "nonces" maps nonce to expiry (8 bytes,
// big-endian), and "nonce-expiry" holds expiry || nonce keys with empty
// values, so that pruning walks only what has expired, in order.
func (tx *Tx) AddNonce(nonce []byte, expiresAtMs uint64) error {
	if len(nonce) != protocol.NonceSize {
		return fmt.Errorf("add nonce: %w", protocol.Errorf(protocol.CodeMalformed, "nonce is %d bytes, want %d", len(nonce), protocol.NonceSize))
	}
	nb, eb := tx.bucket(bucketNonces), tx.bucket(bucketNonceExp)
	if v := nb.Get(nonce); len(v) == 8 {
		old := binary.BigEndian.Uint64(v)
		if old >= expiresAtMs {
			return nil
		}
		if err := eb.Delete(expiryKey(old, nonce)); err != nil {
			return fmt.Errorf("add nonce %x: %w", nonce, err)
		}
	}
	if err := nb.Put(nonce, binary.BigEndian.AppendUint64(nil, expiresAtMs)); err != nil {
		return fmt.Errorf("add nonce %x: %w", nonce, err)
	}
	if err := eb.Put(expiryKey(expiresAtMs, nonce), nil); err != nil {
		return fmt.Errorf("add nonce %x: %w", nonce, err)
	}
	return nil
}

func expiryKey(exp uint64, nonce []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(nonce)), exp), nonce...)
}

// PruneNonces forgets the nonces whose records expired at or before now, as
// the replay cache does (SPEC 3.4 step 3), and returns how many it forgot.
func (tx *Tx) PruneNonces(now time.Time) (int, error) {
	nowMs := protocol.UnixMs(now)
	nb, eb := tx.bucket(bucketNonces), tx.bucket(bucketNonceExp)
	// Collect first: deleting under a bbolt cursor can skip keys.
	var dead [][]byte
	c := eb.Cursor()
	for k, _ := c.First(); k != nil && len(k) >= 8 && binary.BigEndian.Uint64(k) <= nowMs; k, _ = c.Next() {
		dead = append(dead, clone(k))
	}
	for _, k := range dead {
		if err := eb.Delete(k); err != nil {
			return 0, fmt.Errorf("prune nonces: %w", err)
		}
		if err := nb.Delete(k[8:]); err != nil {
			return 0, fmt.Errorf("prune nonces: %w", err)
		}
	}
	return len(dead), nil
}

// Nonces prunes the expired nonces, then returns the live ones, soonest
// expiry first, for protocol.ReplayCache.Add at start.
func (tx *Tx) Nonces(now time.Time) ([]Nonce, error) {
	if _, err := tx.PruneNonces(now); err != nil {
		return nil, err
	}
	var out []Nonce
	err := tx.bucket(bucketNonceExp).ForEach(func(k, _ []byte) error {
		if len(k) != 8+protocol.NonceSize {
			return fmt.Errorf("nonce index key is %d bytes, want %d: the store is damaged", len(k), 8+protocol.NonceSize)
		}
		out = append(out, Nonce{Value: clone(k[8:]), ExpiresAtMs: binary.BigEndian.Uint64(k)})
		return nil
	})
	return out, err
}

// AddNonce is Tx.AddNonce in a transaction of its own, synced before it
// returns.
func (s *Store) AddNonce(nonce []byte, expiresAtMs uint64) error {
	return s.Update(func(tx *Tx) error { return tx.AddNonce(nonce, expiresAtMs) })
}

// PruneNonces is Tx.PruneNonces in a transaction of its own. Call it now and
// then (a minute apart is plenty), or the nonces of a long-running daemon pile
// up until its next start.
func (s *Store) PruneNonces(now time.Time) (int, error) {
	return update(s, func(tx *Tx) (int, error) { return tx.PruneNonces(now) })
}

// Nonces prunes and lists the live nonces in one transaction: reload them into
// a protocol.ReplayCache with Add when the daemon starts.
func (s *Store) Nonces(now time.Time) ([]Nonce, error) {
	return update(s, func(tx *Tx) ([]Nonce, error) { return tx.Nonces(now) })
}
