package data

import (
	"bytes"
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// flat keeps blocks one per file, the way kubo's flatfs does: a block is
// the file <dir>/<XY>/<name>.data, where name is the base32 of its
// multihash and XY the name's next-to-last two characters, which spread
// blocks over at most 1,024 directories. A block is written once, with one
// write, and read with one read: an LSM tree would write it again at every
// compaction, which halved a fetch's rate.
//
// A write goes to a temporary file renamed into place, so a block file is
// whole or absent while the machine runs. What reaches the disk is another
// matter: Sync makes every write before it durable (one syncfs on Linux),
// and the files written since the last Sync are those a crash may leave
// torn. The file dirty, present from Open to Close, has the time of the
// last Sync; opening a store that has it (the last process did not Close)
// checks every block written since against its multihash, and removes
// those that fail, which a fetch or an add then brings again.
type flat struct {
	dir    string
	shards sync.Map // the shard directories known to exist

	dirty   atomic.Bool // a block written since the last Sync
	mu      sync.Mutex
	written []string // files written since the last Sync, where syncfs is not
}

// dirtyName is the marker of a store in use; its time is the last Sync's.
const dirtyName = "dirty"

// tmpPrefix begins the names of blocks being written.
const tmpPrefix = ".put-"

// checkSlack widens the time a crash check starts from, for file systems
// whose timestamps are coarser than the clock.
const checkSlack = 2 * time.Second

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// fsBlock is the block size of common file systems: a file takes a whole
// number of them.
const fsBlock = 4 << 10

// footprint is what a block of n bytes takes on disk as a file: n rounded
// up to fsBlock. The quota counts it, so that a DAG of many tiny blocks
// (a directory of small files) is charged for the disk it takes.
func footprint[N int | int64](n N) uint64 {
	return (uint64(n) + fsBlock - 1) &^ (fsBlock - 1)
}

// openFiles opens the block files under dir, creating it if needed, checks
// what an unclean stop may have torn, and returns the bytes the blocks held take (footprint).
func openFiles(dir string) (*flat, uint64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	f := &flat{dir: dir}
	marker := filepath.Join(dir, dirtyName)
	var since time.Time // blocks written since are checked; zero: none
	if fi, err := os.Stat(marker); err == nil {
		since = fi.ModTime().Add(-checkSlack)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, err
	}
	var used uint64
	err := f.scan(true, func(path string, h mh.Multihash, fi fs.FileInfo) error {
		if !since.IsZero() && !fi.ModTime().Before(since) && !whole(path, h) {
			return os.Remove(path)
		}
		used += footprint(fi.Size())
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if err := touchFile(marker); err != nil {
		return nil, 0, err
	}
	f.dirty.Store(true) // the marker
	if err := f.Sync(); err != nil {
		return nil, 0, err
	}
	return f, used, nil
}

// whole reports whether the file at path holds the block of multihash h.
func whole(path string, h mh.Multihash) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	d, err := mh.Decode(h)
	if err != nil {
		return false
	}
	got, err := mh.Sum(b, d.Code, d.Length)
	return err == nil && bytes.Equal(got, h)
}

func touchFile(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	now := time.Now()
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chtimes(path, now, now)
}

// Close makes every write durable and removes the dirty marker: the next
// Open checks nothing.
func (f *flat) Close() error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(f.dir, dirtyName)); err != nil {
		return err
	}
	return syncDir(f.dir)
}

// Sync makes every block written before it durable, then records that in
// the dirty marker's time.
func (f *flat) Sync() error {
	start := time.Now()
	if !f.dirty.Swap(false) {
		return nil // nothing to make durable: no syncfs of the file system
	}
	f.mu.Lock()
	written := f.written
	f.written = nil
	f.mu.Unlock()
	if err := syncAll(f.dir, written); err != nil {
		return fmt.Errorf("data store: sync: %w", err)
	}
	// Lost in a crash, the new time only makes the next Open check more.
	return os.Chtimes(filepath.Join(f.dir, dirtyName), start, start)
}

// path names c's block file and its shard directory.
func (f *flat) path(h mh.Multihash) (file, shard string) {
	name := b32.EncodeToString(h)
	shard = filepath.Join(f.dir, name[len(name)-3:len(name)-1])
	return filepath.Join(shard, name+".data"), shard
}

func (f *flat) Has(_ context.Context, c cid.Cid) (bool, error) {
	p, _ := f.path(c.Hash())
	_, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (f *flat) Get(_ context.Context, c cid.Cid) (blocks.Block, error) {
	p, _ := f.path(c.Hash())
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	if err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(b, c)
}

func (f *flat) GetSize(_ context.Context, c cid.Cid) (int, error) {
	p, _ := f.path(c.Hash())
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, ipld.ErrNotFound{Cid: c}
	}
	if err != nil {
		return -1, err
	}
	return int(fi.Size()), nil
}

func (f *flat) Put(ctx context.Context, blk blocks.Block) error {
	return f.PutMany(ctx, []blocks.Block{blk})
}

func (f *flat) PutMany(_ context.Context, blks []blocks.Block) error {
	for _, blk := range blks {
		if err := f.put(blk); err != nil {
			return fmt.Errorf("data store: %s: %w", blk.Cid(), err)
		}
	}
	return nil
}

func (f *flat) put(blk blocks.Block) error {
	p, shard := f.path(blk.Cid().Hash())
	if _, ok := f.shards.Load(shard); !ok {
		if err := os.MkdirAll(shard, 0o700); err != nil {
			return err
		}
		f.shards.Store(shard, true)
	}
	tmp, err := os.CreateTemp(shard, tmpPrefix+"*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(blk.RawData())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if !syncfs {
		f.mu.Lock()
		f.written = append(f.written, p)
		f.mu.Unlock()
	}
	f.dirty.Store(true) // after the write, so that a Sync that misses it leaves it to the next
	return nil
}

func (f *flat) DeleteBlock(_ context.Context, c cid.Cid) error {
	p, _ := f.path(c.Hash())
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// AllKeysChan sends the CIDs of the blocks held, as raw CIDs (a block file
// knows its multihash, not its codec), as boxo's blockstore does.
func (f *flat) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	out := make(chan cid.Cid)
	go func() {
		defer close(out)
		f.scan(false, func(_ string, h mh.Multihash, _ fs.FileInfo) error {
			select {
			case out <- cid.NewCidV1(cid.Raw, h):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return out, nil
}

// HashOnRead is a no-op: the store checks reads where it needs to
// (blockstore.ValidatingBlockstore).
func (f *flat) HashOnRead(bool) {}

// scan calls fn with every block file, its multihash and its details.
// With clean, when no write is under way, it removes the temporary files
// of writes a stop cut short.
func (f *flat) scan(clean bool, fn func(path string, h mh.Multihash, fi fs.FileInfo) error) error {
	shards, err := os.ReadDir(f.dir)
	if err != nil {
		return err
	}
	for _, sh := range shards {
		if !sh.IsDir() || len(sh.Name()) != 2 {
			continue
		}
		dir := filepath.Join(f.dir, sh.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				if clean {
					os.Remove(p)
				}
				continue
			}
			name, ok := strings.CutSuffix(e.Name(), ".data")
			if !ok || !e.Type().IsRegular() {
				continue
			}
			b, err := b32.DecodeString(name)
			if err != nil {
				continue
			}
			h, err := mh.Cast(b)
			if err != nil {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			if err := fn(p, h, fi); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncDir makes a directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
