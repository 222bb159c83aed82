// Package exectest gives tests WebAssembly modules to run and an executor
// that compiles each of them once, as net/http/httptest gives them servers.
//
// A test gets its modules in one of two ways, and never builds one:
//
//   - Module returns an example workload committed under examples/wasm: a
//     real Go program (hello, sieve, wordfreq, escape, fsprobe), for what
//     only the Go WASI runtime shows. `make examples` rebuilds them and
//     `make examples-check` checks that they match their sources.
//   - Empty, Loop, WriteLoop, Sleep, Trap, Exit, Write, Random and Hog
//     return modules of a few hundred bytes, written by hand, for a job that
//     only needs to return, run until it is stopped, exit with a status,
//     print, print random bytes, or grow its memory. They compile at once.
//
// A cold wazero compilation of a Go-built module takes over a second, and
// over ten under -race, so every executor a test makes should use CacheDir:
// NewExecutor does. The cache outlives the test binary, so a module is
// compiled once on a machine, not once per test, package or run.
//
// exectest imports nothing of examples: it reads the committed files at run
// time, so node's packages may use it from their tests.
package exectest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/cuivre/cuivre/node/exec"
)

// modulePath is the repository's module path, as its go.mod declares it.
const modulePath = "github.com/cuivre/cuivre"

var (
	modulesMu sync.Mutex
	modules   = map[string][]byte{} // by example name
)

// Module returns the bytes of examples/wasm/<name>.wasm, an example workload
// built with GOOS=wasip1 and committed, found by walking up from the working
// directory (a test's package directory) to the repository's go.mod. It fails
// the test if the module is not committed: add it to EXAMPLES in the Makefile
// and run `make examples`. The caller owns the returned slice.
func Module(tb testing.TB, name string) []byte {
	tb.Helper()
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if b, ok := modules[name]; ok {
		return bytes.Clone(b)
	}
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("exectest: module %s: %v", name, err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "wasm", name+".wasm"))
	if errors.Is(err, os.ErrNotExist) {
		tb.Fatalf("exectest: examples/wasm/%s.wasm is not committed: add %s to EXAMPLES in the Makefile and run make examples", name, name)
	}
	if err != nil {
		tb.Fatalf("exectest: module %s: %v", name, err)
	}
	if !bytes.HasPrefix(b, []byte("\x00asm")) {
		tb.Fatalf("exectest: examples/wasm/%s.wasm is not a WebAssembly module (a Git LFS pointer?)", name)
	}
	modules[name] = b
	return bytes.Clone(b)
}

// repoRoot returns the directory of the repository's go.mod, the first found
// walking up from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			if !bytes.Contains(b, []byte("module "+modulePath+"\n")) {
				return "", fmt.Errorf("%s/go.mod is not the go.mod of %s", dir, modulePath)
			}
			return dir, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// NewExecutor returns an executor closed when the test ends. A zero
// cfg.CacheDir becomes CacheDir(tb), and a zero cfg.CompileWorkers
// GOMAXPROCS: a test waits for its compilations, and no job of a provider
// competes with them for the CPU.
func NewExecutor(tb testing.TB, cfg exec.Config) *exec.Executor {
	tb.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = CacheDir(tb)
	}
	if cfg.CompileWorkers == 0 {
		cfg.CompileWorkers = runtime.GOMAXPROCS(0)
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
