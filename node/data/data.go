// Package data is the node's room for content-addressed data: files and
// directories kept as UnixFS DAGs with CIDv1 roots, in the form the IPFS
// ecosystem reads, their blocks on disk under the data dir, one file per
// block (flat), exportable as CAR files. It is built from the field's
// libraries (boxo's importer, DAG service and UnixFS reader, go-car), with
// the parameters of `ipfs add --cid-version=1`: 256 KiB chunks, raw leaves,
// a balanced layout, sha2-256. So a file or directory added here has the CID
// kubo gives it, and a single-chunk file's CID is the raw CID of its bytes,
// as everywhere else in cuivre.
//
// A job's inputs are DAGs of the store seen as an io/fs.FS (FS), bounded
// first by a walk (Stat with Limits: bytes, entries, depth); its outputs,
// paths of an io/fs.FS, come back as one UnixFS directory (AddFS).
//
// Pins, quota and GC. A root is pinned by owners (lease IDs, say), each pin
// kept in a bbolt file beside the blocks, so that pins survive a restart.
// Adding (AddReader, AddPath, AddFS, ImportCAR), unpinning or touching
// (Touch, after a fetch) records a root as recent. GC, a mark and sweep,
// deletes every block that is not in the DAG of a pinned root or of a root
// recent within Options.Keep (an hour by default). Adds in progress hold no
// lock against it: every block written, or written again as an add relies on
// it, counts as live for Keep and for as long as an add that began before it
// is still under way, so that GC never takes a block from under an add.
// Options.Quota bounds the disk the blocks take (Used); a write that would
// pass it runs GC first, then is refused with ErrFull, losing nothing held;
// what a refused add wrote already goes at a later GC.
//
// A Store is safe for concurrent use; it holds no goroutine of its own.
package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunk "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/files"
	"github.com/ipfs/boxo/ipld/merkledag"
	unixfile "github.com/ipfs/boxo/ipld/unixfs/file"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	carbs "github.com/ipld/go-car/v2/blockstore"
	"github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"

	"github.com/cuivre/cuivre/protocol"
)

// ChunkSize is the size of a file's leaves: kubo's default.
const ChunkSize = 256 << 10

// prefix is how every node of a DAG is named: CIDv1, sha2-256.
var prefix = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}

// Store keeps DAGs' blocks on disk.
type Store struct {
	meta *records // pins and recent roots
	// flat holds the blocks; read from it directly, they are not hashed:
	// for serving them to a peer, which checks every block against its CID
	// itself (SPEC 6.6).
	flat *flat
	raw  blockstore.Blockstore // flat, every read checked; unaccounted: GC's sweep
	bs   blockstore.Blockstore // raw, with the quota and accounting of writes
	dag  ipld.DAGService
	opt  Options

	gcMu sync.Mutex // one GC at a time

	mu     sync.Mutex           // the fields below, every block write, the recent roots
	used   uint64               // bytes the blocks held take (footprint)
	fresh  map[string]time.Time // multihash → last write (or rewrite) of its block
	active map[uint64]time.Time // adds in progress → when each began
	nextID uint64
	// pruneAt is how many fresh blocks make a write prune them.
	pruneAt int
}

// Options tune a Store.
type Options struct {
	// Quota bounds the bytes of blocks held; 0 is unlimited. A write that
	// would pass it runs GC first, then is refused with ErrFull.
	Quota uint64
	// Keep is how long unpinned content stays after its last add, unpin or
	// Touch, and how long a block written stays whatever links to it;
	// 0 is an hour.
	Keep time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// DefaultKeep is Options.Keep's default.
const DefaultKeep = time.Hour

// Open opens (creating it if needed) the store in dir, with default options.
func Open(dir string) (*Store, error) { return OpenWith(dir, Options{}) }

// done ends an operation that wrote the DAG under root: the root is
// recorded as recent, and everything written is made durable, blocks
// before the record that names them.
func (s *Store) done(ctx context.Context, root cid.Cid) error {
	if err := s.flat.Sync(); err != nil {
		return err
	}
	return s.touch(ctx, root) // durable when it returns
}

// OpenWith opens (creating it if needed) the store in dir.
func OpenWith(dir string, o Options) (*Store, error) {
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data store: %w", err)
	}
	fl, used, err := openFiles(filepath.Join(dir, "blocks"))
	if err != nil {
		return nil, fmt.Errorf("data store %s: %w", dir, err)
	}
	meta, err := openRecords(filepath.Join(dir, "records.db"))
	if err != nil {
		fl.Close()
		return nil, fmt.Errorf("data store %s: %w", dir, err)
	}
	// A block read back is checked against its CID, so that a damaged disk
	// is an error, never wrong bytes handed on.
	raw := &blockstore.ValidatingBlockstore{Blockstore: fl}
	s := &Store{meta: meta, flat: fl, raw: raw, used: used, opt: o, fresh: map[string]time.Time{}, active: map[uint64]time.Time{}, pruneAt: minPruneAt}
	s.bs = &accounted{Blockstore: raw, s: s}
	// Every write reaches s.bs, even of a block already held, so that it
	// counts as fresh for GC.
	s.dag = merkledag.NewDAGService(blockservice.New(s.bs, nil, blockservice.WriteThrough(true)))
	return s, nil
}

// Close closes the store; the next Open checks nothing.
func (s *Store) Close() error {
	return errors.Join(s.flat.Close(), s.meta.Close())
}

// Blockstore returns the store's blocks, for an exchange to serve and fill.
func (s *Store) Blockstore() blockstore.Blockstore { return s.bs }

// Has reports whether the store holds c's root block.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) { return s.bs.Has(ctx, c) }

// AddReader adds the bytes of r as a UnixFS file and returns its root.
func (s *Store) AddReader(ctx context.Context, r io.Reader) (cid.Cid, error) {
	defer s.begin()()
	nd, err := s.addFile(r)
	if err != nil {
		return cid.Undef, err
	}
	return nd.Cid(), s.done(ctx, nd.Cid())
}

func (s *Store) addFile(r io.Reader) (ipld.Node, error) {
	params := helpers.DagBuilderParams{
		Dagserv: s.dag, RawLeaves: true, Maxlinks: helpers.DefaultLinksPerBlock, CidBuilder: prefix,
	}
	db, err := params.New(chunk.NewSizeSplitter(r, ChunkSize))
	if err != nil {
		return nil, err
	}
	return balanced.Layout(db)
}

// AddPath adds a regular file or a directory (recursively) and returns its
// root. It follows no symbolic link and refuses anything that is not a
// regular file or a directory (a device, a pipe, a socket, a link), so that
// what is added is what the path holds.
func (s *Store) AddPath(ctx context.Context, path string) (cid.Cid, error) {
	defer s.begin()()
	nd, err := s.addPath(ctx, path)
	if err != nil {
		return cid.Undef, err
	}
	return nd.Cid(), s.done(ctx, nd.Cid())
}

func (s *Store) addPath(ctx context.Context, path string) (ipld.Node, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		nd, err := s.addFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nd, nil
	case fi.IsDir():
		entries, err := os.ReadDir(path) // sorted by name
		if err != nil {
			return nil, err
		}
		dir, err := uio.NewDirectory(s.dag)
		if err != nil {
			return nil, err
		}
		dir.SetCidBuilder(prefix)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			child, err := s.addPath(ctx, filepath.Join(path, e.Name()))
			if err != nil {
				return nil, err
			}
			if err := dir.AddChild(ctx, e.Name(), child); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		nd, err := dir.GetNode()
		if err != nil {
			return nil, err
		}
		return nd, s.dag.Add(ctx, nd)
	}
	return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
}

// ErrNotRegular is what AddPath says of a path that is neither a regular file
// nor a directory.
var ErrNotRegular = errors.New("neither a regular file nor a directory")

// Get writes the file or directory rooted at c to path, which must not exist.
// Every block is read through the store, which checks it against its CID.
func (s *Store) Get(ctx context.Context, c cid.Cid, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s exists: give a path to create", path)
	}
	nd, err := s.dag.Get(ctx, c)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	f, err := unixfile.NewUnixfsFile(ctx, s.dag, nd)
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	defer f.Close()
	return files.WriteTo(f, path)
}

// walk calls fn with every block of the DAG rooted at c, each once, parents
// before children.
func (s *Store) walk(ctx context.Context, c cid.Cid, fn func(blocks.Block) error) error {
	seen := cid.NewSet()
	var visit func(c cid.Cid) error
	visit = func(c cid.Cid) error {
		if !seen.Visit(c) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		blk, err := s.bs.Get(ctx, c)
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		if err := fn(blk); err != nil {
			return err
		}
		if c.Type() == cid.Raw {
			return nil
		}
		links, err := linksOf(blk)
		if err != nil {
			return err
		}
		for _, l := range links {
			if err := visit(l); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(c)
}

// WriteCAR exports the DAG rooted at c as a CARv2 file at path (c its root),
// each block once, for standard tools to open.
func (s *Store) WriteCAR(ctx context.Context, c cid.Cid, path string) error {
	car, err := carbs.OpenReadWrite(path, []cid.Cid{c})
	if err != nil {
		return err
	}
	if err := s.walk(ctx, c, func(blk blocks.Block) error { return car.Put(ctx, blk) }); err != nil {
		car.Discard()
		os.Remove(path)
		return err
	}
	return car.Finalize()
}

// ExportCAR streams the DAG rooted at c to w as a CARv1 (c its root), each
// block once, parents first: the form a DAG travels in between a CLI and its
// daemon.
func (s *Store) ExportCAR(ctx context.Context, c cid.Cid, w io.Writer) error {
	if ok, err := s.bs.Has(ctx, c); err != nil || !ok {
		return fmt.Errorf("%s: %w", c, ErrNotFound)
	}
	car, err := storage.NewWritable(w, []cid.Cid{c}, carv2.WriteAsCarV1(true))
	if err != nil {
		return err
	}
	if err := s.walk(ctx, c, func(blk blocks.Block) error { return car.Put(ctx, blk.Cid().KeyString(), blk.RawData()) }); err != nil {
		return err
	}
	return car.Finalize()
}

// ErrNotFound is what the store says of a root it does not hold.
var ErrNotFound = errors.New("not held here")

// ImportCAR reads a CAR of one root from r, at most max bytes of it, checks
// every block against its CID as it comes, keeps them, and checks that the
// DAG is whole. It returns the root. A CAR that breaks off, lies about a
// block, holds more than max bytes or misses a block is refused; the blocks
// already kept stay (they are verified, and another import may complete them).
func (s *Store) ImportCAR(ctx context.Context, r io.Reader, max int64) (cid.Cid, error) {
	defer s.begin()()
	lr := &limited{r: r, left: max}
	br, err := carv2.NewBlockReader(lr, carv2.MaxAllowedSectionSize(protocol.MaxBlock))
	if err != nil {
		return cid.Undef, fmt.Errorf("CAR: %w", lr.or(err))
	}
	if len(br.Roots) != 1 {
		return cid.Undef, fmt.Errorf("CAR: %d roots, want one", len(br.Roots))
	}
	for {
		blk, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return cid.Undef, fmt.Errorf("CAR: %w", lr.or(err))
		}
		if err := s.bs.Put(ctx, blk); err != nil {
			return cid.Undef, err
		}
	}
	root := br.Roots[0]
	if err := s.walk(ctx, root, func(blocks.Block) error { return nil }); err != nil {
		return cid.Undef, fmt.Errorf("CAR: the DAG of %s is not whole: %w", root, err)
	}
	return root, s.done(ctx, root)
}

// ErrTooLarge is what ImportCAR says of a CAR over its limit, and Stat of a
// DAG over its Limits.
var ErrTooLarge = errors.New("over the size limit")

// limited reads at most left bytes of r, and remembers it was cut.
type limited struct {
	r    io.Reader
	left int64
	cut  bool
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		l.cut = true
		return 0, ErrTooLarge
	}
	n, err := l.r.Read(p[:min(int64(len(p)), l.left)])
	l.left -= int64(n)
	return n, err
}

// or is ErrTooLarge if the reader was cut, err otherwise.
func (l *limited) or(err error) error {
	if l.cut {
		return ErrTooLarge
	}
	return err
}

// decodeNode decodes a dag-pb block, the only codec but raw in a UnixFS DAG.
func decodeNode(blk blocks.Block) (ipld.Node, error) {
	return merkledag.DecodeProtobufBlock(blk)
}
