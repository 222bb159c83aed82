package exec

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Input is a read-only tree a run sees inside its scratch area.
type Input struct {
	// Path is where the input appears, relative to the scratch area (the
	// guest's working directory, /scratch): slash-separated, clean
	// (path.Clean(Path) == Path), not ".", not absolute, with no ".." and no
	// name longer than 255 bytes. The inputs of a run have distinct paths,
	// none inside another. Missing directories on the way are created as
	// ordinary scratch directories.
	Path string
	// FS holds the input: its root "." is a regular file or a directory,
	// which appears at /scratch/<Path>. Only its directories and regular
	// files are seen (symbolic links and other entries are left out). Its
	// structure, names and sizes, is read when the run starts; the contents
	// of a file only when the guest reads them, through an fs.File that is an
	// io.ReaderAt, an io.Seeker, or else read from its start again when the
	// guest reads backwards. An error reading it is EIO to the guest.
	FS fs.FS
}

// checkInputs refuses input paths that are not clean relative paths, or that
// collide (CODE_MALFORMED).
func checkInputs(inputs []Input) error {
	seen := make(map[string]bool, len(inputs))
	for i, in := range inputs {
		p := in.Path
		bad := ""
		switch {
		case in.FS == nil:
			bad = "no FS"
		case p == "" || p == ".":
			bad = "not below the scratch directory"
		case strings.HasPrefix(p, "/"):
			bad = "absolute"
		case path.Clean(p) != p:
			bad = "not clean"
		case strings.IndexByte(p, 0) >= 0:
			bad = "holds a NUL byte"
		}
		for name := range strings.SplitSeq(p, "/") {
			switch {
			case bad != "":
			case name == "..":
				bad = `holds ".."`
			case len(name) > maxNameLen:
				bad = fmt.Sprintf("a name is longer than %d bytes", maxNameLen)
			}
		}
		if bad == "" && seen[p] {
			bad = "given twice"
		}
		if bad != "" {
			return protocol.Errorf(protocol.CodeMalformed, "input %d (%q): %s", i, p, bad)
		}
		seen[p] = true
	}
	for i, in := range inputs {
		for dir := in.Path; ; {
			j := strings.LastIndexByte(dir, '/')
			if j < 0 {
				break
			}
			dir = dir[:j]
			if seen[dir] {
				return protocol.Errorf(protocol.CodeMalformed, "input %d (%q) is inside the input %q", i, in.Path, dir)
			}
		}
	}
	return nil
}

// mountInput grafts in into f, read-only, charging its entries and sizes.
// Lacking room is a *protocol.Error, CODE_INSUFFICIENT_SCRATCH.
func (f *memFS) mountInput(in Input) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	refuse := func() error {
		return protocol.Errorf(pb.Code_CODE_INSUFFICIENT_SCRATCH, "input %q: the inputs take more than the scratch cap of %d bytes", in.Path, f.limit)
	}
	parts := strings.Split(in.Path, "/")
	dir := f.root
	for _, name := range parts[:len(parts)-1] {
		next := dir.entries[name]
		if next == nil {
			if !f.chargeEntry(uint64(EntryCost + len(name))) {
				return refuse()
			}
			next = f.newInode(true, 0o755)
			next.cost, next.linked = uint64(EntryCost+len(name)), true
			dir.link(name, next)
		}
		if !next.dir || next.ro { // checkInputs rules this out
			return protocol.Errorf(protocol.CodeMalformed, "input %q: inside another input", in.Path)
		}
		dir = next
	}
	name := parts[len(parts)-1]
	if dir.entries[name] != nil {
		return protocol.Errorf(protocol.CodeMalformed, "input %q: given twice", in.Path)
	}
	fi, err := fs.Stat(in.FS, ".")
	if err != nil {
		return fmt.Errorf("input %q: %w", in.Path, err)
	}
	n, err := f.inputNode(in.FS, ".", name, fi)
	if err != nil {
		return fmt.Errorf("input %q: %w", in.Path, err)
	}
	if n == nil {
		return fmt.Errorf("input %q: neither a regular file nor a directory (%s)", in.Path, fi.Mode().Type())
	}
	dir.link(name, n)
	return nil
}

// inputNode returns the inode of the entry p of fsys, named name in its
// parent, and of everything below it, charged; nil for what is neither a
// regular file nor a directory.
func (f *memFS) inputNode(fsys fs.FS, p, name string, fi fs.FileInfo) (*inode, error) {
	if len(name) > maxNameLen {
		return nil, fmt.Errorf("%s: a name is longer than %d bytes", p, maxNameLen)
	}
	var n *inode
	switch {
	case fi.Mode().IsRegular():
		if fi.Size() < 0 {
			return nil, fmt.Errorf("%s: size %d", p, fi.Size())
		}
		n = f.newInode(false, 0o444)
		n.size = uint64(fi.Size())
		n.in = &inputFile{fsys: fsys, name: p}
	case fi.IsDir():
		n = f.newInode(true, 0o555)
	default:
		return nil, nil
	}
	n.ro, n.linked = true, true
	n.cost = uint64(EntryCost + len(name))
	if !f.chargeEntry(n.cost) || !f.charge(n.size) {
		return nil, protocol.Errorf(pb.Code_CODE_INSUFFICIENT_SCRATCH, "the inputs take more than the scratch cap of %d bytes", f.limit)
	}
	if n.in != nil {
		f.inputs = append(f.inputs, n.in)
	}
	if !n.dir {
		return n, nil
	}
	entries, err := fs.ReadDir(fsys, p)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.IsDir() && !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		child, err := f.inputNode(fsys, path.Join(p, e.Name()), e.Name(), info)
		if err != nil {
			return nil, err
		}
		if child != nil {
			n.link(e.Name(), child)
		}
	}
	return n, nil
}

// inputFile is the contents of one input file, opened on the first read.
// Its memFS's lock guards it.
type inputFile struct {
	fsys fs.FS
	name string
	f    fs.File
	pos  int64 // f's offset, when it is neither an io.ReaderAt nor an io.Seeker
}

func (in *inputFile) readAt(buf []byte, off int64) (int, error) {
	if in.f == nil {
		f, err := in.fsys.Open(in.name)
		if err != nil {
			return 0, err
		}
		in.f, in.pos = f, 0
	}
	var n int
	var err error
	switch r := in.f.(type) {
	case io.ReaderAt:
		n, err = r.ReadAt(buf, off)
	case io.Seeker:
		if _, err = r.Seek(off, io.SeekStart); err == nil {
			n, err = io.ReadFull(in.f, buf)
		}
	default:
		if off < in.pos { // start again
			in.close()
			return in.readAt(buf, off)
		}
		var skipped int64
		skipped, err = io.CopyN(io.Discard, in.f, off-in.pos)
		in.pos += skipped
		if err == nil {
			n, err = io.ReadFull(in.f, buf)
			in.pos += int64(n)
		}
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil // shorter than it said: the guest reads the end
	}
	return n, err
}

func (in *inputFile) close() {
	if in.f != nil {
		_ = in.f.Close()
		in.f = nil
	}
}
