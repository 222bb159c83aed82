package data_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/cuivre/cuivre/node/data"
)

var v1 = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}

// put keeps hand-built nodes in s, as a fetch would.
func put(t *testing.T, s *data.Store, nds ...ipld.Node) {
	t.Helper()
	for _, nd := range nds {
		if err := s.Blockstore().Put(context.Background(), nd); err != nil {
			t.Fatal(err)
		}
	}
}

// dirNode builds a UnixFS directory linking children by the names given.
func dirNode(t *testing.T, links ...any) *merkledag.ProtoNode {
	t.Helper()
	nd := merkledag.NodeWithData(unixfs.FolderPBData())
	nd.SetCidBuilder(v1)
	for i := 0; i < len(links); i += 2 {
		if err := nd.AddNodeLink(links[i].(string), links[i+1].(ipld.Node)); err != nil {
			t.Fatal(err)
		}
	}
	return nd
}

// TestFSFile: a file of several chunks read through FS: whole, with ReadAt
// across and at chunk boundaries, with Seek; its Stat is its size, 0444.
func TestFSFile(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	want := pseudo(3*data.ChunkSize+123, 3)
	root, err := s.AddReader(ctx, bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := s.FS(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(fsys, ".")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (%v), want %d", len(got), err, len(want))
	}
	f, err := fsys.Open(".")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() != int64(len(want)) || fi.Mode() != 0o444 || fi.IsDir() || !fi.ModTime().IsZero() {
		t.Fatalf("stat: %v %v", fi, err)
	}
	ra := f.(io.ReaderAt)
	for _, off := range []int{0, data.ChunkSize - 7, data.ChunkSize, 2*data.ChunkSize - 1, 3 * data.ChunkSize, len(want) - 10} {
		p := make([]byte, 20)
		n, err := ra.ReadAt(p, int64(off))
		end := min(off+20, len(want))
		if n != end-off || !bytes.Equal(p[:n], want[off:end]) {
			t.Fatalf("ReadAt %d: %d bytes, %v", off, n, err)
		}
		if (end-off < 20) != (err == io.EOF) {
			t.Fatalf("ReadAt %d: %d bytes, %v", off, n, err)
		}
	}
	if n, err := ra.ReadAt(make([]byte, 1), int64(len(want))); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt the end: %d, %v", n, err)
	}
	sk := f.(io.Seeker)
	if pos, err := sk.Seek(-100, io.SeekEnd); err != nil || pos != int64(len(want)-100) {
		t.Fatalf("seek: %d, %v", pos, err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, want[len(want)-100:]) {
		t.Fatalf("read after seek: %d bytes, %v", len(rest), err)
	}
	if _, err := sk.Seek(data.ChunkSize-1, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 2)
	if _, err := io.ReadFull(f, p); err != nil || !bytes.Equal(p, want[data.ChunkSize-1:data.ChunkSize+1]) {
		t.Fatalf("read across a chunk boundary: %v", err)
	}
	if pos, _ := sk.Seek(0, io.SeekCurrent); pos != data.ChunkSize+1 {
		t.Fatalf("offset %d after read, want %d", pos, data.ChunkSize+1)
	}

	// A file of one chunk is a raw block, still a file.
	small, err := s.AddReader(ctx, bytes.NewReader([]byte("hello\n")))
	if err != nil || small.Type() != cid.Raw {
		t.Fatal(small, err)
	}
	fsys, err = s.FS(ctx, small)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(fsys, "."); err != nil || string(b) != "hello\n" {
		t.Fatalf("raw file: %q, %v", b, err)
	}
	if _, err := s.FS(ctx, mustSum("never added")); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("FS of a root not held: %v", err)
	}
}

func mustSum(s string) cid.Cid {
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte(s))
	if err != nil {
		panic(err)
	}
	return c
}

// TestFSTree: a tree of nested directories passes testing/fstest, and reads
// back byte for byte.
func TestFSTree(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	src := filepath.Join(t.TempDir(), "in")
	files := map[string][]byte{
		"a.txt":         []byte("alpha\n"),
		"empty":         {},
		"sub/big.bin":   pseudo(2*data.ChunkSize+5, 4),
		"sub/deep/z.md": []byte("# z\n"),
	}
	for name, b := range files {
		write(t, filepath.Join(src, name), b)
	}
	root, err := s.AddPath(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := s.FS(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(fsys, "a.txt", "empty", "sub/big.bin", "sub/deep/z.md"); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		if got, err := fs.ReadFile(fsys, name); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(got), err, len(want))
		}
	}
	fi, err := fs.Stat(fsys, "sub")
	if err != nil || !fi.IsDir() || fi.Mode() != fs.ModeDir|0o555 || fi.Name() != "sub" {
		t.Fatalf("stat sub: %v %v", fi, err)
	}
	if _, err := fsys.Open("a.txt/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("below a file: %v", err)
	}
	if _, err := fsys.Open("../x"); err == nil {
		t.Fatal("opened ../x")
	}
	st, err := s.Stat(ctx, root, data.Limits{})
	if err != nil || st != (data.Stat{Size: 6 + 2*data.ChunkSize + 5 + 4, Entries: 7, Dir: true}) {
		t.Fatalf("stat: %+v, %v", st, err)
	}
}

// TestFSHAMT: a directory large enough to be sharded is listed sorted and
// read through FS.
func TestFSHAMT(t *testing.T) {
	defer func(n int) { uio.HAMTShardingSize = n }(uio.HAMTShardingSize)
	uio.HAMTShardingSize = 1024
	ctx := context.Background()
	s := open(t)
	src := fstest.MapFS{}
	var names []string
	for i := range 300 {
		name := fmt.Sprintf("f%03d.txt", i)
		src["many/"+name] = &fstest.MapFile{Data: []byte(name), Mode: 0o644}
		names = append(names, name)
	}
	root, _, err := s.AddFS(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := s.FS(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	// "many" is a HAMT shard, its CID of the store's kind.
	blk, err := s.Blockstore().Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	rootNode, err := merkledag.DecodeProtobuf(blk.RawData())
	if err != nil {
		t.Fatal(err)
	}
	l, err := rootNode.GetNodeLink("many")
	if p := l.Cid.Prefix(); err != nil || p.Version != 1 || p.Codec != cid.DagProtobuf || p.MhType != mh.SHA2_256 {
		t.Fatalf("many: %v, %v", l, err)
	}
	if blk, err = s.Blockstore().Get(ctx, l.Cid); err != nil {
		t.Fatal(err)
	}
	manyNode, err := merkledag.DecodeProtobuf(blk.RawData())
	if err != nil {
		t.Fatal(err)
	}
	if fsn, err := unixfs.FSNodeFromBytes(manyNode.Data()); err != nil || fsn.Type() != unixfs.THAMTShard {
		t.Fatalf("many is not sharded: %v", err)
	}
	entries, err := fs.ReadDir(fsys, "many")
	if err != nil || len(entries) != len(names) {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	for i, e := range entries {
		if e.Name() != names[i] {
			t.Fatalf("entry %d: %s, want %s", i, e.Name(), names[i])
		}
	}
	if b, err := fs.ReadFile(fsys, "many/f123.txt"); err != nil || string(b) != "f123.txt" {
		t.Fatalf("f123: %q %v", b, err)
	}
	if err := fstest.TestFS(fsys, "many/f000.txt", "many/f299.txt"); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stat(ctx, root, data.Limits{}); err != nil || st.Entries != 302 {
		t.Fatalf("stat: %+v, %v", st, err)
	}
	if st, err := s.Stat(ctx, root, data.Limits{MaxEntries: 50}); !errors.Is(err, data.ErrTooLarge) || st.Entries != 51 {
		t.Fatalf("stat over 50 entries: %+v, %v", st, err)
	}
}

// TestFSRefuses: a directory naming an entry "..", "a/b" or "" is neither
// walked nor stated; a symbolic link is neither a file nor a directory; a
// file whose sizes lie is refused by Stat and read without a panic.
func TestFSRefuses(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	leaf := merkledag.NewRawNode([]byte("secret"))
	for _, bad := range []string{"..", ".", "a/b", "", "nul\x00"} {
		inner := dirNode(t, bad, leaf)
		root := dirNode(t, "ok", leaf, "in", inner)
		put(t, s, leaf, inner, root)
		fsys, err := s.FS(ctx, root.Cid())
		if err != nil {
			t.Fatal(err)
		}
		err = fs.WalkDir(fsys, ".", func(string, fs.DirEntry, error) error { return nil })
		if err == nil {
			// WalkDir hands a ReadDir error to the callback: ask again.
			err = fs.WalkDir(fsys, ".", func(_ string, _ fs.DirEntry, err error) error { return err })
		}
		if !errors.Is(err, data.ErrBadName) {
			t.Errorf("%q: walk: %v", bad, err)
		}
		if _, err := fs.ReadFile(fsys, "in/"+bad); err == nil {
			t.Errorf("%q: read", bad)
		}
		if _, err := s.Stat(ctx, root.Cid(), data.Limits{}); !errors.Is(err, data.ErrBadName) {
			t.Errorf("%q: stat: %v", bad, err)
		}
	}

	sym := merkledag.NodeWithData(must(unixfs.SymlinkData("/etc/passwd")))
	sym.SetCidBuilder(v1)
	withLink := dirNode(t, "link", sym)
	put(t, s, sym, withLink)
	if _, err := s.FS(ctx, sym.Cid()); !errors.Is(err, data.ErrNotFileOrDir) {
		t.Errorf("FS of a link: %v", err)
	}
	fsys, err := s.FS(ctx, withLink.Cid())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.ReadDir(fsys, "."); !errors.Is(err, data.ErrNotFileOrDir) {
		t.Errorf("listing a link: %v", err)
	}
	if _, err := fsys.Open("link"); !errors.Is(err, data.ErrNotFileOrDir) {
		t.Errorf("opening a link: %v", err)
	}
	if _, err := s.Stat(ctx, withLink.Cid(), data.Limits{}); !errors.Is(err, data.ErrNotFileOrDir) {
		t.Errorf("stat of a link: %v", err)
	}

	// A file that says its leaf holds 10 bytes, of 6.
	fsn := unixfs.NewFSNode(unixfs.TFile)
	fsn.AddBlockSize(10)
	liar := merkledag.NodeWithData(must(fsn.GetBytes()))
	liar.SetCidBuilder(v1)
	if err := liar.AddNodeLink("", leaf); err != nil {
		t.Fatal(err)
	}
	put(t, s, liar)
	if _, err := s.Stat(ctx, liar.Cid(), data.Limits{}); err == nil {
		t.Error("stat of a file whose sizes lie")
	}
	if fsys, err := s.FS(ctx, liar.Cid()); err == nil {
		f, err := fsys.Open(".")
		if err == nil {
			io.ReadAll(f)
			f.(io.ReaderAt).ReadAt(make([]byte, 4), 7)
			f.Close()
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestStatLimits: Stat stops at the first limit passed, before the rest.
func TestStatLimits(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	src := fstest.MapFS{
		"big1": {Data: pseudo(data.ChunkSize*4, 5)},
		"big2": {Data: pseudo(data.ChunkSize*4, 6)},
	}
	deep := "d"
	for range 20 {
		deep += "/d"
	}
	src[deep+"/leaf"] = &fstest.MapFile{Data: []byte("deep")}
	root, size, err := s.AddFS(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if size != 8*data.ChunkSize+4 {
		t.Fatalf("size %d", size)
	}
	st, err := s.Stat(ctx, root, data.Limits{})
	if err != nil || st != (data.Stat{Size: size, Entries: 1 + 2 + 21 + 1, Dir: true}) {
		t.Fatalf("stat: %+v, %v", st, err)
	}
	// Entries are walked in name order: big1, big2, then d...
	if st, err := s.Stat(ctx, root, data.Limits{MaxSize: 6 * data.ChunkSize}); !errors.Is(err, data.ErrTooLarge) || st.Entries != 3 {
		t.Fatalf("MaxSize: %+v, %v", st, err)
	}
	if st, err := s.Stat(ctx, root, data.Limits{MaxDepth: 10}); !errors.Is(err, data.ErrTooLarge) || st.Entries != 1+2+11 {
		t.Fatalf("MaxDepth: %+v, %v", st, err)
	}
	if st, err := s.Stat(ctx, root, data.Limits{MaxDepth: 21}); !errors.Is(err, data.ErrTooLarge) || st.Entries != 25 {
		t.Fatalf("MaxDepth one short: %+v, %v", st, err)
	}
	if st, err := s.Stat(ctx, root, data.Limits{MaxDepth: 22}); err != nil || st.Entries != 25 {
		t.Fatalf("MaxDepth at the depth: %+v, %v", st, err)
	}
	if st, err := s.Stat(ctx, root, data.Limits{MaxEntries: 4}); !errors.Is(err, data.ErrTooLarge) || st.Entries != 5 {
		t.Fatalf("MaxEntries: %+v, %v", st, err)
	}
	if _, err := s.Stat(ctx, mustSum("not here"), data.Limits{}); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("stat of a root not held: %v", err)
	}
}
