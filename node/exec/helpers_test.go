package exec_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/protocol/wire"
)

// The example workloads under examples/wasm, built once per test binary with
// GOOS=wasip1 GOARCH=wasm into a temporary directory, and a compilation cache
// shared by every executor of the run, so each module compiles once.
var workloads struct {
	once     sync.Once
	dir      string
	cacheDir string
	skip     string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if workloads.dir != "" {
		os.RemoveAll(workloads.dir)
	}
	os.Exit(code)
}

func buildWorkloads() {
	gotool, err := osexec.LookPath("go")
	if err != nil {
		workloads.skip = "the go tool is not on PATH: cannot build the WebAssembly workloads of examples/wasm"
		return
	}
	dir, err := os.MkdirTemp("", "cuivre-exec-test-")
	if err != nil {
		workloads.err = err
		return
	}
	workloads.dir = dir
	workloads.cacheDir = filepath.Join(dir, "cache")
	cmd := osexec.Command(gotool, "build", "-o", filepath.Join(dir, "wasm")+string(filepath.Separator), "./examples/wasm/...")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		workloads.err = fmt.Errorf("GOOS=wasip1 GOARCH=wasm go build ./examples/wasm/...: %v\n%s", err, out)
	}
}

// workload returns the bytes of examples/wasm/<name> built for wasip1.
func workload(tb testing.TB, name string) []byte {
	tb.Helper()
	workloads.once.Do(buildWorkloads)
	if workloads.skip != "" {
		tb.Skip(workloads.skip)
	}
	if workloads.err != nil {
		tb.Fatal(workloads.err)
	}
	b, err := os.ReadFile(filepath.Join(workloads.dir, "wasm", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// newExecutor returns an executor closed at the end of the test, sharing the
// run's compilation cache unless cfg names another.
func newExecutor(tb testing.TB, cfg exec.Config) *exec.Executor {
	tb.Helper()
	workloads.once.Do(buildWorkloads)
	if cfg.CacheDir == "" && workloads.cacheDir != "" {
		cfg.CacheDir = workloads.cacheDir
	}
	if cfg.CompileWorkers == 0 {
		cfg.CompileWorkers = runtime.GOMAXPROCS(0) // compiling dominates the run time under -race
	}
	e, err := exec.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return e
}

// add adds bin to e and returns its CID.
func add(tb testing.TB, e *exec.Executor, bin []byte) cid.Cid {
	tb.Helper()
	c := wire.SumCID(bin)
	if err := e.Add(context.Background(), c, bin); err != nil {
		tb.Fatalf("Add: %v", err)
	}
	return c
}

// Hand-assembled modules, small enough to read and to compile at once.

// wasmBinary returns a module made of sections, each built by section.
func wasmBinary(sections ...[]byte) []byte {
	return bytes.Join(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...), nil)
}

// section returns one section; its body must be shorter than 128 bytes.
func section(id byte, body ...byte) []byte {
	return append([]byte{id, byte(len(body))}, body...)
}

var (
	typeVoid     = section(1, 0x01, 0x60, 0x00, 0x00) // one type: () -> ()
	funcOne      = section(3, 0x01, 0x00)             // one function of type 0
	exportStart  = section(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00)
	bodyReturn   = section(10, 0x01, 0x02, 0x00, 0x0b)
	bodyTrap     = section(10, 0x01, 0x03, 0x00, 0x00, 0x0b)                         // unreachable
	bodySpin     = section(10, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b) // loop { br 0 }
	memory100    = section(5, 0x01, 0x00, 0x64)                                      // 100 pages, 6.25 MiB
	tinyModule   = wasmBinary(typeVoid, funcOne, exportStart, bodyReturn)
	trapModule   = wasmBinary(typeVoid, funcOne, exportStart, bodyTrap)
	spinModule   = wasmBinary(typeVoid, funcOne, exportStart, bodySpin)
	bigMemModule = wasmBinary(typeVoid, funcOne, memory100, exportStart, bodyReturn)
	// noStartModule exports its function as "begin", not "_start".
	noStartModule = wasmBinary(typeVoid, funcOne, section(7, 0x01, 0x05, 'b', 'e', 'g', 'i', 'n', 0x00, 0x00), bodyReturn)
	// envImportModule imports env.f, which no executor provides.
	envImportModule = wasmBinary(typeVoid,
		section(2, 0x01, 0x03, 'e', 'n', 'v', 0x01, 'f', 0x00, 0x00),
		funcOne,
		section(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01),
		bodyReturn)
)

// variant returns tinyModule with a custom section named name: another
// module, another CID, the same behaviour.
func variant(name string) []byte {
	return append(bytes.Clone(tinyModule), section(0, append([]byte{byte(len(name))}, name...)...)...)
}
