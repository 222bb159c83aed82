package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// The read-only io/fs view of a DAG, as a job's input is mounted, and the
// walk that bounds a DAG before anything is mounted or copied.

// ErrNotFileOrDir is what the store says of a node that is neither a UnixFS
// file nor a directory (a symbolic link, metadata, another codec).
var ErrNotFileOrDir = errors.New("neither a UnixFS file nor a directory")

// ErrBadName is what the store says of a directory entry whose name is not a
// plain file name: empty, ".", "..", or holding "/" or NUL.
var ErrBadName = errors.New("not a valid entry name")

// validName reports whether name is a plain file name, valid in io/fs.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// kind is what a node is: file or directory, and a file's size.
type kind struct {
	dir  bool
	size uint64
}

// kindOf tells a file from a directory and refuses anything else.
func kindOf(nd ipld.Node) (kind, error) {
	switch nd := nd.(type) {
	case *merkledag.RawNode:
		return kind{size: uint64(len(nd.RawData()))}, nil
	case *merkledag.ProtoNode:
		fsn, err := unixfs.FSNodeFromBytes(nd.Data())
		if err != nil {
			return kind{}, fmt.Errorf("%s: %w", nd.Cid(), err)
		}
		switch fsn.Type() {
		case unixfs.TFile, unixfs.TRaw:
			return kind{size: fsn.FileSize()}, nil
		case unixfs.TDirectory, unixfs.THAMTShard:
			return kind{dir: true}, nil
		}
		return kind{}, fmt.Errorf("%s: a UnixFS %s: %w", nd.Cid(), fsn.Type(), ErrNotFileOrDir)
	}
	return kind{}, fmt.Errorf("%s: %w", nd.Cid(), ErrNotFileOrDir)
}

// FS is a read-only view of the UnixFS DAG rooted at root, which the store
// must hold (ErrNotFound otherwise): "." is root, a regular file or a
// directory. Every read goes to the store under ctx and is checked against
// its CID. Entries are listed sorted by name; a directory with an entry that
// is not a file or a directory, or whose name is not a plain file name (".."
// above all) cannot be listed, nor such an entry opened. Files are read-only
// (mode 0444), directories 0555, times zero. Run Stat with Limits on a DAG
// from elsewhere before handing its FS on.
func (s *Store) FS(ctx context.Context, root cid.Cid) (fs.FS, error) {
	nd, err := s.dag.Get(ctx, root)
	if ipld.IsNotFound(err) {
		return nil, fmt.Errorf("%s: %w", root, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", root, err)
	}
	k, err := kindOf(nd)
	if err != nil {
		return nil, err
	}
	return &dagFS{ctx: ctx, s: s, root: nd, kind: k}, nil
}

type dagFS struct {
	ctx  context.Context
	s    *Store
	root ipld.Node
	kind kind
}

var (
	_ fs.StatFS    = (*dagFS)(nil)
	_ fs.ReadDirFS = (*dagFS)(nil)
)

// lookup finds the node at name, and what it is.
func (f *dagFS) lookup(op, name string) (ipld.Node, kind, error) {
	if !fs.ValidPath(name) {
		return nil, kind{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	nd, k := f.root, f.kind
	if name == "." {
		return nd, k, nil
	}
	for elem := range strings.SplitSeq(name, "/") {
		if !validName(elem) {
			return nil, kind{}, &fs.PathError{Op: op, Path: name, Err: ErrBadName}
		}
		if !k.dir {
			return nil, kind{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		dir, err := uio.NewDirectoryFromNode(f.s.dag, nd)
		if err != nil {
			return nil, kind{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		child, err := dir.Find(f.ctx, elem)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, kind{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if err != nil {
			return nil, kind{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		if k, err = kindOf(child); err != nil {
			return nil, kind{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		nd = child
	}
	return nd, k, nil
}

func (f *dagFS) Open(name string) (fs.File, error) {
	nd, k, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	info := &fileInfo{name: path.Base(name), kind: k}
	if k.dir {
		return &dirFile{fsys: f, path: name, nd: nd, info: info}, nil
	}
	dr, err := uio.NewDagReader(f.ctx, nd, f.s.dag)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{path: name, info: info, dr: dr}, nil
}

func (f *dagFS) Stat(name string) (fs.FileInfo, error) {
	_, k, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), kind: k}, nil
}

func (f *dagFS) ReadDir(name string) ([]fs.DirEntry, error) {
	nd, k, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !k.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	entries, err := f.entries(nd)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return entries, nil
}

// entries lists a directory's entries, sorted by name.
func (f *dagFS) entries(nd ipld.Node) ([]fs.DirEntry, error) {
	dir, err := uio.NewDirectoryFromNode(f.s.dag, nd)
	if err != nil {
		return nil, err
	}
	var out []fs.DirEntry
	err = dir.ForEachLink(f.ctx, func(l *ipld.Link) error {
		if !validName(l.Name) {
			return fmt.Errorf("an entry %q: %w", l.Name, ErrBadName)
		}
		child, err := f.s.dag.Get(f.ctx, l.Cid)
		if err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
		k, err := kindOf(child)
		if err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
		out = append(out, fs.FileInfoToDirEntry(&fileInfo{name: l.Name, kind: k}))
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for i := 1; i < len(out); i++ {
		if out[i].Name() == out[i-1].Name() {
			return nil, fmt.Errorf("two entries %q: %w", out[i].Name(), ErrBadName)
		}
	}
	return out, nil
}

type fileInfo struct {
	name string
	kind kind
}

func (i *fileInfo) Name() string { return i.name }
func (i *fileInfo) Size() int64 {
	if i.kind.dir {
		return 0
	}
	return int64(i.kind.size)
}
func (i *fileInfo) Mode() fs.FileMode {
	if i.kind.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i *fileInfo) ModTime() time.Time { return time.Time{} }
func (i *fileInfo) IsDir() bool        { return i.kind.dir }
func (i *fileInfo) Sys() any           { return nil }

// dirFile is an open directory; its entries are listed on the first ReadDir.
type dirFile struct {
	fsys    *dagFS
	path    string
	nd      ipld.Node
	info    *fileInfo
	mu      sync.Mutex
	entries []fs.DirEntry
	listed  bool
	closed  bool
}

var _ fs.ReadDirFile = (*dirFile)(nil)

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errors.New("is a directory")}
}

func (d *dirFile) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.path, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.path, Err: fs.ErrClosed}
	}
	if !d.listed {
		entries, err := d.fsys.entries(d.nd)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: d.path, Err: err}
		}
		d.entries, d.listed = entries, true
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n:n]
	d.entries = d.entries[n:]
	return out, nil
}

// file is an open regular file: a DAG reader under a lock, with the offset
// of Read and Seek kept apart from ReadAt's.
type file struct {
	path   string
	info   *fileInfo
	mu     sync.Mutex
	dr     uio.DagReader
	at     int64 // the reader's offset
	off    int64 // the file's offset, for Read and Seek
	closed bool
}

var (
	_ io.ReaderAt = (*file)(nil)
	_ io.Seeker   = (*file)(nil)
)

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *file) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readAt("read", p, f.off, false)
	f.off += int64(n)
	return n, err
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readAt("read", p, off, true)
}

// readAt reads from off; full asks for all of p (ReadAt's contract) rather
// than what comes (Read's). A DAG that lies about its sizes is an error,
// never a panic.
func (f *file) readAt(op string, p []byte, off int64, full bool) (n int, err error) {
	if f.closed {
		return 0, &fs.PathError{Op: op, Path: f.path, Err: fs.ErrClosed}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: op, Path: f.path, Err: fs.ErrInvalid}
	}
	if off >= int64(f.info.kind.size) {
		if len(p) == 0 && !full {
			return 0, nil
		}
		return 0, io.EOF
	}
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, &fs.PathError{Op: op, Path: f.path, Err: fmt.Errorf("a damaged DAG: %v", r)}
			f.at = -1
		}
	}()
	if f.at != off {
		if _, err := f.dr.Seek(off, io.SeekStart); err != nil {
			f.at = -1
			return 0, &fs.PathError{Op: op, Path: f.path, Err: err}
		}
		f.at = off
	}
	if full {
		n, err = io.ReadFull(f.dr, p)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
	} else {
		n, err = f.dr.Read(p)
	}
	f.at += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		f.at = -1
		err = &fs.PathError{Op: op, Path: f.path, Err: err}
	}
	return n, err
}

func (f *file) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.path, Err: fs.ErrClosed}
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += int64(f.info.kind.size)
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.path, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.path, Err: fs.ErrInvalid}
	}
	f.off = offset
	return offset, nil
}

func (f *file) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.path, Err: fs.ErrClosed}
	}
	f.closed = true
	return f.dr.Close()
}

// Limits bound a DAG walked by Stat; a zero field is its default.
type Limits struct {
	MaxSize    uint64 // bytes of file contents; 0: no limit
	MaxEntries int    // files and directories, the root included; 0: DefaultMaxEntries
	MaxDepth   int    // levels below the root (its entries are at 1); 0: DefaultMaxDepth
}

// Limits' defaults.
const (
	DefaultMaxEntries = 1_000_000
	DefaultMaxDepth   = 64
)

// maxFileDepth bounds the levels of a file's own DAG: far beyond any file a
// balanced or trickle layout makes.
const maxFileDepth = 64

// Stat is what a DAG holds.
type Stat struct {
	Size    uint64 // bytes of file contents
	Entries int    // files and directories, the root included
	Dir     bool   // whether the root is a directory
}

// Stat walks the DAG rooted at root, which the store must hold whole
// (ErrNotFound if it does not hold the root), and says what it holds. It
// stops at the first limit passed with an error wrapping ErrTooLarge,
// without walking the rest; it refuses a node that is neither a file nor a
// directory (ErrNotFileOrDir), an entry name that is not a plain file name
// (ErrBadName) and a file whose sizes disagree with its blocks. It reads
// every block but a file's raw leaves, whose sizes it takes from the store.
func (s *Store) Stat(ctx context.Context, root cid.Cid, lim Limits) (Stat, error) {
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = DefaultMaxEntries
	}
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = DefaultMaxDepth
	}
	if ok, err := s.bs.Has(ctx, root); err != nil || !ok {
		return Stat{}, fmt.Errorf("%s: %w", root, ErrNotFound)
	}
	w := &statWalk{s: s, ctx: ctx, lim: lim}
	dir, err := w.entry(root, 0)
	return Stat{Size: w.size, Entries: w.entries, Dir: dir}, err
}

type statWalk struct {
	s       *Store
	ctx     context.Context
	lim     Limits
	size    uint64
	entries int
}

// entry walks a file or directory at depth, and tells which it was.
func (w *statWalk) entry(c cid.Cid, depth int) (dir bool, err error) {
	if err := w.ctx.Err(); err != nil {
		return false, err
	}
	if w.entries++; w.entries > w.lim.MaxEntries {
		return false, fmt.Errorf("more than %d entries: %w", w.lim.MaxEntries, ErrTooLarge)
	}
	if depth > w.lim.MaxDepth {
		return false, fmt.Errorf("entries deeper than %d: %w", w.lim.MaxDepth, ErrTooLarge)
	}
	if c.Type() == cid.Raw {
		_, err := w.fileSize(c, 0, true)
		return false, err
	}
	nd, err := w.s.dag.Get(w.ctx, c)
	if err != nil {
		return false, fmt.Errorf("%s: %w", c, err)
	}
	k, err := kindOf(nd)
	if err != nil {
		return false, err
	}
	if !k.dir {
		_, err := w.fileSize(c, 0, true)
		return false, err
	}
	d, err := uio.NewDirectoryFromNode(w.s.dag, nd)
	if err != nil {
		return true, fmt.Errorf("%s: %w", c, err)
	}
	names := map[string]bool{}
	err = d.ForEachLink(w.ctx, func(l *ipld.Link) error {
		if !validName(l.Name) {
			return fmt.Errorf("%s: an entry %q: %w", c, l.Name, ErrBadName)
		}
		if names[l.Name] {
			return fmt.Errorf("%s: two entries %q: %w", c, l.Name, ErrBadName)
		}
		names[l.Name] = true
		if _, err := w.entry(l.Cid, depth+1); err != nil {
			return fmt.Errorf("%s/%w", l.Name, err)
		}
		return nil
	})
	return true, err
}

// fileSize returns the bytes of the file node c, checked against its blocks.
// A file's top node counts its declared size towards MaxSize before anything
// below it is read.
func (w *statWalk) fileSize(c cid.Cid, depth int, top bool) (uint64, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if depth > maxFileDepth {
		return 0, fmt.Errorf("%s: a file DAG deeper than %d: %w", c, maxFileDepth, ErrTooLarge)
	}
	if c.Type() == cid.Raw {
		n, err := w.s.bs.GetSize(w.ctx, c)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", c, err)
		}
		if top {
			if err := w.count(uint64(n)); err != nil {
				return 0, err
			}
		}
		return uint64(n), nil
	}
	if c.Type() != cid.DagProtobuf {
		return 0, fmt.Errorf("%s: %w", c, ErrNotFileOrDir)
	}
	nd, err := w.s.dag.Get(w.ctx, c)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", c, err)
	}
	pn, ok := nd.(*merkledag.ProtoNode)
	if !ok {
		return 0, fmt.Errorf("%s: %w", c, ErrNotFileOrDir)
	}
	fsn, err := unixfs.FSNodeFromBytes(pn.Data())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", c, err)
	}
	if t := fsn.Type(); t != unixfs.TFile && t != unixfs.TRaw {
		return 0, fmt.Errorf("%s: a UnixFS %s in a file: %w", c, t, ErrNotFileOrDir)
	}
	declared := fsn.FileSize()
	if top {
		if err := w.count(declared); err != nil {
			return 0, err
		}
	}
	links := pn.Links()
	if len(links) != fsn.NumChildren() {
		return 0, fmt.Errorf("%s: %d links, %d block sizes", c, len(links), fsn.NumChildren())
	}
	sum := uint64(len(fsn.Data()))
	for i, l := range links {
		n, err := w.fileSize(l.Cid, depth+1, false)
		if err != nil {
			return 0, err
		}
		if n != fsn.BlockSize(i) {
			return 0, fmt.Errorf("%s: block %d holds %d bytes, says %d", c, i, n, fsn.BlockSize(i))
		}
		sum += n
	}
	if sum != declared {
		return 0, fmt.Errorf("%s: %d bytes, says %d", c, sum, declared)
	}
	return sum, nil
}

// count adds n bytes of file contents, within MaxSize.
func (w *statWalk) count(n uint64) error {
	w.size += n
	if w.lim.MaxSize > 0 && (w.size > w.lim.MaxSize || w.size < n) {
		return fmt.Errorf("more than %d bytes: %w", w.lim.MaxSize, ErrTooLarge)
	}
	return nil
}
