package data

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// AddFS adds, as one UnixFS directory, the given slash-separated paths of
// fsys, each a file or a directory kept at its path: "out/a.txt" gives a
// directory "out" holding "a.txt", and paths share their directories. With
// no path, it adds the whole of fsys ("." is the root directory). It returns
// the root and the bytes of file contents added.
//
// Files are read as streams, in chunks, with the parameters of AddReader;
// a directory with many entries is sharded as boxo does by default. A path
// must be valid in io/fs; one that fsys lacks is an error wrapping
// fs.ErrNotExist that names it. Anything that is neither a regular file nor
// a directory (a link, a device) is left out. The root depends on the files
// only, never on the order of paths; none present (an empty fsys) is an
// empty directory.
func (s *Store) AddFS(ctx context.Context, fsys fs.FS, paths []string) (root cid.Cid, size uint64, err error) {
	defer s.begin()()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	paths = slices.Clone(paths)
	slices.Sort(paths) // a path before those below it
	paths = slices.Compact(paths)
	top := &addTree{}
	for _, p := range paths {
		if !fs.ValidPath(p) {
			return cid.Undef, 0, fmt.Errorf("add %q: not a valid path", p)
		}
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			return cid.Undef, 0, fmt.Errorf("add %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			continue
		}
		if p == "." {
			if !fi.IsDir() {
				return cid.Undef, 0, fmt.Errorf("add .: %w", ErrNotRegular)
			}
			top.whole, top.children = true, nil
			continue
		}
		top.insert(strings.Split(p, "/"), fi.IsDir())
	}
	a := &fsAdd{s: s, ctx: ctx, fsys: fsys}
	nd, err := a.dir(".", top)
	if err != nil {
		return cid.Undef, 0, err
	}
	return nd.Cid(), a.size, s.done(ctx, nd.Cid())
}

// addTree is what AddFS takes of a directory: all of it (whole), or the
// children named.
type addTree struct {
	whole    bool
	dir      bool // a child: whether it is a directory
	children map[string]*addTree
}

// insert adds the path elems below t, unless a directory above is whole.
func (t *addTree) insert(elems []string, dir bool) {
	for _, e := range elems {
		if t.whole {
			return
		}
		if t.children == nil {
			t.children = map[string]*addTree{}
		}
		c := t.children[e]
		if c == nil {
			c = &addTree{dir: true}
			t.children[e] = c
		}
		t = c
	}
	t.dir = dir
	t.whole, t.children = true, nil
}

type fsAdd struct {
	s    *Store
	ctx  context.Context
	fsys fs.FS
	size uint64
}

// dir adds the directory at name, whole or its children in t.
func (a *fsAdd) dir(name string, t *addTree) (ipld.Node, error) {
	d, err := uio.NewDirectory(a.s.dag, uio.WithCidBuilder(prefix))
	if err != nil {
		return nil, err
	}
	add := func(child string, isDir bool, sub *addTree) error {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		p := path.Join(name, child)
		var nd ipld.Node
		var err error
		if isDir {
			nd, err = a.dir(p, sub)
		} else {
			nd, err = a.file(p)
		}
		if err != nil {
			return err
		}
		if err := d.AddChild(a.ctx, child, nd); err != nil {
			return fmt.Errorf("add %s: %w", p, err)
		}
		return nil
	}
	if t.whole {
		entries, err := fs.ReadDir(a.fsys, name) // sorted by name
		if err != nil {
			return nil, fmt.Errorf("add %s: %w", name, err)
		}
		for _, e := range entries {
			if !validName(e.Name()) {
				return nil, fmt.Errorf("add %s: an entry %q: %w", name, e.Name(), ErrBadName)
			}
			if !e.Type().IsRegular() && !e.IsDir() {
				continue
			}
			if err := add(e.Name(), e.IsDir(), &addTree{whole: true}); err != nil {
				return nil, err
			}
		}
	} else {
		for _, child := range slices.Sorted(maps.Keys(t.children)) {
			sub := t.children[child]
			if err := add(child, sub.dir, sub); err != nil {
				return nil, err
			}
		}
	}
	nd, err := d.GetNode()
	if err != nil {
		return nil, err
	}
	return nd, a.s.dag.Add(a.ctx, nd)
}

// file adds the regular file at name, streamed.
func (a *fsAdd) file(name string) (ipld.Node, error) {
	f, err := a.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", name, err)
	}
	defer f.Close()
	cr := &counter{r: f}
	nd, err := a.s.addFile(cr)
	a.size += cr.n
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", name, err)
	}
	return nd, nil
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n uint64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}
