package data_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cuivre/cuivre/node/data"
)

// TestAddFS: a tree added from an fs.FS has the root AddPath gives the same
// tree on disk, reads back the same through FS, and its size is the bytes
// of its files.
func TestAddFS(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	files := map[string][]byte{
		"a.txt":          []byte("alpha\n"),
		"empty":          {},
		"out/big.bin":    pseudo(3*data.ChunkSize+9, 7),
		"out/deep/z.md":  []byte("# z\n"),
		"out/deep/y.txt": []byte("why\n"),
	}
	src := fstest.MapFS{}
	disk := filepath.Join(t.TempDir(), "in")
	var total uint64
	for name, b := range files {
		src[name] = &fstest.MapFile{Data: b, Mode: 0o644}
		write(t, filepath.Join(disk, name), b)
		total += uint64(len(b))
	}
	root, size, err := s.AddFS(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if size != total {
		t.Fatalf("size %d, want %d", size, total)
	}
	if viaPath, err := s.AddPath(ctx, disk); err != nil || !viaPath.Equals(root) {
		t.Fatalf("AddPath: %s (%v), AddFS: %s", viaPath, err, root)
	}
	if viaDirFS, _, err := s.AddFS(ctx, os.DirFS(disk), nil); err != nil || !viaDirFS.Equals(root) {
		t.Fatalf("AddFS of os.DirFS: %s (%v), of MapFS: %s", viaDirFS, err, root)
	}
	fsys, err := s.FS(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		if got, err := fs.ReadFile(fsys, name); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(got), err, len(want))
		}
	}
	if err := fstest.TestFS(fsys, "a.txt", "empty", "out/big.bin", "out/deep/z.md", "out/deep/y.txt"); err != nil {
		t.Fatal(err)
	}
}

// TestAddFSPaths: paths are kept at their paths, sharing directories; their
// order does not change the root, nor a path under one already given; a
// missing path is named; an invalid one refused; nothing is an empty
// directory; links are left out.
func TestAddFSPaths(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	src := fstest.MapFS{
		"out/a.txt":     {Data: []byte("a")},
		"out/b.txt":     {Data: []byte("bb")},
		"out/sub/c.txt": {Data: []byte("ccc")},
		"log":           {Data: []byte("log")},
		"scratch/x":     {Data: []byte("not wanted")},
	}
	root, size, err := s.AddFS(ctx, src, []string{"out/b.txt", "log", "out/a.txt"})
	if err != nil || size != 6 {
		t.Fatal(size, err)
	}
	again, _, err := s.AddFS(ctx, src, []string{"out/a.txt", "out/b.txt", "log", "out/a.txt"})
	if err != nil || !again.Equals(root) {
		t.Fatalf("another order: %s (%v), want %s", again, err, root)
	}
	fsys, err := s.FS(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(fsys, "out/a.txt", "out/b.txt", "log"); err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"scratch", "out/sub"} {
		if _, err := fs.Stat(fsys, absent); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v", absent, err)
		}
	}

	whole, size, err := s.AddFS(ctx, src, []string{"out/sub/c.txt", "out", "log"})
	if err != nil || size != 9 {
		t.Fatal(size, err)
	}
	just, _, err := s.AddFS(ctx, src, []string{"log", "out"})
	if err != nil || !just.Equals(whole) {
		t.Fatalf("a path below another: %s, want %s (%v)", whole, just, err)
	}

	_, _, err = s.AddFS(ctx, src, []string{"log", "nope/x"})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope/x") {
		t.Fatalf("missing path: %v", err)
	}
	for _, bad := range []string{"../x", "/etc", "out/../log", "out/", ""} {
		if _, _, err := s.AddFS(ctx, src, []string{bad}); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}

	empty, size, err := s.AddFS(ctx, fstest.MapFS{}, nil)
	if err != nil || size != 0 || empty.String() != "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354" {
		t.Fatalf("empty: %s, %d, %v", empty, size, err)
	}
	if st, err := s.Stat(ctx, empty, data.Limits{}); err != nil || st != (data.Stat{Entries: 1, Dir: true}) {
		t.Fatalf("stat empty: %+v %v", st, err)
	}

	dir := t.TempDir()
	write(t, filepath.Join(dir, "ok.txt"), []byte("ok"))
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	withLink, _, err := s.AddFS(ctx, os.DirFS(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	onlyOK, _, err := s.AddFS(ctx, fstest.MapFS{"ok.txt": {Data: []byte("ok")}}, nil)
	if err != nil || !withLink.Equals(onlyOK) {
		t.Fatalf("a link was kept: %s, want %s (%v)", withLink, onlyOK, err)
	}
	if linkOnly, _, err := s.AddFS(ctx, os.DirFS(dir), []string{"link"}); err != nil || !linkOnly.Equals(empty) {
		t.Fatalf("a link asked for: %s, %v", linkOnly, err)
	}
}

// genFS holds one file, "big", of size bytes generated as it is read.
type genFS struct{ size int64 }

func (g genFS) Open(name string) (fs.File, error) {
	if name != "big" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &genFile{r: io.LimitReader(rand.NewChaCha8([32]byte{1}), g.size), size: g.size}, nil
}

type genFile struct {
	r    io.Reader
	size int64
}

func (f *genFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *genFile) Close() error               { return nil }
func (f *genFile) Stat() (fs.FileInfo, error) { return genInfo(f.size), nil }

type genInfo int64

func (i genInfo) Name() string       { return "big" }
func (i genInfo) Size() int64        { return int64(i) }
func (i genInfo) Mode() fs.FileMode  { return 0o644 }
func (i genInfo) ModTime() time.Time { return time.Time{} }
func (i genInfo) IsDir() bool        { return false }
func (i genInfo) Sys() any           { return nil }

// TestAddFSStreams: a 64 MiB file is added as a stream: the heap in use
// grows by a few MiB once collected, and never by anything near the file.
func TestAddFSStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB")
	}
	ctx := context.Background()
	s := open(t)
	const size = 64 << 20
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var top uint64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapInuse)
			select {
			case <-done:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()
	root, n, err := s.AddFS(ctx, genFS{size}, []string{"big"})
	close(done)
	top := <-peak
	if err != nil || n != size {
		t.Fatal(n, err)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	mib := func(n uint64) float64 { return float64(n) / (1 << 20) }
	peakGrew, kept := int64(top)-int64(before.HeapInuse), int64(after.HeapInuse)-int64(before.HeapInuse)
	t.Logf("64 MiB added: heap in use %.1f MiB before, %.1f MiB at most during (%+.1f MiB, garbage the GC has not yet reclaimed mostly), %.1f MiB after a GC (%+.1f MiB)",
		mib(before.HeapInuse), mib(top), float64(peakGrew)/(1<<20), mib(after.HeapInuse), float64(kept)/(1<<20))
	// Were the file held, the peak would grow by 64 MiB at least. (The race
	// detector's bookkeeping and pools make the heap no measure.)
	if !raceBuild() && (peakGrew > 32<<20 || kept > 8<<20) {
		t.Errorf("the heap grew by %d MiB at most, %d MiB kept", peakGrew>>20, kept>>20)
	}
	st, err := s.Stat(ctx, root, data.Limits{})
	if err != nil || st.Size != size || st.Entries != 2 {
		t.Fatalf("stat: %+v, %v", st, err)
	}
	fsys, err := s.FS(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, _ := genFS{size}.Open("big")
	if !sameReader(t, f, want) {
		t.Fatal("big differs after the trip")
	}
}

// raceBuild reports whether the test runs under the race detector.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// sameReader compares two streams without holding either.
func sameReader(t *testing.T, a, b io.Reader) bool {
	t.Helper()
	pa, pb := make([]byte, 1<<16), make([]byte, 1<<16)
	for {
		na, ea := io.ReadFull(a, pa)
		nb, eb := io.ReadFull(b, pb)
		if na != nb || !bytes.Equal(pa[:na], pb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF)
		}
	}
}
