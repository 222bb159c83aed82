package exec_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// run runs spec on e and returns the result with its stdout and stderr.
func run(t *testing.T, e *exec.Executor, spec exec.RunSpec) (exec.Result, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	spec.Stdout, spec.Stderr = &stdout, &stderr
	res, err := e.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Scratch == nil {
		t.Fatal("Run returned a Result without its Scratch")
	}
	t.Cleanup(func() {
		if err := res.Scratch.Close(); err != nil {
			t.Errorf("Scratch.Close: %v", err)
		}
	})
	return res, stdout.String(), stderr.String()
}

// scratchFiles returns the regular files res left, sorted by path.
func scratchFiles(t *testing.T, res exec.Result) []exec.File {
	t.Helper()
	files, err := exec.DecodeOutput(output(t, res))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// output returns the output encoding of what res left.
func output(t *testing.T, res exec.Result) []byte {
	t.Helper()
	b, err := exec.EncodeFS(res.Scratch.FS())
	if err != nil {
		t.Fatalf("EncodeFS: %v", err)
	}
	return b
}

// outputCID returns the output CID of what res left.
func outputCID(t *testing.T, res exec.Result) cid.Cid {
	t.Helper()
	return wire.SumCID(output(t, res))
}

func TestRun(t *testing.T) {
	e := newExecutor(t, exec.Config{})
	mods := map[string][]byte{
		"tiny": tinyModule, "trap": trapModule, "loop": exectest.Loop(), "sleep": exectest.Sleep(), "bigmem": bigMemModule,
		"hog":     exectest.Hog(),
		"exit0":   exectest.Write("exiting with 0\n", "this goes to stderr\n", 0),
		"exit3":   exectest.Write("exiting with 3\n", "this goes to stderr\n", 3),
		"exit255": exectest.Exit(255),
	}
	for _, name := range []string{"hello", "sieve", "wordfreq"} {
		mods[name] = exectest.Module(t, name)
	}
	for _, tc := range []struct {
		name      string
		module    string
		spec      exec.RunSpec
		reason    exec.Reason
		exit      int32
		code      pb.Code
		stdout    string // a substring, if set
		stderr    string // a substring, if set
		maxMemory uint64 // if set, Result.MemoryBytes must not exceed it
		files     []string
	}{
		{name: "hello", module: "hello", reason: exec.ReasonExit, stdout: "hello, world! (0 lines on stdin)\n"},
		{
			name: "args env stdin", module: "hello",
			spec: exec.RunSpec{
				Args:  []string{"hello", "--name", "cuivre"},
				Env:   []exec.EnvVar{{Name: "GREETING", Value: "bonjour"}},
				Stdin: []byte("a\nb\nc\n"),
			},
			reason: exec.ReasonExit, stdout: "bonjour, cuivre! (3 lines on stdin)\n",
		},
		{name: "exit 0", module: "exit0", reason: exec.ReasonExit, stdout: "exiting with 0", stderr: "this goes to stderr"},
		{name: "exit 3", module: "exit3", reason: exec.ReasonExit, exit: 3, stdout: "exiting with 3", stderr: "this goes to stderr"},
		{name: "exit 255", module: "exit255", reason: exec.ReasonExit, exit: 255},
		{
			name: "cpu bound", module: "sieve", spec: exec.RunSpec{Args: []string{"sieve", "--n", "100000"}},
			reason: exec.ReasonExit, stdout: "9592 primes below 100000\n",
		},
		{
			name: "loop stopped at the timeout", module: "loop", spec: exec.RunSpec{Timeout: 100 * time.Millisecond},
			reason: exec.ReasonTimeout, exit: -1, code: pb.Code_CODE_TIMEOUT,
		},
		{
			name: "sleeper stopped at the timeout", module: "sleep", spec: exec.RunSpec{Timeout: 200 * time.Millisecond},
			reason: exec.ReasonTimeout, exit: -1, code: pb.Code_CODE_TIMEOUT,
		},
		{
			name: "real sleeper stopped at the timeout", module: "sleep", spec: exec.RunSpec{Timeout: 200 * time.Millisecond, RealTime: true},
			reason: exec.ReasonTimeout, exit: -1, code: pb.Code_CODE_TIMEOUT,
		},
		{
			name: "memory hog stopped at its ceiling", module: "hog", spec: exec.RunSpec{MemoryBytes: 48 << 20},
			reason: exec.ReasonMemory, exit: 2, code: pb.Code_CODE_INSUFFICIENT_MEMORY,
			stderr: "out of memory", maxMemory: 48 << 20,
		},
		{
			name: "initial memory over the ceiling", module: "bigmem", spec: exec.RunSpec{MemoryBytes: 1 << 20},
			reason: exec.ReasonMemory, exit: -1, code: pb.Code_CODE_INSUFFICIENT_MEMORY,
		},
		{name: "initial memory under the ceiling", module: "bigmem", spec: exec.RunSpec{MemoryBytes: 8 << 20}, reason: exec.ReasonExit},
		{name: "trap", module: "trap", reason: exec.ReasonTrap, exit: -1},
		{name: "no output", module: "tiny", reason: exec.ReasonExit},
		{
			name: "output file", module: "wordfreq", spec: exec.RunSpec{Stdin: []byte("a b a"), ScratchBytes: 1 << 20},
			reason: exec.ReasonExit, stdout: "2 distinct words", files: []string{"words.txt"},
		},
		{
			name: "no scratch reserved", module: "wordfreq", spec: exec.RunSpec{Stdin: []byte("a b a")},
			reason: exec.ReasonScratch, exit: 1, code: pb.Code_CODE_INSUFFICIENT_SCRATCH, stderr: "open words.txt: I/O error",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Module = add(t, e, mods[tc.module])
			res, stdout, stderr := run(t, e, spec)
			if res.Reason != tc.reason || res.ExitCode != tc.exit || res.Code != tc.code {
				t.Errorf("reason %q, exit %d, code %s (%s); want %q, %d, %s", res.Reason, res.ExitCode, res.Code, res.Detail, tc.reason, tc.exit, tc.code)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout %q, want it to hold %q", stdout, tc.stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q, want it to hold %q", lastLines(stderr, 5), tc.stderr)
			}
			if tc.maxMemory != 0 && res.MemoryBytes > tc.maxMemory {
				t.Errorf("memory grew to %d bytes, over the ceiling of %d", res.MemoryBytes, tc.maxMemory)
			}
			var files []string
			for _, f := range scratchFiles(t, res) {
				files = append(files, f.Path)
			}
			if diff := cmp.Diff(tc.files, files); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			if res.Started.IsZero() || res.Duration < 0 {
				t.Errorf("started %v, duration %v", res.Started, res.Duration)
			}
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func TestTimeoutIsOnTime(t *testing.T) {
	e := newExecutor(t, exec.Config{})
	c := add(t, e, exectest.Loop())
	res, _, _ := run(t, e, exec.RunSpec{Module: c, Timeout: 100 * time.Millisecond})
	if res.Reason != exec.ReasonTimeout {
		t.Fatalf("reason %q, want timeout", res.Reason)
	}
	// Generous: machines here are shared. The point is that the loop did not
	// run to the test's own deadline.
	if res.Duration < 100*time.Millisecond || res.Duration > 30*time.Second {
		t.Errorf("stopped after %v, want about 100ms", res.Duration)
	}
}

func TestAdd(t *testing.T) {
	e := newExecutor(t, exec.Config{MaxModuleBytes: 1 << 10})
	tooBig := variant(strings.Repeat("x", 100))
	tooBig = append(tooBig, bytes.Repeat([]byte{0, 1, 'y'}, 400)...) // 400 empty custom sections
	for _, tc := range []struct {
		name string
		cid  []byte // the bytes whose CID is claimed
		bin  []byte
		code pb.Code
	}{
		{name: "ok", cid: tinyModule, bin: tinyModule},
		{name: "again", cid: tinyModule, bin: tinyModule},
		{name: "bytes do not match the CID", cid: trapModule, bin: tinyModule, code: pb.Code_CODE_MODULE_MISMATCH},
		{name: "too large", cid: tooBig, bin: tooBig, code: pb.Code_CODE_TOO_LARGE},
		{name: "not wasm", cid: []byte("#!/bin/sh\n"), bin: []byte("#!/bin/sh\n"), code: pb.Code_CODE_MALFORMED},
		{name: "truncated", cid: tinyModule[:20], bin: tinyModule[:20], code: pb.Code_CODE_MALFORMED},
		{name: "no _start", cid: noStartModule, bin: noStartModule, code: pb.Code_CODE_EXECUTOR_UNSUPPORTED},
		{name: "imports beyond WASI", cid: envImportModule, bin: envImportModule, code: pb.Code_CODE_EXECUTOR_UNSUPPORTED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := wire.SumCID(tc.cid)
			err := e.Add(context.Background(), c, tc.bin)
			if got := protocol.CodeOf(err); got != tc.code {
				t.Fatalf("Add: %v (code %s), want code %s", err, got, tc.code)
			}
			if want := tc.code == pb.Code_CODE_UNSPECIFIED; e.Has(c) != want {
				t.Errorf("Has = %v, want %v", e.Has(c), want)
			}
		})
	}
}

func TestRunRefused(t *testing.T) {
	e := newExecutor(t, exec.Config{MaxMemoryBytes: 64 << 20, MaxOutputBytes: 1 << 20, MaxTimeout: time.Minute})
	c := add(t, e, tinyModule)
	for _, tc := range []struct {
		name string
		spec exec.RunSpec
		code pb.Code
	}{
		{name: "unknown module", spec: exec.RunSpec{Module: wire.SumCID([]byte("nothing"))}, code: pb.Code_CODE_MODULE_NOT_FOUND},
		{name: "memory over the executor's ceiling", spec: exec.RunSpec{Module: c, MemoryBytes: 65 << 20}, code: pb.Code_CODE_INSUFFICIENT_MEMORY},
		{name: "scratch over the executor's cap", spec: exec.RunSpec{Module: c, ScratchBytes: 2 << 20}, code: pb.Code_CODE_INSUFFICIENT_SCRATCH},
		{name: "timeout over the executor's", spec: exec.RunSpec{Module: c, Timeout: time.Hour}, code: pb.Code_CODE_MALFORMED},
		{name: "negative timeout", spec: exec.RunSpec{Module: c, Timeout: -time.Second}, code: pb.Code_CODE_MALFORMED},
		{name: "NUL in an arg", spec: exec.RunSpec{Module: c, Args: []string{"a\x00b"}}, code: pb.Code_CODE_MALFORMED},
		{name: "= in an env name", spec: exec.RunSpec{Module: c, Env: []exec.EnvVar{{Name: "A=B", Value: "c"}}}, code: pb.Code_CODE_MALFORMED},
		{name: "empty env name", spec: exec.RunSpec{Module: c, Env: []exec.EnvVar{{Value: "c"}}}, code: pb.Code_CODE_MALFORMED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), tc.spec)
			if got := protocol.CodeOf(err); got != tc.code {
				t.Fatalf("Run: %v (code %s), want code %s", err, got, tc.code)
			}
		})
	}
}

// TestSandbox runs a guest that tries to reach the host: files, environment,
// clock and entropy.
func TestSandbox(t *testing.T) {
	t.Setenv("CUIVRE_HOST_SECRET", "leaked")
	hostFiles := []string{"/tmp/cuivre-escape", "/cuivre-escape", filepath.Join("..", "cuivre-escape"), "cuivre-escape"}
	for _, p := range hostFiles {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists before the test: remove it", p)
		}
	}
	e := newExecutor(t, exec.Config{})
	c := add(t, e, exectest.Module(t, "escape"))
	spec := exec.RunSpec{
		Module: c, Args: []string{"escape"}, ScratchBytes: 1 << 20,
		Env: []exec.EnvVar{{Name: "GIVEN", Value: "1"}},
	}
	job := wire.SumCID([]byte("job")).Bytes()
	spec.Random = protocol.JobRandom(job, 0)
	res, stdout, _ := run(t, e, spec)
	if res.Reason != exec.ReasonExit || res.ExitCode != 0 {
		t.Fatalf("reason %q, exit %d: %s", res.Reason, res.ExitCode, res.Detail)
	}
	got := map[string]string{}
	for line := range strings.Lines(stdout) {
		name, outcome, _ := strings.Cut(strings.TrimSpace(line), ": ")
		got[name] = outcome
	}
	for _, tc := range []struct{ attempt, want string }{
		{"read /etc/passwd", "error open /etc/passwd: No such file or directory"},
		{"read ../../etc/passwd", "error open ../../etc/passwd: No such file or directory"},
		{"read /proc/self/environ", "error open /proc/self/environ: No such file or directory"},
		{"read /scratch/../../etc/passwd", "error open /scratch/../../etc/passwd: No such file or directory"},
		{"read /scratch/../etc/hostname", "error open /scratch/../etc/hostname: No such file or directory"},
		{"write /tmp/cuivre-escape", "error open /tmp/cuivre-escape: No such file or directory"},
		{"write /cuivre-escape", "error open /cuivre-escape: Read-only file system"},
		{"write /scratch/../cuivre-escape", "error open /scratch/../cuivre-escape: Read-only file system"},
		{"write ../cuivre-escape", "error open ../cuivre-escape: Read-only file system"},
		{"list /", "ok scratch"},
		{"env", "GIVEN=1 PWD=/scratch"},  // the job's env and the working directory the sandbox gives, no host variable
		{"time", "2022-01-01T00:00:00Z"}, // wazero's fake epoch: no host clock
	} {
		if got[tc.attempt] != tc.want {
			t.Errorf("%s: %q, want %q", tc.attempt, got[tc.attempt], tc.want)
		}
	}
	for _, p := range hostFiles {
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("the guest wrote %s on the host", p)
		}
	}
	if files := scratchFiles(t, res); len(files) != 0 {
		t.Errorf("scratch holds %v, want nothing", files)
	}

	// Deterministic: a second run prints the same bytes, fake clock and
	// the job's derived random stream included.
	spec.Random = protocol.JobRandom(job, 0)
	_, again, _ := run(t, e, spec)
	if again != stdout {
		t.Errorf("two runs differ:\n%s\n---\n%s", stdout, again)
	}

	// Asked for, the host's clock and entropy come in.
	spec.RealTime, spec.Random = true, nil
	before := time.Now()
	_, real1, _ := run(t, e, spec)
	_, real2, _ := run(t, e, spec)
	got = map[string]string{}
	for line := range strings.Lines(real1) {
		name, outcome, _ := strings.Cut(strings.TrimSpace(line), ": ")
		got[name] = outcome
	}
	if tm, err := time.Parse(time.RFC3339Nano, got["time"]); err != nil || tm.Before(before.Add(-time.Minute)) {
		t.Errorf("with RealTime the guest reads %q (%v), want about %v", got["time"], err, before)
	}
	if real1 == real2 {
		t.Errorf("with the host's entropy two runs print the same:\n%s", real1)
	}
}

// TestRandom: a guest reads its random source through random_get. The
// stream of one job and instance gives every run the same bytes, as replicas
// need; another instance or another job gets other bytes; with no stream
// given, the host's entropy gives every run its own (it used to be wazero's
// fixed seed: the same bytes in every job on every provider).
func TestRandom(t *testing.T) {
	e := newExecutor(t, exec.Config{})
	c := add(t, e, exectest.Random(32))
	job, other := wire.SumCID([]byte("job")).Bytes(), wire.SumCID([]byte("other")).Bytes()
	read := func(r io.Reader) string {
		t.Helper()
		res, stdout, stderr := run(t, e, exec.RunSpec{Module: c, Random: r})
		if res.Reason != exec.ReasonExit || res.ExitCode != 0 || len(stdout) != 32 {
			t.Fatalf("reason %q, exit %d, %d bytes: %s %s", res.Reason, res.ExitCode, len(stdout), res.Detail, stderr)
		}
		return stdout
	}
	first := read(protocol.JobRandom(job, 0))
	if again := read(protocol.JobRandom(job, 0)); again != first {
		t.Errorf("one job and instance, two runs: %x and %x", first, again)
	}
	want := make([]byte, 32)
	protocol.JobRandom(job, 0).Read(want)
	if first != string(want) {
		t.Errorf("the guest read %x, not the job's stream %x", first, want)
	}
	seen := map[string]string{first: "job, instance 0"}
	for name, r := range map[string]io.Reader{
		"job, instance 1":   protocol.JobRandom(job, 1),
		"other, instance 0": protocol.JobRandom(other, 0),
		"host, run 1":       nil,
		"host, run 2":       nil,
	} {
		got := read(r)
		if prev, ok := seen[got]; ok {
			t.Errorf("%s reads the same bytes as %s: %x", name, prev, got)
		}
		seen[got] = name
	}
}

func TestOutput(t *testing.T) {
	e := newExecutor(t, exec.Config{})
	c := add(t, e, exectest.Module(t, "wordfreq"))
	runWords := func(stdin string, scratch uint64) exec.Result {
		t.Helper()
		res, _, stderr := run(t, e, exec.RunSpec{Module: c, Stdin: []byte(stdin), ScratchBytes: scratch})
		if res.Reason != exec.ReasonExit || res.ExitCode != 0 {
			t.Fatalf("reason %q, exit %d: %s %s", res.Reason, res.ExitCode, res.Detail, stderr)
		}
		return res
	}
	a := runWords("the cat saw the dog", 1<<20)
	want := []exec.File{{Path: "words.txt", Data: []byte("2 the\n1 cat\n1 dog\n1 saw\n")}}
	if diff := cmp.Diff(want, scratchFiles(t, a)); diff != "" {
		t.Fatalf("files (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(exec.EncodeOutput(want), output(t, a)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}

	aCID := outputCID(t, a)
	if again := outputCID(t, runWords("the cat saw the dog", 1<<20)); again != aCID {
		t.Errorf("same input, output CIDs %s and %s", aCID, again)
	}
	if other := outputCID(t, runWords("the dog saw the cat", 1<<20)); other != aCID {
		t.Errorf("same words, output CIDs %s and %s", aCID, other)
	}
	if other := outputCID(t, runWords("a dog saw the cat", 1<<20)); other == aCID {
		t.Errorf("other words, same output CID %s", aCID)
	}
	// The cap does not change the output, so long as it fits.
	if other := outputCID(t, runWords("the cat saw the dog", 4<<10)); other != aCID {
		t.Errorf("another cap, output CIDs %s and %s", aCID, other)
	}
}

func TestScratchCap(t *testing.T) {
	e := newExecutor(t, exec.Config{})
	c := add(t, e, exectest.Module(t, "wordfreq"))
	var words strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&words, "w%d ", i)
	}
	// words.txt is about 180 KB: "1 w12345\n" per word.
	for _, tc := range []struct {
		scratch uint64
		reason  exec.Reason
	}{
		{scratch: 0, reason: exec.ReasonScratch},
		{scratch: 64 << 10, reason: exec.ReasonScratch},
		{scratch: 256 << 10, reason: exec.ReasonExit},
	} {
		t.Run(fmt.Sprint(tc.scratch), func(t *testing.T) {
			res, _, stderr := run(t, e, exec.RunSpec{Module: c, Stdin: []byte(words.String()), ScratchBytes: tc.scratch})
			if res.Reason != tc.reason {
				t.Fatalf("reason %q, want %q (%s; %s)", res.Reason, tc.reason, res.Detail, stderr)
			}
			size := 0
			for _, f := range scratchFiles(t, res) {
				size += len(f.Data) + len(f.Path) + 64
			}
			if uint64(size) > tc.scratch {
				t.Errorf("scratch holds %d bytes, over its cap of %d", size, tc.scratch)
			}
		})
	}
}

func TestConcurrentRuns(t *testing.T) {
	e := newExecutor(t, exec.Config{})
	hello := exectest.Module(t, "hello")
	c := wire.SumCID(hello)

	// Concurrent Adds of one module, then concurrent runs of it.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := e.Add(context.Background(), c, hello); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	const n = 8
	for i := range n {
		wg.Go(func() {
			var stdout bytes.Buffer
			res, err := e.Run(context.Background(), exec.RunSpec{
				Module: c, Args: []string{"hello", "--name", fmt.Sprint("run", i)},
				Stdin: bytes.Repeat([]byte("x\n"), i), Stdout: &stdout,
			})
			if err != nil {
				t.Error(err)
				return
			}
			want := fmt.Sprintf("hello, run%d! (%d lines on stdin)\n", i, i)
			if res.Reason != exec.ReasonExit || stdout.String() != want {
				t.Errorf("run %d: reason %q, stdout %q, want %q", i, res.Reason, stdout.String(), want)
			}
		})
	}
	wg.Wait()
}

func TestEviction(t *testing.T) {
	e := newExecutor(t, exec.Config{MaxCompiled: 2})
	spinBin := exectest.WriteLoop("running\n")
	spin := add(t, e, spinBin)
	started := make(chan struct{})
	done := make(chan exec.Result)
	go func() {
		res, err := e.Run(context.Background(), exec.RunSpec{Module: spin, Timeout: 300 * time.Millisecond, Stdout: onWrite(func() { close(started) })})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-started
	a := add(t, e, variant("a"))
	b := add(t, e, variant("b")) // evicts spin while it runs
	if e.Has(spin) || !e.Has(a) || !e.Has(b) {
		t.Errorf("Has: spin %v, a %v, b %v; want false, true, true", e.Has(spin), e.Has(a), e.Has(b))
	}
	if res := <-done; res.Reason != exec.ReasonTimeout {
		t.Errorf("the evicted module's run: reason %q, want timeout", res.Reason)
	}
	if _, err := e.Run(context.Background(), exec.RunSpec{Module: spin}); protocol.CodeOf(err) != pb.Code_CODE_MODULE_NOT_FOUND {
		t.Errorf("run of an evicted module: %v, want CODE_MODULE_NOT_FOUND", err)
	}
	add(t, e, spinBin) // back again
	if !e.Has(spin) || e.Has(a) {
		t.Errorf("Has: spin %v, a %v; want true, false", e.Has(spin), e.Has(a))
	}
}

// onWrite returns a writer that calls f on its first write.
func onWrite(f func()) io.Writer {
	var once sync.Once
	return writerFunc(func(p []byte) (int, error) {
		once.Do(f)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestCancel(t *testing.T) {
	e := newExecutor(t, exec.Config{})
	c := add(t, e, spinModule)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	res, err := e.Run(ctx, exec.RunSpec{Module: c, Timeout: time.Minute})
	if !errors.Is(err, context.Canceled) || res.Reason != exec.ReasonCanceled {
		t.Errorf("Run: reason %q, error %v; want canceled", res.Reason, err)
	}
}

func TestClose(t *testing.T) {
	e, err := exec.New(context.Background(), exec.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := add(t, e, spinModule)
	done := make(chan error)
	go func() {
		res, err := e.Run(context.Background(), exec.RunSpec{Module: c, Timeout: time.Minute})
		if err == nil {
			err = fmt.Errorf("Run returned no error, and reason %q", res.Reason)
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it start; either order is fine
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, exec.ErrClosed) {
			t.Errorf("the run cut by Close: %v, want ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a run outlived Close")
	}
	if err := e.Add(context.Background(), wire.SumCID(trapModule), trapModule); !errors.Is(err, exec.ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
	if _, err := e.Run(context.Background(), exec.RunSpec{Module: c}); !errors.Is(err, exec.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCompilationCacheDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache") // created by New
	// The second executor compiles from the cache.
	for i := range 2 {
		e := newExecutor(t, exec.Config{CacheDir: dir})
		c := add(t, e, tinyModule)
		if res, _, _ := run(t, e, exec.RunSpec{Module: c}); res.Reason != exec.ReasonExit {
			t.Errorf("executor %d: reason %q: %s", i, res.Reason, res.Detail)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Errorf("cache dir holds %d entries (%v), want some", len(entries), err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  exec.Config
		ok   bool
	}{
		{name: "zero", ok: true},
		{name: "4 GiB", cfg: exec.Config{MaxMemoryBytes: 4 << 30}, ok: true},
		{name: "over 4 GiB", cfg: exec.Config{MaxMemoryBytes: 4<<30 + 1}},
		{name: "under a page", cfg: exec.Config{MaxMemoryBytes: 100}},
		{name: "negative timeout", cfg: exec.Config{MaxTimeout: -1}},
		{name: "negative max compiled", cfg: exec.Config{MaxCompiled: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate: %v, want ok %v", err, tc.ok)
			}
			if _, err := exec.New(context.Background(), tc.cfg); !tc.ok && err == nil {
				t.Errorf("New accepted an invalid config")
			}
		})
	}
}
