package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// Pins, recent roots, the quota and GC. The pins and recent roots are
// records (records.go).

// ErrFull is what a write says when the blocks it adds would pass the
// store's quota even after a GC.
var ErrFull = errors.New("data store full")

// Pin is one owner's hold on a root.
type Pin struct {
	Root  cid.Cid
	Owner string
}

// Pin makes owner hold root: GC keeps every block of root's DAG that the
// store holds, until every owner has unpinned it. The root need not be held
// yet (pin before a fetch, and what the fetch brings is kept); pinning twice
// is pinning once. A GC under way finishes first.
func (s *Store) Pin(ctx context.Context, root cid.Cid, owner string) error {
	if !root.Defined() || owner == "" {
		return errors.New("pin: a root and an owner, please")
	}
	s.gcMu.Lock() // a GC that did not see the pin would free the DAG
	defer s.gcMu.Unlock()
	if err := s.meta.pin(root, owner); err != nil {
		return fmt.Errorf("pin %s: %w", root, err)
	}
	return nil
}

// Unpin drops owner's hold on root, and records root as recent, so that it
// stays at least Options.Keep more. Unpinning what is not pinned is no error.
func (s *Store) Unpin(ctx context.Context, root cid.Cid, owner string) error {
	if err := s.meta.unpin(root, owner, s.opt.Now()); err != nil {
		return fmt.Errorf("unpin %s: %w", root, err)
	}
	return nil
}

// Pins lists the pins, by root then owner.
func (s *Store) Pins(ctx context.Context) ([]Pin, error) {
	var out []Pin
	err := s.meta.pins(func(p Pin) error {
		out = append(out, p)
		return nil
	})
	slices.SortFunc(out, func(a, b Pin) int {
		if c := strings.Compare(a.Root.String(), b.Root.String()); c != 0 {
			return c
		}
		return strings.Compare(a.Owner, b.Owner)
	})
	return out, err
}

// Touch records root as recent, as an add does: GC keeps its DAG at least
// Options.Keep more. Call it after fetching a DAG (and before, if it is not
// pinned, so that what a long fetch finds already held stays). A GC under
// way finishes first.
func (s *Store) Touch(ctx context.Context, root cid.Cid) error {
	s.gcMu.Lock() // a GC that did not see the root would free what it holds
	defer s.gcMu.Unlock()
	return s.touch(ctx, root)
}

// touch records root as recent; adds call it, whose blocks a GC under way
// keeps anyway, as just written.
func (s *Store) touch(ctx context.Context, root cid.Cid) error {
	if err := s.meta.touch(root, s.opt.Now(), s.opt.Keep/touchSkip); err != nil {
		return fmt.Errorf("%s: %w", root, err)
	}
	return nil
}

// touchSkip: a root recorded as recent less than Keep/touchSkip ago is not
// written again (a read, where a write would sync the disk): the empty
// directory, every job's output that wrote nothing, is touched at every
// run. It may go that much earlier than Keep after its last touch.
const touchSkip = 100

// Used is the bytes the store's blocks take on disk: each block's size
// rounded up to 4 KiB, the block size of common file systems.
func (s *Store) Used() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// begin records an add in progress, so that GC spares every block written
// since it began; the function it returns ends it.
func (s *Store) begin() func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := s.nextID
	s.active[id] = s.opt.Now()
	return func() {
		s.mu.Lock()
		delete(s.active, id)
		s.mu.Unlock()
	}
}

// GC deletes the blocks that are live no more, and returns the bytes freed.
// A block is live if it is in the DAG of a pinned root, or of a root added,
// unpinned or touched within Options.Keep, or if it was written (or written
// again) within Keep or since the start of an add still in progress. One GC
// runs at a time; adds and writes go on meanwhile, Pin and Touch wait.
func (s *Store) GC(ctx context.Context) (freed uint64, err error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	now := s.opt.Now()
	cutoff := now.Add(-s.opt.Keep)

	// Mark.
	var roots []cid.Cid
	err = s.meta.pins(func(p Pin) error {
		roots = append(roots, p.Root)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("GC: %w", err)
	}
	var old [][]byte // recent roots no more
	err = s.meta.recent(func(c cid.Cid, k, v []byte) error {
		if !c.Defined() || expired(v, cutoff) {
			old = append(old, bytes.Clone(k))
			return nil
		}
		roots = append(roots, c)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("GC: %w", err)
	}
	live := map[string]struct{}{}
	for _, r := range roots {
		if err := s.mark(ctx, r, live); err != nil {
			return 0, fmt.Errorf("GC: %w", err)
		}
	}

	// Blocks written since freshFrom are live whatever links to them.
	s.mu.Lock()
	freshFrom := s.pruneFresh(now)
	s.mu.Unlock()

	// Sweep: the hashes and sizes of the blocks come from one scan; the
	// blocks to delete go in batches.
	var batch []dead
	err = s.flat.scan(false, func(path string, h mh.Multihash, fi fs.FileInfo) error {
		if _, ok := live[string(h)]; ok {
			return nil
		}
		if batch = append(batch, dead{path, string(h), footprint(fi.Size())}); len(batch) == sweepBatch {
			n, err := s.sweep(batch, freshFrom)
			freed += n
			if err != nil {
				return err
			}
			batch = batch[:0]
		}
		return ctx.Err()
	})
	if err == nil {
		var n uint64
		n, err = s.sweep(batch, freshFrom)
		freed += n
	}
	if err != nil {
		return freed, fmt.Errorf("GC: %w", err)
	}
	if err := s.forget(old, cutoff); err != nil {
		return freed, fmt.Errorf("GC: %w", err)
	}
	return freed, nil
}

// forget deletes the records of the recent roots keys, those not touched
// again since GC read them: a record's check and delete are one
// transaction, which a touch cannot split.
func (s *Store) forget(keys [][]byte, cutoff time.Time) error {
	return s.meta.forget(keys, cutoff)
}

// pruneFresh forgets the blocks written before the time it returns: from
// then on, a block written is live whatever links to it. With s.mu and
// s.gcMu held.
func (s *Store) pruneFresh(now time.Time) (from time.Time) {
	from = now.Add(-s.opt.Keep)
	for _, t := range s.active {
		if t.Before(from) {
			from = t
		}
	}
	for k, t := range s.fresh {
		if t.Before(from) {
			delete(s.fresh, k)
		}
	}
	s.pruneAt = max(2*len(s.fresh), minPruneAt)
	return from
}

// minPruneAt is the fewest blocks remembered as fresh before a write prunes
// them, so that a store never collected does not remember every block.
const minPruneAt = 1 << 14

// sweepBatch is how many blocks a GC deletes at once.
const sweepBatch = 1024

// dead is a block GC found unmarked.
type dead struct {
	path string // its file
	hash string // its multihash
	size uint64 // its footprint
}

// sweep deletes the blocks of batch not written since freshFrom. Only GC
// deletes blocks (DeleteBlock waits for it), so each is still held, of the
// size the scan saw.
func (s *Store) sweep(batch []dead, freshFrom time.Time) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for _, d := range batch {
		if t, ok := s.fresh[d.hash]; ok && !t.Before(freshFrom) {
			continue
		}
		if err := os.Remove(d.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.used -= min(s.used, n)
			return n, err
		}
		n += d.size
	}
	s.used -= min(s.used, n)
	return n, nil
}

// mark adds to live the multihash of every block of root's DAG, as far as
// the store holds it: a block missing or unreadable ends its branch, not the
// GC. Raw leaves are marked without being read.
func (s *Store) mark(ctx context.Context, root cid.Cid, live map[string]struct{}) error {
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		k := string(c.Hash())
		if _, ok := live[k]; ok {
			continue
		}
		live[k] = struct{}{}
		if c.Type() == cid.Raw {
			continue
		}
		blk, err := s.raw.Get(ctx, c)
		if err != nil {
			continue
		}
		links, err := linksOf(blk)
		if err != nil {
			continue
		}
		stack = append(stack, links...)
	}
	return nil
}

// accounted is the store's blockstore: every write goes through it, which
// counts the bytes held, keeps the quota and marks the blocks written fresh.
type accounted struct {
	blockstore.Blockstore
	s *Store
}

func (a *accounted) Put(ctx context.Context, blk blocks.Block) error {
	return a.PutMany(ctx, []blocks.Block{blk})
}

func (a *accounted) PutMany(ctx context.Context, blks []blocks.Block) error {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	gced := false
	for {
		now := s.opt.Now()
		var news []blocks.Block
		var n uint64
		seen := map[string]bool{}
		for _, b := range blks {
			k := string(b.Cid().Hash())
			// Fresh before anything else, so that a GC under way keeps a
			// block already held that an add now relies on.
			s.fresh[k] = now
			if seen[k] {
				continue
			}
			seen[k] = true
			has, err := s.raw.Has(ctx, b.Cid())
			if err != nil {
				return err
			}
			if !has {
				news = append(news, b)
				n += footprint(len(b.RawData()))
			}
		}
		if len(news) == 0 {
			return nil
		}
		if q := s.opt.Quota; q > 0 && s.used+n > q {
			if !gced {
				gced = true
				s.mu.Unlock()
				_, err := s.GC(ctx)
				s.mu.Lock()
				if err != nil {
					return err
				}
				continue // what is held may have changed meanwhile
			}
			return fmt.Errorf("%w: %d bytes held, %d more would pass the quota of %d", ErrFull, s.used, n, q)
		}
		if err := s.raw.PutMany(ctx, news); err != nil {
			return err
		}
		s.used += n
		// Not while a GC runs: it may count on fresh blocks written before
		// an add that has ended since it began.
		if len(s.fresh) >= s.pruneAt && s.gcMu.TryLock() {
			s.pruneFresh(now)
			s.gcMu.Unlock()
		}
		return nil
	}
}

func (a *accounted) DeleteBlock(ctx context.Context, c cid.Cid) error {
	s := a.s
	s.gcMu.Lock() // see sweep
	defer s.gcMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.raw.GetSize(ctx, c)
	if ipld.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.raw.DeleteBlock(ctx, c); err != nil {
		return err
	}
	s.used -= min(s.used, footprint(n))
	return nil
}
