package exec

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// Scratch is the scratch area a run left: its tree in memory and its files'
// contents on the host's disk, until Close.
type Scratch struct {
	fs *memFS
}

// FS returns a read-only view of the scratch area as the run left it, without
// the run's inputs (their mount points are not listed; the directories made
// on their way are). It implements fs.ReadDirFS and fs.StatFS; its ReadDir
// lists a directory sorted by name, and its files implement io.ReaderAt and
// io.Seeker. Modes are the guest's permissions, modification times its own
// (zero unless it set them). It is safe for concurrent use; once the Scratch
// is closed, Open fails with fs.ErrClosed (files open already read on).
func (s *Scratch) FS() fs.FS { return scratchFS{s.fs} }

// Close removes the scratch area's host files. It is idempotent, and safe
// after the Executor is closed.
func (s *Scratch) Close() error {
	if s == nil {
		return nil
	}
	return s.fs.close()
}

// scratchFS is the fs.FS of Scratch.FS.
type scratchFS struct{ f *memFS }

var (
	_ fs.ReadDirFS = scratchFS{}
	_ fs.StatFS    = scratchFS{}
)

// lookup returns the inode at name, an fs.ValidPath, hiding the inputs. The
// caller holds the lock.
func (s scratchFS) lookup(op, name string) (*inode, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if s.f.closed {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrClosed}
	}
	n := s.f.root
	if name != "." {
		for elem := range strings.SplitSeq(name, "/") {
			if !n.dir {
				return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
			}
			if n = n.entries[elem]; n == nil || n.ro {
				return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
			}
		}
	}
	return n, nil
}

func (s scratchFS) Open(name string) (fs.File, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	n, err := s.lookup("open", name)
	if err != nil {
		return nil, err
	}
	info := s.info(name, n)
	if n.dir {
		return &scratchDir{info: info, entries: s.list(n)}, nil
	}
	var r io.ReaderAt = strings.NewReader("")
	var h *os.File
	if n.onDisk && n.size > 0 {
		if h, err = os.Open(s.f.hostPath(n)); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		r = h
	}
	return &scratchFile{info: info, SectionReader: io.NewSectionReader(r, 0, int64(n.size)), host: h}, nil
}

func (s scratchFS) Stat(name string) (fs.FileInfo, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	n, err := s.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return s.info(name, n), nil
}

func (s scratchFS) ReadDir(name string) ([]fs.DirEntry, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	n, err := s.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	return s.list(n), nil
}

// list returns dir's entries but the inputs, sorted by name.
func (s scratchFS) list(dir *inode) []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(dir.entries))
	for name, n := range dir.entries {
		if !n.ro {
			out = append(out, fs.FileInfoToDirEntry(s.info(name, n)))
		}
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

func (s scratchFS) info(name string, n *inode) fileInfo {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	mode := n.perm
	if n.dir {
		mode |= fs.ModeDir
	}
	return fileInfo{name: name, size: int64(n.size), mode: mode, mtime: time.Unix(0, n.mtim).UTC()}
}

var (
	errNotDir = errors.New("not a directory")
	errIsDir  = errors.New("is a directory")
)

// fileInfo is the fs.FileInfo of a scratch entry.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return i.mtime }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

// scratchFile is an open regular file of a Scratch: a section of its host
// file as long as the file was when opened.
type scratchFile struct {
	info fileInfo
	*io.SectionReader
	host *os.File // nil for an empty file
}

func (f *scratchFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *scratchFile) Close() error {
	if f.host == nil {
		return nil
	}
	err := f.host.Close()
	f.host = nil
	return err
}

// scratchDir is an open directory of a Scratch, listed when opened.
type scratchDir struct {
	info    fileInfo
	entries []fs.DirEntry
	off     int
}

func (d *scratchDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *scratchDir) Close() error               { return nil }

func (d *scratchDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errIsDir}
}

func (d *scratchDir) ReadDir(count int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if count <= 0 {
		d.off = len(d.entries)
		return slices.Clone(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	count = min(count, len(rest))
	d.off += count
	return slices.Clone(rest[:count]), nil
}
