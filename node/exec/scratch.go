package exec

import (
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

const (
	// entryOverhead is what each file or directory costs against the
	// scratch cap, on top of its name and contents: roughly what it costs
	// the host, so that empty files are not free.
	entryOverhead = 64
	// maxNameLen is the longest name of one file or directory, as on most
	// host filesystems.
	maxNameLen = 255
)

// memFS is the scratch area: an in-memory, writable experimentalsys.FS capped
// at limit bytes (see the package doc for what counts). It has no symbolic or
// hard links, and all its timestamps are zero unless the guest sets them, so
// that nothing of the host leaks in. It is safe for concurrent use.
type memFS struct {
	experimentalsys.UnimplementedFS // Link, Symlink, Readlink: ENOSYS

	readOnly bool // every change fails with EROFS

	mu      sync.Mutex
	root    *inode
	limit   uint64
	used    uint64
	full    bool // a write was refused for lack of room
	lastIno uint64
}

// inode is a file or a directory of a memFS.
type inode struct {
	ino     uint64
	dir     bool
	perm    fs.FileMode
	data    []byte            // a file's contents
	entries map[string]*inode // a directory's children
	linked  bool              // reachable from the root
	opens   int               // open memFiles
	cost    uint64            // charged for the entry itself: overhead and name
	atim    int64
	mtim    int64
}

func newMemFS(limit uint64) *memFS {
	f := &memFS{limit: limit}
	f.root = f.newInode(true, 0o755)
	f.root.linked = true
	return f
}

func (f *memFS) newInode(dir bool, perm fs.FileMode) *inode {
	f.lastIno++
	n := &inode{ino: f.lastIno, dir: dir, perm: perm & fs.ModePerm}
	if dir {
		n.entries = make(map[string]*inode)
	}
	return n
}

// charge takes delta bytes of the cap, or marks the area full and fails.
func (f *memFS) charge(delta uint64) bool {
	if f.used+delta < f.used || f.used+delta > f.limit {
		f.full = true
		return false
	}
	f.used += delta
	return true
}

// release frees n once no name and no open file refers to it.
func (f *memFS) release(n *inode) {
	if n.linked || n.opens > 0 {
		return
	}
	f.used -= n.cost + uint64(len(n.data))
	n.cost, n.data = 0, nil
}

// resize sets the length of a file's contents, charging or refunding the
// difference; bytes past the old end read as zero.
func (f *memFS) resize(n *inode, size uint64) experimentalsys.Errno {
	old := uint64(len(n.data))
	switch {
	case size > old:
		if !f.charge(size - old) {
			return experimentalsys.EIO // wazero's errnos have no ENOSPC
		}
		if size <= uint64(cap(n.data)) {
			n.data = n.data[:size]
			clear(n.data[old:])
		} else {
			data := make([]byte, size, max(size, min(2*old, f.limit)))
			copy(data, n.data)
			n.data = data
		}
	case size < old:
		f.used -= old - size
		n.data = n.data[:size]
	}
	return 0
}

// split cleans a path relative to the root of the FS, as wazero passes them
// ("a/b", "a/b/", ".", or "/a/b" when joined to a directory opened at ".").
func split(p string) (parts []string, trailingSlash bool, errno experimentalsys.Errno) {
	trailingSlash = strings.HasSuffix(p, "/")
	p = path.Clean("/" + p)[1:]
	if p == "" {
		return nil, trailingSlash, 0
	}
	parts = strings.Split(p, "/")
	for _, name := range parts {
		if len(name) > maxNameLen {
			return nil, false, experimentalsys.ENAMETOOLONG
		}
	}
	return parts, trailingSlash, 0
}

// lookup returns the inode at parts.
func (f *memFS) lookup(parts []string) (*inode, experimentalsys.Errno) {
	n := f.root
	for _, name := range parts {
		if !n.dir {
			return nil, experimentalsys.ENOTDIR
		}
		if n = n.entries[name]; n == nil {
			return nil, experimentalsys.ENOENT
		}
	}
	return n, 0
}

// parent returns the directory holding the last element of parts, which
// must not be empty, and that element's name.
func (f *memFS) parent(parts []string) (*inode, string, experimentalsys.Errno) {
	dir, errno := f.lookup(parts[:len(parts)-1])
	if errno != 0 {
		return nil, "", errno
	}
	if !dir.dir {
		return nil, "", experimentalsys.ENOTDIR
	}
	return dir, parts[len(parts)-1], 0
}

// OpenFile implements experimentalsys.FS.
func (f *memFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	parts, slash, errno := split(p)
	if errno != 0 {
		return nil, errno
	}
	access := flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY)
	write := access != experimentalsys.O_RDONLY

	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.root
	if len(parts) > 0 {
		dir, name, errno := f.parent(parts)
		if errno != 0 {
			return nil, errno
		}
		n = dir.entries[name]
		switch {
		case n == nil && flag&experimentalsys.O_CREAT == 0:
			return nil, experimentalsys.ENOENT
		case n == nil && f.readOnly:
			return nil, experimentalsys.EROFS
		case n == nil:
			if slash || flag&experimentalsys.O_DIRECTORY != 0 {
				return nil, experimentalsys.EISDIR
			}
			cost := uint64(entryOverhead + len(name))
			if !f.charge(cost) {
				return nil, experimentalsys.EIO
			}
			n = f.newInode(false, perm)
			n.cost, n.linked = cost, true
			dir.entries[name] = n
		case flag&experimentalsys.O_CREAT != 0 && flag&experimentalsys.O_EXCL != 0:
			return nil, experimentalsys.EEXIST
		}
	}
	if n.dir {
		if write {
			return nil, experimentalsys.EISDIR
		}
	} else {
		if write && f.readOnly {
			return nil, experimentalsys.EROFS
		}
		if slash || flag&experimentalsys.O_DIRECTORY != 0 {
			return nil, experimentalsys.ENOTDIR
		}
		if write && flag&experimentalsys.O_TRUNC != 0 {
			f.resize(n, 0) // shrinking cannot fail
		}
	}
	n.opens++
	return &memFile{
		fs:     f,
		n:      n,
		read:   access != experimentalsys.O_WRONLY,
		write:  write,
		append: flag&experimentalsys.O_APPEND != 0,
	}, 0
}

// Lstat implements experimentalsys.FS; there are no symbolic links.
func (f *memFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	return f.Stat(p)
}

// Stat implements experimentalsys.FS.
func (f *memFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	parts, slash, errno := split(p)
	if errno != 0 {
		return sys.Stat_t{}, errno
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, errno := f.lookup(parts)
	if errno != 0 {
		return sys.Stat_t{}, errno
	}
	if slash && !n.dir {
		return sys.Stat_t{}, experimentalsys.ENOTDIR
	}
	return n.stat(), 0
}

func (n *inode) stat() sys.Stat_t {
	st := sys.Stat_t{Ino: n.ino, Mode: n.perm, Nlink: 1, Size: int64(len(n.data)), Atim: n.atim, Mtim: n.mtim}
	if n.dir {
		st.Mode |= fs.ModeDir
		st.Nlink = 2
	}
	return st
}

// Mkdir implements experimentalsys.FS.
func (f *memFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	parts, _, errno := split(p)
	if errno != 0 {
		return errno
	}
	if len(parts) == 0 {
		return experimentalsys.EEXIST
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, name, errno := f.parent(parts)
	if errno != 0 {
		return errno
	}
	if dir.entries[name] != nil {
		return experimentalsys.EEXIST
	}
	cost := uint64(entryOverhead + len(name))
	if !f.charge(cost) {
		return experimentalsys.EIO
	}
	n := f.newInode(true, perm)
	n.cost, n.linked = cost, true
	dir.entries[name] = n
	return 0
}

// Chmod implements experimentalsys.FS.
func (f *memFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	parts, _, errno := split(p)
	if errno != 0 {
		return errno
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, errno := f.lookup(parts)
	if errno != 0 {
		return errno
	}
	n.perm = perm & fs.ModePerm
	return 0
}

// Rename implements experimentalsys.FS.
func (f *memFS) Rename(from, to string) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	src, _, errno := split(from)
	if errno != 0 {
		return errno
	}
	dst, _, errno := split(to)
	if errno != 0 {
		return errno
	}
	if len(src) == 0 || len(dst) == 0 {
		return experimentalsys.EINVAL // the root stays where it is
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	srcDir, srcName, errno := f.parent(src)
	if errno != 0 {
		return errno
	}
	n := srcDir.entries[srcName]
	if n == nil {
		return experimentalsys.ENOENT
	}
	dstDir, dstName, errno := f.parent(dst)
	if errno != 0 {
		return errno
	}
	old := dstDir.entries[dstName]
	switch {
	case old == n:
		return 0
	case n.dir && len(dst) > len(src) && slices.Equal(dst[:len(src)], src):
		return experimentalsys.EINVAL // into itself
	case old != nil && n.dir && !old.dir:
		return experimentalsys.ENOTDIR
	case old != nil && !n.dir && old.dir:
		return experimentalsys.EISDIR
	case old != nil && old.dir && len(old.entries) > 0:
		return experimentalsys.ENOTEMPTY
	}
	cost := uint64(entryOverhead + len(dstName))
	if cost > n.cost && !f.charge(cost-n.cost) {
		return experimentalsys.EIO
	}
	if cost < n.cost {
		f.used -= n.cost - cost
	}
	n.cost = cost
	delete(srcDir.entries, srcName)
	dstDir.entries[dstName] = n
	if old != nil {
		old.linked = false
		f.release(old)
	}
	return 0
}

// Rmdir implements experimentalsys.FS.
func (f *memFS) Rmdir(p string) experimentalsys.Errno {
	return f.remove(p, true)
}

// Unlink implements experimentalsys.FS.
func (f *memFS) Unlink(p string) experimentalsys.Errno {
	return f.remove(p, false)
}

func (f *memFS) remove(p string, dir bool) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	parts, _, errno := split(p)
	if errno != 0 {
		return errno
	}
	if len(parts) == 0 {
		if dir {
			return experimentalsys.EINVAL
		}
		return experimentalsys.EISDIR
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	parent, name, errno := f.parent(parts)
	if errno != 0 {
		return errno
	}
	n := parent.entries[name]
	switch {
	case n == nil:
		return experimentalsys.ENOENT
	case dir && !n.dir:
		return experimentalsys.ENOTDIR
	case !dir && n.dir:
		return experimentalsys.EISDIR
	case dir && len(n.entries) > 0:
		return experimentalsys.ENOTEMPTY
	}
	delete(parent.entries, name)
	n.linked = false
	f.release(n)
	return 0
}

// Utimens implements experimentalsys.FS.
func (f *memFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if f.readOnly {
		return experimentalsys.EROFS
	}
	parts, _, errno := split(p)
	if errno != 0 {
		return errno
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, errno := f.lookup(parts)
	if errno != 0 {
		return errno
	}
	n.utimens(atim, mtim)
	return 0
}

func (n *inode) utimens(atim, mtim int64) {
	if atim != experimentalsys.UTIME_OMIT {
		n.atim = atim
	}
	if mtim != experimentalsys.UTIME_OMIT {
		n.mtim = mtim
	}
}

// files returns the regular files reachable from the root, sorted by path
// bytes. The returned Data alias the FS: it must no longer be written.
func (f *memFS) files() []File {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []File
	var walk func(prefix string, dir *inode)
	walk = func(prefix string, dir *inode) {
		for name, n := range dir.entries {
			if n.dir {
				walk(prefix+name+"/", n)
			} else {
				out = append(out, File{Path: prefix + name, Data: n.data})
			}
		}
	}
	walk("", f.root)
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// memFile is an open file or directory of a memFS.
type memFile struct {
	experimentalsys.UnimplementedFile

	fs      *memFS
	n       *inode
	read    bool
	write   bool
	append  bool
	closed  bool
	pos     int64                    // a file's offset
	dirents []experimentalsys.Dirent // a directory's listing, nil until read
}

func (f *memFile) Ino() (sys.Inode, experimentalsys.Errno) { return f.n.ino, 0 }
func (f *memFile) IsDir() (bool, experimentalsys.Errno)    { return f.n.dir, 0 }
func (f *memFile) IsAppend() bool                          { return f.append }

func (f *memFile) SetAppend(enable bool) experimentalsys.Errno {
	if f.n.dir {
		return experimentalsys.EISDIR
	}
	f.append = enable
	return 0
}

func (f *memFile) Stat() (sys.Stat_t, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.n.stat(), 0
}

func (f *memFile) Read(buf []byte) (int, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, errno := f.readAt(buf, f.pos)
	f.pos += int64(n)
	return n, errno
}

func (f *memFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.readAt(buf, off)
}

func (f *memFile) readAt(buf []byte, off int64) (int, experimentalsys.Errno) {
	switch {
	case f.n.dir:
		return 0, experimentalsys.EISDIR
	case !f.read:
		return 0, experimentalsys.EBADF
	case off >= int64(len(f.n.data)):
		return 0, 0 // end of file
	}
	return copy(buf, f.n.data[off:]), 0
}

func (f *memFile) Write(buf []byte) (int, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.append {
		f.pos = int64(len(f.n.data))
	}
	n, errno := f.writeAt(buf, f.pos)
	f.pos += int64(n)
	return n, errno
}

func (f *memFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.writeAt(buf, off)
}

func (f *memFile) writeAt(buf []byte, off int64) (int, experimentalsys.Errno) {
	switch {
	case f.n.dir:
		return 0, experimentalsys.EISDIR
	case !f.write:
		return 0, experimentalsys.EBADF
	case len(buf) == 0:
		return 0, 0
	}
	end := uint64(off) + uint64(len(buf))
	if end > uint64(len(f.n.data)) {
		if errno := f.fs.resize(f.n, end); errno != 0 {
			return 0, errno
		}
	}
	return copy(f.n.data[off:], buf), 0
}

// fileOffset is int64 under another name, only so that go vet's stdmethods
// check does not take Seek below for a broken io.Seeker: experimentalsys.File
// wants it to return an Errno, not an error.
type fileOffset = int64

func (f *memFile) Seek(offset fileOffset, whence int) (int64, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.n.dir {
		// Only a rewind, which fd_readdir uses to list a directory again.
		if offset != 0 || whence != io.SeekStart {
			return 0, experimentalsys.EINVAL
		}
		f.dirents = nil
		return 0, 0
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.pos
	case io.SeekEnd:
		base = int64(len(f.n.data))
	default:
		return 0, experimentalsys.EINVAL
	}
	if base+offset < 0 {
		return 0, experimentalsys.EINVAL
	}
	f.pos = base + offset
	return f.pos, 0
}

func (f *memFile) Readdir(count int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if !f.n.dir {
		return nil, experimentalsys.EBADF
	}
	if f.dirents == nil {
		// Snapshot the listing, sorted so that guests list in one order.
		names := make([]string, 0, len(f.n.entries))
		for name := range f.n.entries {
			names = append(names, name)
		}
		slices.Sort(names)
		f.dirents = make([]experimentalsys.Dirent, 0, len(names))
		for _, name := range names {
			n := f.n.entries[name]
			d := experimentalsys.Dirent{Ino: n.ino, Name: name}
			if n.dir {
				d.Type = fs.ModeDir
			}
			f.dirents = append(f.dirents, d)
		}
	}
	if count <= 0 || count > len(f.dirents) {
		count = len(f.dirents)
	}
	out := f.dirents[:count:count]
	f.dirents = f.dirents[count:]
	return out, 0
}

func (f *memFile) Truncate(size int64) experimentalsys.Errno {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	switch {
	case f.n.dir:
		return experimentalsys.EISDIR
	case !f.write:
		return experimentalsys.EBADF
	case size < 0:
		return experimentalsys.EINVAL
	}
	return f.fs.resize(f.n, uint64(size))
}

func (f *memFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.n.utimens(atim, mtim)
	return 0
}

func (f *memFile) Close() experimentalsys.Errno {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0
	}
	f.closed = true
	f.n.opens--
	f.fs.release(f.n)
	return 0
}
