package data

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// records keeps the store's pins and recent roots in a bbolt file beside
// the blocks, a few bytes each. Every change is one transaction, durable
// when it returns.
//
// In bucket pins, a pin is the key <root's bytes><owner>, with no value
// (a CID's bytes delimit themselves); in bucket recent, a recent root is
// the key <root's bytes>, its value the time (Unix nanoseconds, big-endian)
// it was last added, unpinned or touched.
type records struct{ db *bolt.DB }

var (
	pinsBucket   = []byte("pins")
	recentBucket = []byte("recent")
)

// openRecords opens (creating it if needed) the records at path. Another
// process holding them makes it fail after a second.
func openRecords(path string) (*records, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{pinsBucket, recentBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &records{db: db}, nil
}

func (r *records) Close() error { return r.db.Close() }

func pinKey(root cid.Cid, owner string) []byte {
	return append(root.Bytes(), owner...)
}

func nanos(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

// expired reports whether a recent root's record is older than cutoff.
func expired(v []byte, cutoff time.Time) bool {
	return len(v) != 8 || time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(cutoff)
}

func (r *records) pin(root cid.Cid, owner string) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(pinsBucket).Put(pinKey(root, owner), nil)
	})
}

// unpin drops owner's pin of root and records root as recent at now, in
// one transaction: a GC sees the pin or the recent root.
func (r *records) unpin(root cid.Cid, owner string, now time.Time) error {
	return r.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(recentBucket).Put(root.Bytes(), nanos(now)); err != nil {
			return err
		}
		return tx.Bucket(pinsBucket).Delete(pinKey(root, owner))
	})
}

// touch records root as recent at now, unless its record is younger than
// fresh already.
func (r *records) touch(root cid.Cid, now time.Time, fresh time.Duration) error {
	var young bool
	r.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(recentBucket).Get(root.Bytes())
		young = v != nil && !expired(v, now.Add(-fresh))
		return nil
	})
	if young {
		return nil
	}
	return r.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(recentBucket).Put(root.Bytes(), nanos(now))
	})
}

// pins calls fn with every pin, by root's bytes then owner.
func (r *records) pins(fn func(Pin) error) error {
	return r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(pinsBucket).ForEach(func(k, _ []byte) error {
			n, c, err := cid.CidFromBytes(k)
			if err != nil {
				return fmt.Errorf("pins: a key %x: %w", k, err)
			}
			return fn(Pin{Root: c, Owner: string(k[n:])})
		})
	})
}

// recent calls fn with every recent root and its record; a key that is
// not a CID comes as cid.Undef.
func (r *records) recent(fn func(root cid.Cid, key, v []byte) error) error {
	return r.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(recentBucket).ForEach(func(k, v []byte) error {
			c, err := cid.Cast(k)
			if err != nil {
				c = cid.Undef
			}
			return fn(c, k, v)
		})
	})
}

// forget deletes the records of the recent roots under keys that are older
// than cutoff still: those touched again since stay.
func (r *records) forget(keys [][]byte, cutoff time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	return r.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(recentBucket)
		for _, k := range keys {
			if v := b.Get(k); v != nil && expired(v, cutoff) {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
