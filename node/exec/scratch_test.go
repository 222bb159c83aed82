package exec

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

const (
	rdonly = experimentalsys.O_RDONLY
	rdwr   = experimentalsys.O_RDWR
	wronly = experimentalsys.O_WRONLY
	creat  = experimentalsys.O_CREAT
	excl   = experimentalsys.O_EXCL
	trunc  = experimentalsys.O_TRUNC
	appnd  = experimentalsys.O_APPEND
	odir   = experimentalsys.O_DIRECTORY
)

// fsOp is one step of a scenario on a memFS; ok tells what it must return.
type fsOp struct {
	name string
	do   func(t *testing.T, f *memFS) experimentalsys.Errno
	want experimentalsys.Errno
}

func open(p string, flag experimentalsys.Oflag) func(*testing.T, *memFS) experimentalsys.Errno {
	return func(_ *testing.T, f *memFS) experimentalsys.Errno {
		file, errno := f.OpenFile(p, flag, 0o600)
		if errno == 0 {
			file.Close()
		}
		return errno
	}
}

func writeFile(p, data string) func(*testing.T, *memFS) experimentalsys.Errno {
	return func(_ *testing.T, f *memFS) experimentalsys.Errno {
		file, errno := f.OpenFile(p, wronly|creat|trunc, 0o600)
		if errno != 0 {
			return errno
		}
		defer file.Close()
		_, errno = file.Write([]byte(data))
		return errno
	}
}

func readFile(t *testing.T, f *memFS, p string) string {
	t.Helper()
	file, errno := f.OpenFile(p, rdonly, 0)
	if errno != 0 {
		t.Fatalf("open %s: %v", p, errno)
	}
	defer file.Close()
	buf := make([]byte, 1<<10)
	n, errno := file.Read(buf)
	if errno != 0 {
		t.Fatalf("read %s: %v", p, errno)
	}
	return string(buf[:n])
}

// newTestFS returns a scratch area whose host files are in a temporary
// directory, closed at the end of the test.
func newTestFS(t *testing.T, limit uint64) *memFS {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f := newMemFS(dir, limit)
	t.Cleanup(func() {
		if err := f.close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// files returns f's regular files as Scratch.FS shows them, sorted by path.
func files(t *testing.T, f *memFS) []File {
	t.Helper()
	fsys := scratchFS{f}
	var out []File
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		out = append(out, File{Path: p, Data: data})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func TestMemFS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit uint64
		ops   []fsOp
		files map[string]string // what files() returns at the end
	}{
		{
			name: "create, write, read back", limit: 1 << 10,
			ops:   []fsOp{{name: "write", do: writeFile("a.txt", "hello")}},
			files: map[string]string{"a.txt": "hello"},
		},
		{
			name: "missing files and directories", limit: 1 << 10,
			ops: []fsOp{
				{name: "open missing", do: open("nope", rdonly), want: experimentalsys.ENOENT},
				{name: "create in a missing dir", do: open("no/such", wronly|creat), want: experimentalsys.ENOENT},
				{name: "create below a file", do: func(t *testing.T, f *memFS) experimentalsys.Errno {
					if errno := writeFile("file", "x")(t, f); errno != 0 {
						return errno
					}
					return open("file/x", wronly|creat)(t, f)
				}, want: experimentalsys.ENOTDIR},
				{name: "file with a trailing slash", do: open("file/", rdonly), want: experimentalsys.ENOTDIR},
				{name: "file as a directory", do: open("file", rdonly|odir), want: experimentalsys.ENOTDIR},
				{name: "directory for writing", do: open(".", wronly), want: experimentalsys.EISDIR},
			},
			files: map[string]string{"file": "x"},
		},
		{
			name: "dot-dot stays inside", limit: 1 << 10,
			ops: []fsOp{
				{name: "write", do: writeFile("../../escape", "x")},
				{name: "mkdir", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Mkdir("/../d", 0o755) }},
				{name: "write below", do: writeFile("d/../d/../../d/f", "y")},
			},
			files: map[string]string{"escape": "x", "d/f": "y"},
		},
		{
			name: "exclusive create", limit: 1 << 10,
			ops: []fsOp{
				{name: "first", do: open("a", wronly|creat|excl)},
				{name: "second", do: open("a", wronly|creat|excl), want: experimentalsys.EEXIST},
			},
			files: map[string]string{"a": ""},
		},
		{
			name: "append and truncate", limit: 1 << 10,
			ops: []fsOp{
				{name: "write", do: writeFile("a", "hello")},
				{name: "append", do: func(_ *testing.T, f *memFS) experimentalsys.Errno {
					file, errno := f.OpenFile("a", wronly|appnd, 0)
					if errno != 0 {
						return errno
					}
					defer file.Close()
					_, errno = file.Write([]byte(", world"))
					return errno
				}},
				{name: "truncate", do: func(_ *testing.T, f *memFS) experimentalsys.Errno {
					file, errno := f.OpenFile("a", rdwr, 0)
					if errno != 0 {
						return errno
					}
					defer file.Close()
					return file.Truncate(4)
				}},
			},
			files: map[string]string{"a": "hell"},
		},
		{
			name: "a sparse write reads as zeros, even after a truncation", limit: 1 << 10,
			ops: []fsOp{
				{name: "write", do: writeFile("a", "secret")},
				{name: "shrink and write past the end", do: func(_ *testing.T, f *memFS) experimentalsys.Errno {
					file, errno := f.OpenFile("a", rdwr, 0)
					if errno != 0 {
						return errno
					}
					defer file.Close()
					if errno := file.Truncate(1); errno != 0 {
						return errno
					}
					_, errno = file.Pwrite([]byte("!"), 4)
					return errno
				}},
			},
			files: map[string]string{"a": "s\x00\x00\x00!"},
		},
		{
			name: "seek", limit: 1 << 10,
			ops: []fsOp{
				{name: "write", do: writeFile("a", "0123456789")},
				{name: "seek and overwrite", do: func(_ *testing.T, f *memFS) experimentalsys.Errno {
					file, errno := f.OpenFile("a", rdwr, 0)
					if errno != 0 {
						return errno
					}
					defer file.Close()
					if off, errno := file.Seek(-3, io.SeekEnd); errno != 0 || off != 7 {
						return experimentalsys.EIO
					}
					if _, errno := file.Write([]byte("ab")); errno != 0 {
						return errno
					}
					if off, errno := file.Seek(0, io.SeekCurrent); errno != 0 || off != 9 {
						return experimentalsys.EIO
					}
					_, errno = file.Seek(-10, io.SeekCurrent)
					return errno
				}, want: experimentalsys.EINVAL},
			},
			files: map[string]string{"a": "0123456ab9"},
		},
		{
			name: "rename and remove", limit: 1 << 10,
			ops: []fsOp{
				{name: "mkdir", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Mkdir("d", 0o755) }},
				{name: "write", do: writeFile("d/a", "1")},
				{name: "write b", do: writeFile("b", "2")},
				{name: "rename over a file", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Rename("d/a", "b") }},
				{name: "rename a dir into itself", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Rename("d", "d/e") }, want: experimentalsys.EINVAL},
				{name: "rename a file over a dir", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Rename("b", "d") }, want: experimentalsys.EISDIR},
				{name: "rmdir a file", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Rmdir("b") }, want: experimentalsys.ENOTDIR},
				{name: "unlink a dir", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Unlink("d") }, want: experimentalsys.EISDIR},
				{name: "write c", do: writeFile("d/c", "3")},
				{name: "rmdir non-empty", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Rmdir("d") }, want: experimentalsys.ENOTEMPTY},
				{name: "unlink", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Unlink("d/c") }},
				{name: "rmdir", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Rmdir("d") }},
				{name: "unlink again", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Unlink("d/c") }, want: experimentalsys.ENOENT},
				{name: "rename the root", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Rename(".", "x") }, want: experimentalsys.EINVAL},
			},
			files: map[string]string{"b": "1"},
		},
		{
			name: "no links", limit: 1 << 10,
			ops: []fsOp{
				{name: "write", do: writeFile("a", "1")},
				{name: "symlink", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Symlink("/etc/passwd", "l") }, want: experimentalsys.ENOSYS},
				{name: "link", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Link("a", "l") }, want: experimentalsys.ENOSYS},
			},
			files: map[string]string{"a": "1"},
		},
		{
			name: "cap: contents", limit: EntryCost + 1 + 10,
			ops: []fsOp{
				{name: "fits", do: writeFile("a", "0123456789")},
				{name: "one byte more", do: writeFile("a", "0123456789+"), want: experimentalsys.EIO},
			},
			files: map[string]string{"a": ""}, // truncated, then the write failed
		},
		{
			name: "cap: names", limit: 3 * (EntryCost + 1),
			ops: []fsOp{
				{name: "a", do: open("a", wronly|creat)},
				{name: "b", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Mkdir("b", 0o755) }},
				{name: "c", do: open("c", wronly|creat)},
				{name: "d", do: open("d", wronly|creat), want: experimentalsys.EIO},
				{name: "longer name", do: func(_ *testing.T, f *memFS) experimentalsys.Errno { return f.Rename("c", "cc") }, want: experimentalsys.EIO},
				{name: "remove, then room again", do: func(t *testing.T, f *memFS) experimentalsys.Errno {
					if errno := f.Rmdir("b"); errno != 0 {
						return errno
					}
					return open("d", wronly|creat)(t, f)
				}},
			},
			files: map[string]string{"a": "", "c": "", "d": ""},
		},
		{
			name: "cap: a sparse write is charged", limit: 1 << 10,
			ops: []fsOp{{name: "far", do: func(_ *testing.T, f *memFS) experimentalsys.Errno {
				file, errno := f.OpenFile("a", wronly|creat, 0)
				if errno != 0 {
					return errno
				}
				defer file.Close()
				_, errno = file.Pwrite([]byte("x"), 1<<40)
				return errno
			}, want: experimentalsys.EIO}},
			files: map[string]string{"a": ""},
		},
		{
			name: "too long a name", limit: 1 << 10,
			ops: []fsOp{
				{name: "create", do: open(string(make([]byte, 256)), wronly|creat), want: experimentalsys.ENAMETOOLONG},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFS(t, tc.limit)
			for _, op := range tc.ops {
				if got := op.do(t, f); got != op.want {
					t.Fatalf("%s: errno %v, want %v", op.name, got, op.want)
				}
			}
			got := map[string]string{}
			for _, file := range files(t, f) {
				got[file.Path] = string(file.Data)
				if read := readFile(t, f, file.Path); read != string(file.Data) {
					t.Errorf("%s: read %q, files() %q", file.Path, read, file.Data)
				}
			}
			want := tc.files
			if want == nil {
				want = map[string]string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			if used := usage(f); f.used != used {
				t.Errorf("used %d, but the tree holds %d", f.used, used)
			}
			if f.used > f.limit {
				t.Errorf("used %d, over the limit of %d", f.used, f.limit)
			}
		})
	}
}

// usage recomputes what f's tree costs, to check the running count.
func usage(f *memFS) uint64 {
	var walk func(*inode) uint64
	walk = func(dir *inode) uint64 {
		total := uint64(0)
		for name, n := range dir.entries {
			total += EntryCost + uint64(len(name)) + n.size
			if n.dir {
				total += walk(n)
			}
		}
		return total
	}
	return walk(f.root)
}

// An unlinked file still open keeps its room until it is closed.
func TestMemFSUnlinkedOpenFile(t *testing.T) {
	f := newTestFS(t, 1<<10)
	file, errno := f.OpenFile("tmp", rdwr|creat, 0o600)
	if errno != 0 {
		t.Fatal(errno)
	}
	if _, errno := file.Write(make([]byte, 500)); errno != 0 {
		t.Fatal(errno)
	}
	if errno := f.Unlink("tmp"); errno != 0 {
		t.Fatal(errno)
	}
	if _, errno := file.Write(make([]byte, 500)); errno != experimentalsys.EIO {
		t.Errorf("write past the cap through an unlinked file: %v, want EIO", errno)
	}
	if n, errno := file.Pread(make([]byte, 600), 0); errno != 0 || n != 500 {
		t.Errorf("read back %d bytes (%v), want 500", n, errno)
	}
	file.Close()
	if f.used != 0 {
		t.Errorf("used %d after closing the last reference, want 0", f.used)
	}
	if got := files(t, f); len(got) != 0 {
		t.Errorf("files: %v", got)
	}
	if entries, err := os.ReadDir(f.dir); err != nil || len(entries) != 0 {
		t.Errorf("host files %v (%v), want none once the unlinked file is closed", entries, err)
	}
}

func TestMemFSReaddir(t *testing.T) {
	f := newTestFS(t, 1<<10)
	for _, p := range []string{"c", "a", "b"} {
		if errno := writeFile(p, p)(t, f); errno != 0 {
			t.Fatal(errno)
		}
	}
	if errno := f.Mkdir("d", 0o700); errno != 0 {
		t.Fatal(errno)
	}
	dir, errno := f.OpenFile(".", rdonly|odir, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	defer dir.Close()
	names := func(ds []experimentalsys.Dirent) (out []string) {
		for _, d := range ds {
			if d.IsDir() {
				out = append(out, d.Name+"/")
			} else {
				out = append(out, d.Name)
			}
		}
		return out
	}
	first, _ := dir.Readdir(2)
	rest, _ := dir.Readdir(10)
	end, _ := dir.Readdir(10)
	if diff := cmp.Diff([]string{"a", "b", "c", "d/"}, append(names(first), names(rest)...)); diff != "" || len(end) != 0 {
		t.Errorf("listing (-want +got):\n%s\nthen %v", diff, names(end))
	}
	if _, errno := dir.Seek(0, io.SeekStart); errno != 0 {
		t.Fatal(errno)
	}
	if again, _ := dir.Readdir(0); len(again) != 4 {
		t.Errorf("after a rewind: %v", names(again))
	}
	st, errno := f.Stat("d")
	if errno != 0 || st.Mode != fs.ModeDir|0o700 || st.Mtim != 0 {
		t.Errorf("stat d: %+v %v", st, errno)
	}
}

func TestRootIsReadOnly(t *testing.T) {
	root := newRoot()
	for _, tc := range []struct {
		name string
		do   func() experimentalsys.Errno
		want experimentalsys.Errno
	}{
		{"create", func() experimentalsys.Errno { _, e := root.OpenFile("x", wronly|creat, 0o600); return e }, experimentalsys.EROFS},
		{"create in a missing dir", func() experimentalsys.Errno { _, e := root.OpenFile("etc/passwd", wronly|creat, 0o600); return e }, experimentalsys.ENOENT},
		{"read a host path", func() experimentalsys.Errno { _, e := root.OpenFile("etc/passwd", rdonly, 0); return e }, experimentalsys.ENOENT},
		{"mkdir", func() experimentalsys.Errno { return root.Mkdir("x", 0o755) }, experimentalsys.EROFS},
		{"rmdir scratch", func() experimentalsys.Errno { return root.Rmdir("scratch") }, experimentalsys.EROFS},
		{"rename scratch", func() experimentalsys.Errno { return root.Rename("scratch", "x") }, experimentalsys.EROFS},
		{"chmod", func() experimentalsys.Errno { return root.Chmod("scratch", 0o777) }, experimentalsys.EROFS},
		{"open scratch", func() experimentalsys.Errno { _, e := root.OpenFile("scratch", rdonly|odir, 0); return e }, 0},
	} {
		if got := tc.do(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Inputs are read-only at the FS's level too, for what a Go guest cannot
// ask (chmod, futimens), and count against the cap.
func TestMemFSInputs(t *testing.T) {
	f := newTestFS(t, 4<<10)
	tree := fstest.MapFS{"a/b.txt": {Data: []byte("bee")}, "c.txt": {Data: []byte("sea")}}
	if err := f.mountInput(Input{Path: "x/in", FS: tree}); err != nil {
		t.Fatal(err)
	}
	if used := usage(f); f.used != used {
		t.Errorf("used %d, but the tree holds %d", f.used, used)
	}
	if got := readFile(t, f, "x/in/a/b.txt"); got != "bee" {
		t.Errorf("read %q", got)
	}
	for _, tc := range []struct {
		name string
		do   func() experimentalsys.Errno
		want experimentalsys.Errno
	}{
		{"chmod the root", func() experimentalsys.Errno { return f.Chmod("x/in", 0o777) }, experimentalsys.EROFS},
		{"chmod a file", func() experimentalsys.Errno { return f.Chmod("x/in/c.txt", 0o777) }, experimentalsys.EROFS},
		{"utimens", func() experimentalsys.Errno { return f.Utimens("x/in/c.txt", 1, 1) }, experimentalsys.EROFS},
		{"futimens", func() experimentalsys.Errno {
			file, errno := f.OpenFile("x/in/c.txt", rdonly, 0)
			if errno != 0 {
				return errno
			}
			defer file.Close()
			return file.Utimens(1, 1)
		}, experimentalsys.EROFS},
		{"pwrite a read-only descriptor", func() experimentalsys.Errno {
			file, errno := f.OpenFile("x/in/c.txt", rdonly, 0)
			if errno != 0 {
				return errno
			}
			defer file.Close()
			_, errno = file.Pwrite([]byte("x"), 0)
			return errno
		}, experimentalsys.EBADF},
		{"rmdir the directory on the way", func() experimentalsys.Errno { return f.Rmdir("x") }, experimentalsys.ENOTEMPTY},
		{"rename over the input", func() experimentalsys.Errno { return f.Mkdir("y", 0o755) }, 0},
		{"", func() experimentalsys.Errno { return f.Rename("y", "x/in") }, experimentalsys.EROFS},
	} {
		if got := tc.do(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if st, errno := f.Stat("x/in/c.txt"); errno != 0 || st.Mode != 0o444 || st.Size != 3 {
		t.Errorf("stat: %+v %v", st, errno)
	}
	if got := files(t, f); len(got) != 0 {
		t.Errorf("Scratch.FS shows the input: %v", got)
	}
}

// TestEntryMemory measures what one entry of the tree costs the host, which
// the package doc states: about 150 bytes with a short name, twice what the
// cap charges (EntryCost and the name).
func TestEntryMemory(t *testing.T) {
	const n = 20000
	f := newTestFS(t, 1<<40)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		file, errno := f.OpenFile(fmt.Sprintf("f%06d", i), wronly|creat, 0o600)
		if errno != 0 {
			t.Fatal(errno)
		}
		file.Close()
		if errno := f.Mkdir(fmt.Sprintf("d%06d", i), 0o700); errno != 0 {
			t.Fatal(errno)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(f)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / (2 * n)
	t.Logf("%d bytes of Go heap per entry with a 7-byte name (charged %d)", per, EntryCost+7)
	if per > 512 {
		t.Errorf("%d bytes per entry, want about 150", per)
	}
}

// Entries count against the run's memory ceiling, beside its linear memory:
// what the tree holds in host memory is the lease's memory too.
func TestMemFSEntriesChargeMemory(t *testing.T) {
	f := newTestFS(t, 1<<30)
	f.mem = &ceiling{limit: 4 * (EntryCost + 2)}
	created := 0
	for i := range 10 {
		file, errno := f.OpenFile(fmt.Sprintf("f%d", i), wronly|creat, 0o644)
		if errno != 0 {
			if errno != experimentalsys.EIO {
				t.Fatalf("refusal: %v, want EIO", errno)
			}
			break
		}
		file.Close()
		created++
	}
	if created != 4 {
		t.Fatalf("%d entries fit under a ceiling of 4 entries' cost", created)
	}
	// Linear memory cannot take what the tree holds.
	m := f.mem.Allocate(0, 1<<20)
	if m.Reallocate(1) != nil {
		t.Error("linear memory grew past the ceiling the tree fills")
	}
	if errno := f.Unlink("f0"); errno != 0 {
		t.Fatal(errno)
	}
	if m.Reallocate(EntryCost+2) == nil {
		t.Error("an unlinked entry did not give its memory back")
	}
}
