package exectest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// CacheEnv names the environment variable that, when set, is the directory
// CacheDir keeps its cache under instead of the user's cache directory: an
// empty directory gives a cold run, for measuring one.
const CacheEnv = "CUIVRE_TEST_WAZERO_CACHE"

const wazeroPath = "github.com/tetratelabs/wazero"

var cache struct {
	once sync.Once
	dir  string
	note string      // why the cache is private to this process, if it is
	told atomic.Bool // whether a test was told the note
	err  error
}

// CacheDir returns a wazero compilation cache directory (for
// exec.Config.CacheDir) shared by every test binary of the repository, at
// once and from one run to the next: <user cache dir>/cuivre-test/wazero/
// <Go version>-<wazero version>, or the same below $CUIVRE_TEST_WAZERO_CACHE.
// A module is compiled once per machine, and the `go test -race` run of
// `make test` loads what the plain run compiled (wazero's machine code does
// not depend on the race detector).
//
// Sharing it is safe:
//
//   - Concurrent test binaries: wazero writes an entry to a temporary file in
//     the same directory, syncs it, and renames it to its name, so a reader
//     opens a whole entry or none; two binaries compiling one module at once
//     both write a whole entry and the last rename wins. A binary killed
//     mid-write leaves a *.tmp file that is never read.
//   - Stale entries: wazero keys an entry by the SHA-256 of the module's
//     bytes, whether the runtime closes modules on context done (the
//     executor always does), and the CPU features the code was compiled for;
//     it keeps its entries in a subdirectory named after its version, GOARCH
//     and GOOS, and rejects an entry of another version. But it reads its
//     version from the binary's build information, which a test binary does
//     not have: in every test, wazero's version is "dev", and an entry of
//     another wazero would be taken for its own. So the directory CacheDir
//     returns is named after the Go version and the wazero version that the
//     repository's go.mod requires (or that the binary records, outside
//     tests), a replacement's included. When wazero is replaced by a local
//     directory, or a go.work may replace it, there is no version to go by,
//     and the cache is a new directory private to the process.
//   - A damaged entry fails its compilation with a checksum error: it is
//     never run. Removing the directory is always safe.
//   - wazero runs the native code of an entry without further checks, so the
//     directories are created 0700, and CacheDir fails the test if one is
//     writable by others.
//
// Each wazero and Go version leaves a directory behind, tens of megabytes
// for the example workloads; nothing prunes them.
func CacheDir(tb testing.TB) string {
	tb.Helper()
	cache.once.Do(openCache)
	if cache.err != nil {
		tb.Fatalf("exectest: compilation cache: %v", cache.err)
	}
	if cache.note != "" && !cache.told.Swap(true) {
		tb.Logf("exectest: compilation cache private to this test binary, %s: %s", cache.dir, cache.note)
	}
	return cache.dir
}

func openCache() {
	key, ok := cacheKey()
	if !ok {
		cache.note = key
		cache.dir, cache.err = os.MkdirTemp("", "cuivre-test-wazero-")
		return
	}
	root := os.Getenv(CacheEnv)
	if root == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			cache.note = fmt.Sprintf("no user cache directory (%v)", err)
			cache.dir, cache.err = os.MkdirTemp("", "cuivre-test-wazero-")
			return
		}
		root = filepath.Join(base, "cuivre-test", "wazero")
	}
	dir := filepath.Join(root, key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		cache.err = err
		return
	}
	for _, d := range []string{root, dir} {
		fi, err := os.Stat(d)
		if err != nil {
			cache.err = err
			return
		}
		if fi.Mode().Perm()&0o022 != 0 {
			cache.err = fmt.Errorf("%s is writable by others (%s), and wazero runs the code it finds there: chmod go-w it, or remove it", d, fi.Mode().Perm())
			return
		}
	}
	cache.dir = dir
}

// cacheKey returns the name of the cache directory for this binary's Go and
// wazero, or, with false, why it has none.
func cacheKey() (string, bool) {
	version, why := wazeroVersion()
	if version == "" {
		return why, false
	}
	clean := strings.NewReplacer("/", "_", "\\", "_", ":", "_").Replace(version)
	return runtime.Version() + "-wazero-" + clean, true
}

// wazeroVersion returns the version of wazero this binary was built with, as
// path@version when it is replaced by another module, or "" and why it cannot
// tell. A test binary records no dependencies, so then it reads the
// repository's go.mod, which the test binary was built from.
func wazeroVersion() (version, why string) {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path != wazeroPath {
				continue
			}
			if r := dep.Replace; r != nil {
				if r.Version == "" {
					return "", "wazero is replaced by the directory " + r.Path
				}
				return r.Path + "@" + r.Version, ""
			}
			return dep.Version, ""
		}
	}
	root, err := repoRoot()
	if err != nil {
		return "", err.Error()
	}
	for dir := root; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil && os.Getenv("GOWORK") != "off" {
			return "", "a workspace (" + filepath.Join(dir, "go.work") + ") may replace wazero"
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if w := os.Getenv("GOWORK"); w != "" && w != "off" {
		return "", "a workspace (GOWORK=" + w + ") may replace wazero"
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err.Error()
	}
	return modVersion(string(b), wazeroPath)
}

// modVersion returns the version of the module path that the go.mod text
// requires, or its replacement's as path@version, or "" and why not.
func modVersion(gomod, path string) (version, why string) {
	block := ""
	for line := range strings.Lines(gomod) {
		line, _, _ = strings.Cut(line, "//")
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case len(f) == 2 && f[1] == "(":
			block = f[0]
			continue
		case f[0] == ")":
			block = ""
			continue
		}
		verb := block
		if block == "" {
			verb, f = f[0], f[1:]
		}
		if len(f) == 0 || f[0] != path {
			continue
		}
		switch verb {
		case "require":
			if len(f) >= 2 && version == "" {
				version = f[1]
			}
		case "replace":
			i := slices.Index(f, "=>")
			switch {
			case i < 0 || len(f) < i+2:
				return "", "go.mod replaces " + path + " in a way not understood"
			case len(f) == i+2:
				return "", "go.mod replaces " + path + " by the directory " + f[i+1]
			default:
				return f[i+1] + "@" + f[i+2], ""
			}
		}
	}
	if version == "" {
		return "", "go.mod does not require " + path
	}
	return version, ""
}
