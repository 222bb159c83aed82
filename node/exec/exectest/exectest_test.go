package exectest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/protocol/wire"
)

// runModule runs bin as a WASI command on a fresh wazero runtime, as the
// executor does (closed on context done), with a memory limit of maxPages
// (0 for wazero's) and the module config mc (nil for the default), until
// it ends or timeout.
func runModule(t *testing.T, bin []byte, maxPages uint32, timeout time.Duration, mc wazero.ModuleConfig) (stdout, stderr string, pages uint32, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	mem := &peakMemory{}
	ctx = experimental.WithMemoryAllocator(ctx, mem)
	rc := wazero.NewRuntimeConfig().WithCloseOnContextDone(true)
	if maxPages != 0 {
		rc = rc.WithMemoryLimitPages(maxPages)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	defer rt.Close(context.Background())
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	compiled, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if _, ok := compiled.ExportedFunctions()["_start"]; !ok {
		t.Fatal("no _start")
	}
	var out, errOut bytes.Buffer
	if mc == nil {
		mc = wazero.NewModuleConfig()
	}
	mod, err := rt.InstantiateModule(ctx, compiled, mc.WithStdout(&out).WithStderr(&errOut))
	if mod != nil {
		mod.Close(context.Background())
	}
	return out.String(), errOut.String(), uint32(mem.peak / pageSize), err
}

// peakMemory backs linear memories with slices, as wazero does, and records
// the largest size it gave one.
type peakMemory struct {
	peak uint64
	buf  []byte
}

func (p *peakMemory) Allocate(capacity, max uint64) experimental.LinearMemory {
	p.buf = make([]byte, 0, capacity)
	return p
}

func (p *peakMemory) Reallocate(size uint64) []byte {
	if size > uint64(cap(p.buf)) {
		p.buf = append(p.buf[:cap(p.buf)], make([]byte, size-uint64(cap(p.buf)))...)
	}
	p.buf = p.buf[:size]
	p.peak = max(p.peak, size)
	return p.buf
}

func (p *peakMemory) Free() { p.buf = nil }

func exitCode(err error) (uint32, bool) {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), true
	}
	return 0, false
}

// TestBytes pins the encoding of the two smallest modules to the bytes of
// the binary format, written out.
func TestBytes(t *testing.T) {
	header := "\x00asm\x01\x00\x00\x00"
	head := header +
		"\x01\x04\x01\x60\x00\x00" + // type section: 1 type, () -> ()
		"\x03\x02\x01\x00" + // function section: 1 function, of type 0
		"\x07\x0a\x01\x06_start\x00\x00" // export section: "_start", function 0
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"Empty", Empty(), []byte(head + "\x0a\x04\x01\x02\x00\x0b")},                   // code: no locals, end
		{"Loop", Loop(), []byte(head + "\x0a\x09\x01\x07\x00\x03\x40\x0c\x00\x0b\x0b")}, // code: loop, br 0, end, end
		{"Trap", Trap(), []byte(head + "\x0a\x05\x01\x03\x00\x00\x0b")},                 // code: unreachable, end
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s:\n got %x\nwant %x", tc.name, tc.got, tc.want)
		}
	}
	for v, want := range map[int32]string{0: "\x41\x00", 63: "\x41\x3f", 64: "\x41\xc0\x00", -1: "\x41\x7f", -65: "\x41\xbf\x7f", 255: "\x41\xff\x01"} {
		if got := i32Const(v); string(got) != want {
			t.Errorf("i32.const %d: %x, want %x", v, got, want)
		}
	}
	if got := u32(624485); string(got) != "\xe5\x8e\x26" {
		t.Errorf("u32(624485): %x", got)
	}
}

func TestEmpty(t *testing.T) {
	stdout, stderr, _, err := runModule(t, Empty(), 0, 10*time.Second, nil)
	if err != nil || stdout != "" || stderr != "" {
		t.Errorf("err %v, stdout %q, stderr %q; want nothing", err, stdout, stderr)
	}
}

func TestTrap(t *testing.T) {
	_, _, _, err := runModule(t, Trap(), 0, 10*time.Second, nil)
	if _, exited := exitCode(err); err == nil || exited || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("err %v, want a trap on unreachable", err)
	}
}

func TestExit(t *testing.T) {
	for _, code := range []uint32{1, 3, 63, 64, 255, 1 << 31} {
		_, _, _, err := runModule(t, Exit(code), 0, 10*time.Second, nil)
		if got, ok := exitCode(err); !ok || got != code {
			t.Errorf("Exit(%d): %v, want exit status %d", code, err, code)
		}
	}
	// wazero reports exit status 0 as no error.
	if _, _, _, err := runModule(t, Exit(0), 0, 10*time.Second, nil); err != nil {
		t.Errorf("Exit(0): %v", err)
	}
}

func TestWrite(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 5000) // 80 000 bytes: two pages
	for _, tc := range []struct {
		stdout, stderr string
		code           uint32
	}{
		{"exiting with 3\n", "this goes to stderr\n", 3},
		{"", "", 7},
		{long, "x", 1},
		{"é\x00\n", long, 200},
	} {
		stdout, stderr, _, err := runModule(t, Write(tc.stdout, tc.stderr, tc.code), 0, 10*time.Second, nil)
		if code, ok := exitCode(err); !ok || code != tc.code || stdout != tc.stdout || stderr != tc.stderr {
			t.Errorf("Write(%.20q, %.20q, %d): err %v, stdout %.20q, stderr %.20q", tc.stdout, tc.stderr, tc.code, err, stdout, stderr)
		}
	}
}

func TestLoop(t *testing.T) {
	start := time.Now()
	_, _, _, err := runModule(t, Loop(), 0, 100*time.Millisecond, nil)
	if code, _ := exitCode(err); code != sys.ExitCodeDeadlineExceeded {
		t.Errorf("err %v, want the deadline", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("ended after %v, before its deadline", d)
	}
}

func TestWriteLoop(t *testing.T) {
	stdout, stderr, _, err := runModule(t, WriteLoop("started\n"), 0, 100*time.Millisecond, nil)
	if code, _ := exitCode(err); code != sys.ExitCodeDeadlineExceeded || stdout != "started\n" || stderr != "" {
		t.Errorf("err %v, stdout %q, stderr %q; want the deadline after started", err, stdout, stderr)
	}
}

func TestSleep(t *testing.T) {
	// With the fake clock each sleep returns at once: it spins until the
	// deadline.
	_, _, _, err := runModule(t, Sleep(), 0, 100*time.Millisecond, nil)
	if code, _ := exitCode(err); code != sys.ExitCodeDeadlineExceeded {
		t.Errorf("fake clock: err %v, want the deadline", err)
	}
	// It asks to sleep an hour each time.
	var asked []time.Duration
	mc := wazero.NewModuleConfig().WithNanosleep(func(ns int64) {
		asked = append(asked, time.Duration(ns))
		time.Sleep(10 * time.Millisecond)
	})
	_, _, _, err = runModule(t, Sleep(), 0, 100*time.Millisecond, mc)
	if code, _ := exitCode(err); code != sys.ExitCodeDeadlineExceeded {
		t.Errorf("counted sleeps: err %v, want the deadline", err)
	}
	if len(asked) == 0 || asked[0] != time.Hour {
		t.Errorf("slept %v, want an hour at a time", asked)
	}
}

func TestHog(t *testing.T) {
	const limit = 48 << 20 / pageSize
	_, stderr, pages, err := runModule(t, Hog(), limit, 30*time.Second, nil)
	if code, ok := exitCode(err); !ok || code != 2 || stderr != "out of memory\n" {
		t.Errorf("err %v, stderr %q; want exit 2, out of memory", err, stderr)
	}
	if pages > limit || pages < limit-16 {
		t.Errorf("grew to %d pages, want up to the limit of %d", pages, limit)
	}
}

func TestModule(t *testing.T) {
	for _, name := range []string{"hello", "sieve", "wordfreq", "escape", "fsprobe"} {
		b := Module(t, name)
		if !bytes.HasPrefix(b, []byte("\x00asm\x01\x00\x00\x00")) {
			t.Errorf("%s: not a WebAssembly module", name)
		}
		b[0] = 'x' // the caller's own copy
		if again := Module(t, name); again[0] != 0 {
			t.Errorf("%s: the cached bytes changed with the caller's copy", name)
		}
	}
	var ft fakeTB
	func() {
		defer func() { recover() }()
		Module(&ft, "no-such-module")
	}()
	if !strings.Contains(ft.msg, "examples/wasm/no-such-module.wasm is not committed") {
		t.Errorf("a missing module: %q", ft.msg)
	}
}

// fakeTB records a fatal message and stops the goroutine as testing's does,
// with a panic.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func TestCacheDir(t *testing.T) {
	dir := CacheDir(t)
	if again := CacheDir(t); again != dir {
		t.Errorf("CacheDir: %s, then %s", dir, again)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("%s: %v, %v; want a directory private to its owner", dir, fi.Mode(), err)
	}
	if key, ok := cacheKey(); ok && filepath.Base(dir) != key {
		t.Errorf("%s: not named after its key %s", dir, key)
	}
	// An executor made by NewExecutor uses it, and runs a module.
	e := NewExecutor(t, exec.Config{})
	bin := Empty()
	c := wire.SumCID(bin)
	if err := e.Add(context.Background(), c, bin); err != nil {
		t.Fatal(err)
	}
	if res, err := e.Run(context.Background(), exec.RunSpec{Module: c}); err != nil || res.Reason != exec.ReasonExit || res.ExitCode != 0 {
		t.Errorf("run: %v, %+v", err, res)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Errorf("%s holds %d entries (%v), want wazero's", dir, len(entries), err)
	}
}

func TestModVersion(t *testing.T) {
	for _, tc := range []struct {
		gomod, version string
	}{
		{"module m\n\nrequire github.com/tetratelabs/wazero v1.12.0\n", "v1.12.0"},
		{"module m\n\nrequire (\n\tgithub.com/a/b v1.0.0\n\tgithub.com/tetratelabs/wazero v1.12.0 // indirect\n)\n", "v1.12.0"},
		{"module m\n\nrequire github.com/tetratelabs/wazero-extra v1.0.0\n", ""},
		{"module m\n\nrequire github.com/tetratelabs/wazero v1.12.0\nreplace github.com/tetratelabs/wazero => github.com/x/wazero v1.13.0-fork\n", "github.com/x/wazero@v1.13.0-fork"},
		{"module m\n\nrequire github.com/tetratelabs/wazero v1.12.0\nreplace (\n\tgithub.com/tetratelabs/wazero v1.12.0 => ../wazero\n)\n", ""},
		{"module m\n", ""},
	} {
		version, why := modVersion(tc.gomod, wazeroPath)
		if version != tc.version || (version == "") == (why == "") {
			t.Errorf("%q: %q (%s), want %q", tc.gomod, version, why, tc.version)
		}
	}
}
