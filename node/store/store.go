package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout of the store this build reads and writes: the
// buckets, their keys and the storepb records. Open refuses a file of a newer
// version rather than misread it.
const SchemaVersion = 2

// Bucket names and the meta keys. Part of the schema: never rename one.
var (
	bucketMeta     = []byte("meta")
	bucketLeases   = []byte("leases")
	bucketReceipts = []byte("receipts")
	bucketJobs     = []byte("jobs")
	bucketNonces   = []byte("nonces")       // nonce -> expiry (8 bytes, big-endian Unix ms)
	bucketNonceExp = []byte("nonce-expiry") // expiry || nonce -> nothing, to prune in order
	bucketModules  = []byte("modules")      // binary CID -> storepb.Module
	bucketGrants   = []byte("grants")       // grant ID -> storepb.Grant (schema 2)

	keySchema = []byte("schema") // 4 bytes, big-endian

	allBuckets = [][]byte{bucketMeta, bucketLeases, bucketReceipts, bucketJobs, bucketNonces, bucketNonceExp, bucketModules, bucketGrants}
	// addedIn are the buckets a schema version added, which a store of an
	// earlier version gets when it is opened (the migration).
	addedIn = map[uint32][][]byte{2: {bucketGrants}}
)

// Errors a caller branches on. Fencing and replay refusals are *protocol.Error
// values instead (CODE_STALE_EPOCH, CODE_REPLAYED), so the node can answer a
// peer with them as they are.
var (
	// ErrNotFound says a record is not in the store.
	ErrNotFound = errors.New("not found")
	// ErrTransition says a lease may not move from its stored state to the
	// one asked (SPEC 9, protocol.CanTransition).
	ErrTransition = errors.New("illegal lease state transition")
)

// Defaults of Options.
const (
	DefaultLockTimeout   = time.Second
	DefaultMaxModuleSize = 64 << 20
)

// Options tunes Open. The zero value is the documented defaults.
type Options struct {
	// LockTimeout bounds the wait for the file's exclusive lock, held by the
	// process that has the store open. A second daemon on the same data dir
	// gets an error after this long instead of hanging. Default 1 s.
	LockTimeout time.Duration
	// ModuleDir holds the module files (see "Why are modules files?" in the
	// package doc). Default: the directory "modules" beside the store file.
	ModuleDir string
	// MaxModuleSize is the largest module PutModule accepts, in bytes.
	// Default 64 MiB.
	MaxModuleSize int64
	// Now is the clock that dates module index entries. Default time.Now.
	Now func() time.Time
}

// Validate reports what is wrong with o, or nil.
func (o Options) Validate() error {
	var errs []error
	if o.LockTimeout < 0 {
		errs = append(errs, fmt.Errorf("lock timeout %s is negative: use 0 for the default (%s)", o.LockTimeout, DefaultLockTimeout))
	}
	if o.MaxModuleSize < 0 {
		errs = append(errs, fmt.Errorf("max module size %d is negative: use 0 for the default (%d)", o.MaxModuleSize, DefaultMaxModuleSize))
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults(path string) Options {
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.ModuleDir == "" {
		o.ModuleDir = filepath.Join(filepath.Dir(path), "modules")
	}
	if o.MaxModuleSize == 0 {
		o.MaxModuleSize = DefaultMaxModuleSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the node's state in one bbolt file. Every write is one transaction
// that is synced to disk (fsync) before the method returns, so the caller may
// acknowledge what it wrote to a peer as soon as it returns. It is safe for
// concurrent use: bbolt runs one writer at a time and readers beside it.
// Records returned are copies: the caller owns them and their slices.
type Store struct {
	db   *bolt.DB
	path string
	opts Options
}

// Open opens the store at path, creating it (and its directory, mode 0700; the
// file 0600) if needed, and checks its schema version. The file is locked for
// as long as the store is open: if another process holds it, Open fails after
// opts.LockTimeout with an error that says so.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("store %s: options: %w", path, err)
	}
	opts = opts.withDefaults(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		NoSync:  false, // the whole point: Put returns after fsync
		// The freelist is synced too, so that opening after a crash does
		// not have to scan the whole file to rebuild it.
		NoFreelistSync: false,
	})
	if err == nil {
		db.MaxBatchDelay = MaxBatchDelay
	}
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store %s is locked by another process (waited %s): is another cuivre daemon running on this data dir? Stop it, or use another data dir: %w", path, opts.LockTimeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("store %s is not a readable bbolt file (%w): move it aside and restore a backup, or start from an empty data dir", path, err)
	case err != nil:
		return nil, fmt.Errorf("store %s: open: %w", path, err)
	}
	s := &Store{db: db, path: path, opts: opts}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.initModuleDir(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init creates the buckets of a new store, or checks the schema version of an
// existing one.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			var names []string
			_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, string(name))
				return nil
			})
			if len(names) > 0 {
				return fmt.Errorf("store %s is a bbolt file but not a cuivre store (no schema version; buckets %s): use another path", s.path, strings.Join(names, ", "))
			}
			for _, name := range allBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("store %s: create bucket %s: %w", s.path, name, err)
				}
			}
			return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion))
		}
		v := meta.Get(keySchema)
		if len(v) != 4 {
			return fmt.Errorf("store %s: schema version is %d bytes, want 4: the file is damaged", s.path, len(v))
		}
		switch ver := binary.BigEndian.Uint32(v); {
		case ver > SchemaVersion:
			return fmt.Errorf("store %s has schema version %d, newer than the version %d this cuivre reads: it was written by a newer cuivre; upgrade cuivre, or restore a backup made before the upgrade", s.path, ver, SchemaVersion)
		case ver < 1:
			return fmt.Errorf("store %s has schema version %d: the file is damaged", s.path, ver)
		}
		// Migrate: each version since the file's adds its buckets. Then a
		// missing bucket is damage, not an old layout.
		ver := binary.BigEndian.Uint32(v)
		for next := ver + 1; next <= SchemaVersion; next++ {
			for _, name := range addedIn[next] {
				if _, err := tx.CreateBucketIfNotExists(name); err != nil {
					return fmt.Errorf("store %s: migrate to schema %d: create bucket %s: %w", s.path, next, name, err)
				}
			}
		}
		if ver < SchemaVersion {
			if err := meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)); err != nil {
				return fmt.Errorf("store %s: migrate to schema %d: %w", s.path, SchemaVersion, err)
			}
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("store %s: bucket %s is missing: the file is damaged", s.path, name)
			}
		}
		return nil
	})
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. The store must not be used after.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store %s: close: %w", s.path, err)
	}
	return nil
}

// Tx is one transaction on the store, given to the function passed to Update
// or View. It lets a caller make several writes durable together with one
// fsync, as SPEC 6.2 asks of a lease: the lease, its job and its nonce commit
// together. A Tx is not safe for concurrent use, and is dead once that
// function returns.
type Tx struct {
	tx *bolt.Tx
}

// Update runs fn in one read-write transaction and syncs it to disk before it
// returns. If fn returns an error, nothing fn wrote is kept and that error is
// returned as it is. Writers run one at a time.
func (s *Store) Update(fn func(*Tx) error) error { return s.write(s.db.Update, fn) }

// Batch is Update for writers that may share a transaction: calls made at
// about the same time from several goroutines are committed together, with
// one fsync, after at most MaxBatchDelay. fn may run more than once, so it
// must only write. It returns, like Update, once the write is on disk.
func (s *Store) Batch(fn func(*Tx) error) error { return s.write(s.db.Batch, fn) }

// write runs fn through bolt's Update or Batch, telling fn's own error from a
// failed commit.
func (s *Store) write(commit func(func(*bolt.Tx) error) error, fn func(*Tx) error) error {
	var fnErr error
	err := commit(func(tx *bolt.Tx) error {
		fnErr = fn(&Tx{tx: tx})
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("store %s: commit: %w", s.path, err)
	}
	return err
}

// MaxBatchDelay is how long Batch waits for other writers before it commits.
const MaxBatchDelay = 2 * time.Millisecond

// View runs fn in one read-only transaction: a consistent snapshot. The write
// methods of Tx fail in it.
func (s *Store) View(fn func(*Tx) error) error {
	var fnErr error
	err := s.db.View(func(tx *bolt.Tx) error {
		fnErr = fn(&Tx{tx: tx})
		return fnErr
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("store %s: %w", s.path, err)
	}
	return err
}

func (tx *Tx) bucket(name []byte) *bolt.Bucket {
	b := tx.tx.Bucket(name)
	if b == nil {
		// Open checked every bucket exists and nothing deletes one.
		panic(fmt.Sprintf("store: bucket %s missing", name))
	}
	return b
}

// view runs fn in a View and returns its result.
func view[T any](s *Store, fn func(*Tx) (T, error)) (T, error) {
	var out T
	err := s.View(func(tx *Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}

// update runs fn in an Update and returns its result.
func update[T any](s *Store, fn func(*Tx) (T, error)) (T, error) {
	var out T
	err := s.Update(func(tx *Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}
