package exec

import (
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

const (
	// EntryCost is what each file or directory costs, on top of its
	// name, against the scratch cap and against the run's memory ceiling:
	// more than the host memory it takes (about 150 bytes, measured by
	// TestEntryMemory), so that empty files are not free.
	EntryCost = 192
	// maxNameLen is the longest name of one file or directory, as on most
	// host filesystems.
	maxNameLen = 255
)

// memFS is the scratch area: a writable experimentalsys.FS capped at limit
// bytes (see the package doc for what counts). Its tree (names, directories,
// inodes) is in memory; the contents of each regular file are in a private
// host file of dir named after its inode number, created on its first byte,
// so no name the guest chooses ever reaches the host. Input trees are grafted
// into it read-only (see mountInput). It has no symbolic or hard links, and
// all its timestamps are zero unless the guest sets them, so that nothing of
// the host leaks in. It is safe for concurrent use.
type memFS struct {
	experimentalsys.UnimplementedFS // Link, Symlink, Readlink: ENOSYS

	readOnly bool     // every change fails with EROFS
	dir      string   // the host directory holding file contents; "" if none
	mem      *ceiling // the run's memory ceiling, charged for entries; nil for none

	mu      sync.Mutex
	root    *inode
	limit   uint64
	used    uint64
	full    bool // a write was refused for lack of room
	lastIno uint64
	open    map[*inode]struct{} // inodes some memFile holds open
	inputs  []*inputFile        // input files, to close at the end
	sealed  bool                // the run ended: no more changes
	closed  bool                // the host files are gone
}

// inode is a file or a directory of a memFS.
type inode struct {
	ino     uint64
	dir     bool
	ro      bool // part of an input: every change fails with EROFS
	perm    fs.FileMode
	size    uint64            // a file's length
	entries map[string]*inode // a directory's children; nil while none
	linked  bool              // reachable from the root
	opens   int               // open memFiles
	cost    uint64            // charged for the entry itself: overhead and name
	atim    int64
	mtim    int64
	onDisk  bool       // a host file holds the contents
	host    *os.File   // that host file, open while memFiles are
	in      *inputFile // an input file's contents, read lazily
}

// newMemFS returns an empty scratch area keeping file contents in dir, which
// must exist and be private to the caller ("" for an area that never holds a
// byte, such as the read-only root).
func newMemFS(dir string, limit uint64) *memFS {
	f := &memFS{dir: dir, limit: limit, open: make(map[*inode]struct{})}
	f.root = f.newInode(true, 0o755)
	f.root.linked = true
	return f
}

func (f *memFS) newInode(dir bool, perm fs.FileMode) *inode {
	f.lastIno++
	return &inode{ino: f.lastIno, dir: dir, perm: perm & fs.ModePerm}
}

// link names child name in the directory n. A directory's map is made with
// its first entry: an empty one costs nothing.
func (n *inode) link(name string, child *inode) {
	if n.entries == nil {
		n.entries = make(map[string]*inode)
	}
	n.entries[name] = child
}

// hostPath is the host file holding n's contents: named by its number only.
func (f *memFS) hostPath(n *inode) string {
	return filepath.Join(f.dir, strconv.FormatUint(n.ino, 10))
}

// hostFile returns the open host file of n, creating it if create is set and
// there is none yet; nil and no error if n has no host file and create is not
// set.
func (f *memFS) hostFile(n *inode, create bool) (*os.File, experimentalsys.Errno) {
	if n.host != nil {
		return n.host, 0
	}
	if !n.onDisk && !create {
		return nil, 0
	}
	if f.dir == "" || f.closed {
		return nil, experimentalsys.EIO
	}
	flag := os.O_RDWR
	if !n.onDisk {
		flag |= os.O_CREATE | os.O_EXCL
	}
	h, err := os.OpenFile(f.hostPath(n), flag, 0o600)
	if err != nil {
		return nil, experimentalsys.EIO
	}
	n.onDisk, n.host = true, h
	return h, 0
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

// release frees n once no name and no open file refers to it, removing its
// host file.
func (f *memFS) release(n *inode) {
	if n.linked || n.opens > 0 {
		return
	}
	f.used -= n.cost + n.size
	if f.mem != nil {
		f.mem.give(n.cost)
	}
	n.cost, n.size = 0, 0
	if n.host != nil {
		_ = n.host.Close()
		n.host = nil
	}
	if n.onDisk {
		_ = os.Remove(f.hostPath(n))
		n.onDisk = false
	}
}

// chargeEntry takes the cost of an entry (EntryCost and its name) from
// the scratch cap and from the run's memory ceiling, which the tree's
// metadata shares with the guest's linear memory.
func (f *memFS) chargeEntry(cost uint64) bool {
	if !f.charge(cost) {
		return false
	}
	if f.mem != nil && !f.mem.take(cost) {
		f.used -= cost
		f.full = true
		return false
	}
	return true
}

// resize sets the length of a file's contents, charging or refunding the
// difference; bytes past the old end read as zero.
func (f *memFS) resize(n *inode, size uint64) experimentalsys.Errno {
	old := n.size
	switch {
	case size > old:
		if !f.charge(size - old) {
			return experimentalsys.EIO // wazero's errnos have no ENOSPC
		}
		h, errno := f.hostFile(n, true)
		if errno == 0 && h.Truncate(int64(size)) != nil {
			errno = experimentalsys.EIO
		}
		if errno != 0 {
			f.used -= size - old
			return errno
		}
	case size < old:
		h, errno := f.hostFile(n, false)
		if errno != 0 {
			return errno
		}
		if h != nil && h.Truncate(int64(size)) != nil {
			return experimentalsys.EIO
		}
		f.used -= old - size
	}
	n.size = size
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
	trunc := flag&experimentalsys.O_TRUNC != 0

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sealed {
		return nil, experimentalsys.EBADF
	}
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
		case n == nil && (f.readOnly || dir.ro):
			return nil, experimentalsys.EROFS
		case n == nil:
			if slash || flag&experimentalsys.O_DIRECTORY != 0 {
				return nil, experimentalsys.EISDIR
			}
			cost := uint64(EntryCost + len(name))
			if !f.chargeEntry(cost) {
				return nil, experimentalsys.EIO
			}
			n = f.newInode(false, perm)
			n.cost, n.linked = cost, true
			dir.link(name, n)
		case flag&experimentalsys.O_CREAT != 0 && flag&experimentalsys.O_EXCL != 0:
			return nil, experimentalsys.EEXIST
		}
	}
	if n.ro && (write || trunc) {
		return nil, experimentalsys.EROFS
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
		if write && trunc {
			if errno := f.resize(n, 0); errno != 0 {
				return nil, errno
			}
		}
	}
	n.opens++
	f.open[n] = struct{}{}
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
	st := sys.Stat_t{Ino: n.ino, Mode: n.perm, Nlink: 1, Size: int64(n.size), Atim: n.atim, Mtim: n.mtim}
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
	if f.sealed {
		return experimentalsys.EROFS
	}
	dir, name, errno := f.parent(parts)
	if errno != 0 {
		return errno
	}
	if dir.entries[name] != nil {
		return experimentalsys.EEXIST
	}
	if dir.ro {
		return experimentalsys.EROFS
	}
	cost := uint64(EntryCost + len(name))
	if !f.chargeEntry(cost) {
		return experimentalsys.EIO
	}
	n := f.newInode(true, perm)
	n.cost, n.linked = cost, true
	dir.link(name, n)
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
	if n.ro || f.sealed {
		return experimentalsys.EROFS
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
	if n.ro || srcDir.ro || dstDir.ro || old != nil && old.ro || f.sealed {
		return experimentalsys.EROFS
	}
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
	cost := uint64(EntryCost + len(dstName))
	if cost > n.cost && !f.chargeEntry(cost-n.cost) {
		return experimentalsys.EIO
	}
	if cost < n.cost {
		f.used -= n.cost - cost
		if f.mem != nil {
			f.mem.give(n.cost - cost)
		}
	}
	n.cost = cost
	delete(srcDir.entries, srcName)
	dstDir.link(dstName, n)
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
	case n.ro || parent.ro || f.sealed:
		return experimentalsys.EROFS
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
	if n.ro || f.sealed {
		return experimentalsys.EROFS
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

// seal ends the guest's use of f: every file it left open is closed (an
// unlinked one loses its host file), and f takes no more changes. Its tree
// and host files stay, for Scratch to read.
func (f *memFS) seal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sealed = true
	for n := range f.open {
		n.opens = 0
		if n.host != nil {
			_ = n.host.Close()
			n.host = nil
		}
		f.release(n)
	}
	clear(f.open)
	for _, in := range f.inputs {
		in.close()
	}
}

// close seals f and removes its host directory with every file in it.
// It is idempotent.
func (f *memFS) close() error {
	f.seal()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || f.dir == "" {
		f.closed = true
		return nil
	}
	f.closed = true
	return os.RemoveAll(f.dir)
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
	case f.closed || f.fs.sealed:
		return 0, experimentalsys.EBADF
	case f.n.dir:
		return 0, experimentalsys.EISDIR
	case !f.read:
		return 0, experimentalsys.EBADF
	case uint64(off) >= f.n.size:
		return 0, 0 // end of file
	}
	buf = buf[:min(uint64(len(buf)), f.n.size-uint64(off))]
	if f.n.in != nil {
		n, err := f.n.in.readAt(buf, off)
		if err != nil {
			return 0, experimentalsys.EIO
		}
		return n, 0
	}
	h, errno := f.fs.hostFile(f.n, false)
	if errno != 0 {
		return 0, errno
	}
	n := 0
	if h != nil {
		var err error
		n, err = h.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return 0, experimentalsys.EIO
		}
	}
	clear(buf[n:]) // cannot happen: the host file is as long as the size
	return len(buf), 0
}

func (f *memFile) Write(buf []byte) (int, experimentalsys.Errno) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.append {
		f.pos = int64(f.n.size)
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
	case f.closed || f.fs.sealed:
		return 0, experimentalsys.EBADF
	case f.n.dir:
		return 0, experimentalsys.EISDIR
	case !f.write:
		return 0, experimentalsys.EBADF
	case len(buf) == 0:
		return 0, 0
	}
	end := uint64(off) + uint64(len(buf))
	old, grow := f.n.size, uint64(0)
	if end > old {
		// The host file grows by the write itself: a hole reads as zeros.
		if grow = end - old; !f.fs.charge(grow) {
			return 0, experimentalsys.EIO // wazero's errnos have no ENOSPC
		}
	}
	h, errno := f.fs.hostFile(f.n, true)
	if errno != 0 {
		f.fs.used -= grow
		return 0, errno
	}
	n, err := h.WriteAt(buf, off)
	if err != nil {
		if grow > 0 {
			_ = h.Truncate(int64(old))
			f.fs.used -= grow
		}
		return 0, experimentalsys.EIO
	}
	f.n.size = max(old, end)
	return n, 0
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
		base = int64(f.n.size)
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
	case f.n.ro:
		return experimentalsys.EROFS
	case f.closed || f.fs.sealed:
		return experimentalsys.EBADF
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
	if f.n.ro || f.fs.readOnly || f.fs.sealed {
		return experimentalsys.EROFS
	}
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
	if f.fs.sealed { // seal closed it already
		return 0
	}
	f.n.opens--
	if f.n.opens == 0 {
		delete(f.fs.open, f.n)
		if f.n.host != nil {
			_ = f.n.host.Close()
			f.n.host = nil
		}
	}
	f.fs.release(f.n)
	return 0
}
