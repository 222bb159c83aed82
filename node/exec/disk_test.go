package exec_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// runDirs returns the run directories under a scratch directory.
func runDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

// TestScratchOnDisk checks that a file's contents are a host file named by a
// number in a private run directory, gone once the Scratch is closed.
func TestScratchOnDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "scratch") // made by New
	e := newExecutor(t, exec.Config{ScratchDir: dir})
	c := add(t, e, exectest.Module(t, "fsprobe"))
	const size = 8 << 20
	res, err := e.Run(context.Background(), exec.RunSpec{
		Module: c, Args: []string{"fsprobe", "fill", "big", fmt.Sprint(size), "write", "sub/small.txt", "hi"},
		ScratchBytes: 16 << 20, MemoryBytes: 64 << 20,
	})
	if err != nil || res.Reason != exec.ReasonExit || res.ExitCode != 0 {
		t.Fatalf("Run: %v, reason %q, exit %d: %s", err, res.Reason, res.ExitCode, res.Detail)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("scratch dir: %v %v, want 0700", fi.Mode(), err)
	}
	runs := runDirs(t, dir)
	if len(runs) != 1 {
		t.Fatalf("run directories %v, want one", runs)
	}
	if fi, err := os.Stat(runs[0]); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("run dir: %v %v, want 0700", fi.Mode(), err)
	}
	entries, err := os.ReadDir(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[int64]int{}
	for _, ent := range entries {
		if _, err := strconv.ParseUint(ent.Name(), 10, 64); err != nil {
			t.Errorf("host file %q: not named by a number", ent.Name())
		}
		fi, err := ent.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("host file %s: mode %v, want a regular 0600 file", ent.Name(), fi.Mode())
		}
		sizes[fi.Size()]++
	}
	if diff := cmp.Diff(map[int64]int{size: 1, 2: 1}, sizes); diff != "" {
		t.Errorf("host file sizes (-want +got):\n%s", diff)
	}

	// The view reads them back.
	fsys := res.Scratch.FS()
	if err := fstest.TestFS(fsys, "big", "sub/small.txt"); err != nil {
		t.Error(err)
	}
	f, err := fsys.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	var b [3]byte
	if _, err := f.(io.ReaderAt).ReadAt(b[:], size-3); err != nil {
		t.Fatal(err)
	}
	for i, got := range b {
		if want := byte(((size-3)%(1<<20) + i) * 7); got != want {
			t.Errorf("byte %d: %#x, want %#x", size-3+i, got, want)
		}
	}
	if off, err := f.(io.Seeker).Seek(0, io.SeekEnd); err != nil || off != size {
		t.Errorf("seek to the end: %d %v", off, err)
	}
	f.Close()

	if err := res.Scratch.Close(); err != nil {
		t.Fatal(err)
	}
	if runs := runDirs(t, dir); len(runs) != 0 {
		t.Errorf("after Close, run directories %v, want none", runs)
	}
	if err := res.Scratch.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := fsys.Open("big"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Open after Close: %v, want fs.ErrClosed", err)
	}
}

// A Scratch outlives its Executor, whether the executor's scratch directory
// is its own or the configured one.
func TestScratchAfterExecutorClose(t *testing.T) {
	for _, configured := range []bool{false, true} {
		t.Run(fmt.Sprint("configured=", configured), func(t *testing.T) {
			cfg := exec.Config{CacheDir: exectest.CacheDir(t)}
			if configured {
				cfg.ScratchDir = t.TempDir()
			}
			e, err := exec.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := add(t, e, exectest.Module(t, "fsprobe"))
			res, err := e.Run(context.Background(), exec.RunSpec{Module: c, Args: []string{"fsprobe", "write", "a", "x"}, ScratchBytes: 1 << 10})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("Run: %v, exit %d", err, res.ExitCode)
			}
			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if configured {
				if b, err := fs.ReadFile(res.Scratch.FS(), "a"); err != nil || string(b) != "x" {
					t.Errorf("after the executor closed, a reads %q (%v)", b, err)
				}
			}
			if err := res.Scratch.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if configured {
				if runs := runDirs(t, cfg.ScratchDir); len(runs) != 0 {
					t.Errorf("run directories %v, want none", runs)
				}
			}
		})
	}
}

// seekOnly hides the io.ReaderAt of its files, and streamOnly their
// io.Seeker too, so that inputs are read in each of the three ways.
type (
	seekOnly   struct{ fs.FS }
	streamOnly struct{ fs.FS }
	seekFile   struct{ f fs.File }
	streamFile struct{ f fs.File }
)

func (s seekOnly) Open(name string) (fs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if _, ok := f.(fs.ReadDirFile); ok {
		return f, nil
	}
	return seekFile{f}, nil
}

func (f seekFile) Stat() (fs.FileInfo, error) { return f.f.Stat() }
func (f seekFile) Read(b []byte) (int, error) { return f.f.Read(b) }
func (f seekFile) Close() error               { return f.f.Close() }
func (f seekFile) Seek(off int64, whence int) (int64, error) {
	return f.f.(io.Seeker).Seek(off, whence)
}

func (s streamOnly) Open(name string) (fs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if _, ok := f.(fs.ReadDirFile); ok {
		return f, nil
	}
	return streamFile{f}, nil
}

func (f streamFile) Stat() (fs.FileInfo, error) { return f.f.Stat() }
func (f streamFile) Read(b []byte) (int, error) { return f.f.Read(b) }
func (f streamFile) Close() error               { return f.f.Close() }

// failing is an input whose files cannot be read.
type failing struct{ fs.FS }

func (s failing) Open(name string) (fs.File, error) {
	if name == "." {
		return s.FS.Open(name)
	}
	return nil, errors.New("the disk is on fire")
}

// fileFS is an input holding one regular file at its root.
func fileFS(data string) fs.FS {
	return fstest.MapFS{".": &fstest.MapFile{Data: []byte(data), Mode: 0o644}}
}

func TestInputs(t *testing.T) {
	tree := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 6400) // 100 KiB
	for p, data := range map[string][]byte{"a/b.txt": []byte("bee\n"), "c.txt": []byte("sea\n"), "a/big.bin": big} {
		p = filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	inputs := []exec.Input{
		{Path: "in/data.txt", FS: fileFS("hello input\n")},
		{Path: "in/tree", FS: os.DirFS(tree)},
		{Path: "deep/er/seek.txt", FS: seekOnly{fileFS("seekable\n")}},
		{Path: "stream", FS: streamOnly{fstest.MapFS{"x.txt": {Data: []byte("ex\n")}, "y/z.txt": {Data: []byte("zed\n")}}}},
		{Path: "fail", FS: failing{fstest.MapFS{"f.txt": {Data: []byte("unreadable")}}}},
	}
	e := newExecutor(t, exec.Config{})
	c := add(t, e, exectest.Module(t, "fsprobe"))
	args := []string{"fsprobe", "dump", "in", "dump", "deep", "dump", "stream", "dump", "fail"}
	for _, p := range []string{"in/data.txt", "in/tree", "in/tree/a", "deep/er/seek.txt", "stream", "/scratch/stream/y"} {
		args = append(args, "tamper", p)
	}
	args = append(args, "write", "in/out.txt", "mine", "write", "out/result.txt", "done", "dump", "in", "dump", "stream")
	res, stdout, stderr := run(t, e, exec.RunSpec{Module: c, Args: args, Inputs: inputs, ScratchBytes: 1 << 20})
	if res.Reason != exec.ReasonExit || res.ExitCode != 0 {
		t.Fatalf("reason %q, exit %d: %s %s", res.Reason, res.ExitCode, res.Detail, stderr)
	}
	sum := sha256.Sum256(big)
	want := []string{
		"dump in: ok dir",
		`dump in/data.txt: ok 12 "hello input\n"`,
		`tail in/data.txt: ok "t\n"`,
		"dump in/tree: ok dir",
		"dump in/tree/a: ok dir",
		`dump in/tree/a/b.txt: ok 4 "bee\n"`,
		`tail in/tree/a/b.txt: ok "e\n"`,
		"dump in/tree/a/big.bin: ok 102400 sha256:" + hex.EncodeToString(sum[:]),
		`tail in/tree/a/big.bin: ok "ef"`,
		`dump in/tree/c.txt: ok 4 "sea\n"`,
		`tail in/tree/c.txt: ok "a\n"`,
		"dump deep: ok dir",
		"dump deep/er: ok dir",
		`dump deep/er/seek.txt: ok 9 "seekable\n"`,
		`tail deep/er/seek.txt: ok "e\n"`,
		"dump stream: ok dir",
		`dump stream/x.txt: ok 3 "ex\n"`,
		`tail stream/x.txt: ok "x\n"`,
		"dump stream/y: ok dir",
		`dump stream/y/z.txt: ok 4 "zed\n"`,
		`tail stream/y/z.txt: ok "d\n"`,
		"dump fail: ok dir",
		"dump fail/f.txt: error read fail/f.txt: I/O error",
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) < len(want) {
		t.Fatalf("stdout:\n%s", stdout)
	}
	if diff := cmp.Diff(want, lines[:len(want)]); diff != "" {
		t.Errorf("the first dumps (-want +got):\n%s", diff)
	}
	tampers := 0
	var after []string
	for _, line := range lines[len(want):] {
		switch {
		case strings.HasPrefix(line, "tamper "):
			tampers++
			if !strings.Contains(line, ": error ") {
				t.Errorf("an input changed: %s", line)
			}
		case strings.HasPrefix(line, "write "):
			if !strings.HasSuffix(line, ": ok ") {
				t.Errorf("%s", line)
			}
		default:
			after = append(after, line)
		}
	}
	if tampers < 40 {
		t.Errorf("%d attempts to change the inputs, want more:\n%s", tampers, stdout)
	}
	// Nothing changed; in/out.txt, written beside the inputs, is the job's.
	wantAfter := append(dumpOf(want, "in"), `dump in/out.txt: ok 4 "mine"`, `tail in/out.txt: ok "ne"`)
	wantAfter = append(wantAfter, dumpOf(want, "stream")...)
	sort.Strings(wantAfter)
	sort.Strings(after)
	if diff := cmp.Diff(wantAfter, after); diff != "" {
		t.Errorf("the dumps after the tampering (-want +got):\n%s", diff)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, "tamper in/data.txt open for writing:") && !strings.Contains(line, "Read-only file system") {
			t.Errorf("%s: want EROFS", line)
		}
	}

	// The view holds the job's files, not the inputs.
	fsys := res.Scratch.FS()
	if err := fstest.TestFS(fsys, "in/out.txt", "out/result.txt", "deep/er"); err != nil {
		t.Error(err)
	}
	var names []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			p += "/"
		}
		names = append(names, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"./", "deep/", "deep/er/", "in/", "in/out.txt", "out/", "out/result.txt"}, names); diff != "" {
		t.Errorf("the view (-want +got):\n%s", diff)
	}
	for _, p := range []string{"in/data.txt", "in/tree", "in/tree/c.txt", "stream", "deep/er/seek.txt", "fail"} {
		if _, err := fs.Stat(fsys, p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the view shows the input %s: %v", p, err)
		}
	}
	if diff := cmp.Diff([]exec.File{{Path: "in/out.txt", Data: []byte("mine")}, {Path: "out/result.txt", Data: []byte("done")}}, scratchFiles(t, res)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// dumpOf returns the lines of a dump of root among lines.
func dumpOf(lines []string, root string) []string {
	var out []string
	for _, l := range lines {
		for _, prefix := range []string{"dump ", "tail "} {
			if p, ok := strings.CutPrefix(l, prefix); ok && (strings.HasPrefix(p, root+":") || strings.HasPrefix(p, root+"/")) {
				out = append(out, l)
			}
		}
	}
	return out
}

func TestInputsRefused(t *testing.T) {
	dir := t.TempDir()
	e := newExecutor(t, exec.Config{ScratchDir: dir})
	c := add(t, e, tinyModule)
	one := fileFS("data")
	for _, tc := range []struct {
		name    string
		inputs  []exec.Input
		scratch uint64
		code    pb.Code
	}{
		{name: "dot-dot", inputs: []exec.Input{{Path: "../x", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "dot-dot inside", inputs: []exec.Input{{Path: "a/../../x", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "absolute", inputs: []exec.Input{{Path: "/etc/x", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "not clean", inputs: []exec.Input{{Path: "a//b", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "trailing slash", inputs: []exec.Input{{Path: "a/", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "dot", inputs: []exec.Input{{Path: ".", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "empty", inputs: []exec.Input{{Path: "", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "no FS", inputs: []exec.Input{{Path: "a"}}, code: pb.Code_CODE_MALFORMED},
		{name: "NUL", inputs: []exec.Input{{Path: "a\x00b", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "long name", inputs: []exec.Input{{Path: strings.Repeat("n", 256), FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "twice", inputs: []exec.Input{{Path: "a", FS: one}, {Path: "a", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "one inside another", inputs: []exec.Input{{Path: "a/b/c", FS: one}, {Path: "a/b c", FS: one}, {Path: "a/b", FS: one}}, code: pb.Code_CODE_MALFORMED},
		{name: "over the cap", scratch: 192 + 1 + 3, inputs: []exec.Input{{Path: "a", FS: fileFS("data")}}, code: pb.Code_CODE_INSUFFICIENT_SCRATCH},
		{name: "over the cap with the directories on the way", scratch: 192 + 1 + 4, inputs: []exec.Input{{Path: "d/a", FS: fileFS("data")}}, code: pb.Code_CODE_INSUFFICIENT_SCRATCH},
		{name: "a tree over the cap", scratch: 1 << 10, inputs: []exec.Input{{Path: "t", FS: fstest.MapFS{"big": {Data: make([]byte, 1<<10)}}}}, code: pb.Code_CODE_INSUFFICIENT_SCRATCH},
		{name: "no scratch", inputs: []exec.Input{{Path: "a", FS: fileFS("")}}, code: pb.Code_CODE_INSUFFICIENT_SCRATCH},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Run(context.Background(), exec.RunSpec{Module: c, Inputs: tc.inputs, ScratchBytes: tc.scratch})
			if got := protocol.CodeOf(err); got != tc.code {
				t.Fatalf("Run: %v (code %s), want code %s", err, got, tc.code)
			}
			if res.Scratch != nil {
				t.Error("a refused run has a Scratch")
			}
			if runs := runDirs(t, dir); len(runs) != 0 {
				t.Errorf("a refused run left %v", runs)
			}
		})
	}
	// Exactly at the cap, it runs.
	res, _, _ := run(t, e, exec.RunSpec{Module: c, Inputs: []exec.Input{{Path: "d/a", FS: fileFS("data")}}, ScratchBytes: 2*192 + 1 + 1 + 4})
	if res.Reason != exec.ReasonExit {
		t.Errorf("at the cap: reason %q: %s", res.Reason, res.Detail)
	}
	// An input that cannot be walked does not start.
	if _, err := e.Run(context.Background(), exec.RunSpec{Module: c, Inputs: []exec.Input{{Path: "x", FS: fstest.MapFS{}}}, ScratchBytes: 1 << 10}); err != nil {
		t.Errorf("an empty directory input: %v", err)
	}
	if _, err := e.Run(context.Background(), exec.RunSpec{Module: c, Inputs: []exec.Input{{Path: "x", FS: notStat{}}}, ScratchBytes: 1 << 10}); err == nil {
		t.Error("an input whose root cannot be opened started")
	}
}

// notStat fails to open its root.
type notStat struct{}

func (notStat) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("gone")}
}

// procStatus returns a field of /proc/self/status, in bytes.
func procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil || len(f) != 2 || f[1] != "kB" {
				t.Fatalf("%s: %q", field, line)
			}
			return kb << 10
		}
	}
	t.Skipf("no %s in /proc/self/status", field)
	return 0
}

// TestScratchMemory fills 1 GiB of scratch from a guest with a 32 MiB memory
// ceiling: this process's memory grows by less than the guest's ceiling and a
// fixed overhead, since the contents go to disk.
func TestScratchMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB to disk")
	}
	const (
		scratch  = 1 << 30
		ceiling  = 32 << 20
		overhead = 64 << 20
	)
	dir := t.TempDir()
	e := newExecutor(t, exec.Config{ScratchDir: dir})
	c := add(t, e, exectest.Module(t, "fsprobe"))
	fill := func(n uint64) exec.Result {
		t.Helper()
		res, err := e.Run(context.Background(), exec.RunSpec{
			Module: c, Args: []string{"fsprobe", "fill", "big", fmt.Sprint(n)},
			ScratchBytes: n + 1<<10, MemoryBytes: ceiling,
		})
		if err != nil || res.Reason != exec.ReasonExit || res.ExitCode != 0 {
			t.Fatalf("fill %d: %v, reason %q, exit %d: %s", n, err, res.Reason, res.ExitCode, res.Detail)
		}
		return res
	}
	// A first run, so that the module's code and the runtime's first
	// instantiation are in memory before measuring.
	warm := fill(1 << 20)
	warm.Scratch.Close()

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// Reset the peak RSS (VmHWM) to the current RSS, if the kernel allows.
	peak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	rssBefore := procStatus(t, "VmRSS")

	res := fill(scratch)

	rssAfter := procStatus(t, "VmRSS")
	hwm := procStatus(t, "VmHWM")
	runtime.ReadMemStats(&after)
	t.Logf("RSS %d MiB before, %d MiB after (+%d MiB); peak %d MiB (reset: %v); Go heap in use %d MiB before, %d MiB after; Go runtime total %d MiB before, %d after",
		rssBefore>>20, rssAfter>>20, (int64(rssAfter)-int64(rssBefore))>>20, hwm>>20, peak,
		before.HeapInuse>>20, after.HeapInuse>>20, before.Sys>>20, after.Sys>>20)
	limit := rssBefore + ceiling + overhead
	if rssAfter > limit {
		t.Errorf("RSS grew from %d to %d bytes filling %d bytes of scratch: more than the guest's ceiling (%d) and %d", rssBefore, rssAfter, scratch, ceiling, overhead)
	}
	if peak && hwm > limit {
		t.Errorf("RSS peaked at %d bytes from %d filling %d bytes of scratch: more than the guest's ceiling (%d) and %d", hwm, rssBefore, scratch, ceiling, overhead)
	}
	if after.HeapInuse > before.HeapInuse+ceiling+overhead {
		t.Errorf("Go heap in use grew from %d to %d bytes", before.HeapInuse, after.HeapInuse)
	}
	if fi, err := fs.Stat(res.Scratch.FS(), "big"); err != nil || fi.Size() != scratch {
		t.Errorf("big: %v, %v; want %d bytes", fi, err, scratch)
	}
	if err := res.Scratch.Close(); err != nil {
		t.Fatal(err)
	}
	if runs := runDirs(t, dir); len(runs) != 0 {
		t.Errorf("run directories %v, want none", runs)
	}
}

// A run directory a crash left behind is gone once an executor opens the
// scratch directory again.
func TestStaleRunsRemoved(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "run-123")
	if err := os.MkdirAll(filepath.Join(stale, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "7"), []byte("left"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := exec.New(context.Background(), exec.Config{ScratchDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale run directory is still there: %v", err)
	}
}
