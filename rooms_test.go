// The rooms test: imports flow one way (protocol <- scheduler <- node,
// simulations <- cmd), the scheduler's own files stay sans I/O, and nothing
// the scheduler depends on is libp2p or multiformats code. It reads the
// real import graph with go list, so the rule cannot rot (docs/ARCHITECTURE.md, "Rooms").
package cuivre_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cuivre/cuivre"

// forbidden lists, for each room, the rooms it must not depend on, directly or
// through anything it imports.
var forbidden = map[string][]string{
	"protocol":    {"scheduler", "node", "simulations", "cmd", "examples"},
	"scheduler":   {"node", "simulations", "cmd", "examples"},
	"node":        {"simulations", "cmd", "examples"},
	"simulations": {"node", "cmd", "examples"},
	"examples":    {"cmd"},
	// The conformance kit checks implementations against SPEC.md through
	// the wire only: it knows the protocol room and libraries, not our node.
	"conformance": {"scheduler", "node", "simulations", "cmd", "examples"},
}

// inner lists, for the node's rooms, what each must not depend on, directly
// or through anything it imports: module paths relative to the module, or
// outside packages by prefix. The drivers see the network only through
// node/transport and time only through node/clock; the transports know
// nothing of the drivers; neither driver knows the other.
var inner = map[string][]string{
	"node/requester": {"node/provider", "node/p2p", "node/memnet", "node/api", "node/devnet", "node/nodetest",
		"github.com/libp2p/go-libp2p/p2p/", "github.com/libp2p/go-libp2p-kad-dht"},
	"node/provider": {"node/requester", "node/p2p", "node/memnet", "node/api", "node/devnet", "node/nodetest",
		"github.com/libp2p/go-libp2p/p2p/", "github.com/libp2p/go-libp2p-kad-dht"},
	"node/p2p":       {"node/requester", "node/provider", "node/memnet", "node/api", "node/store", "node/exec"},
	"node/memnet":    {"node/requester", "node/provider", "node/p2p", "node/api", "node/store", "node/exec", "github.com/libp2p/"},
	"node/transport": {"node/", "github.com/libp2p/", "scheduler"},
	"node/clock":     {"node/", "protocol", "scheduler"},
	"node/conv":      {"node/"},
	"node/api":       {"node/p2p", "node/memnet", "node/devnet", "node/exec"},
	// A statement is built from the store's records alone: no driver, no
	// network, no executor.
	"node/billing": {"node/requester", "node/provider", "node/p2p", "node/memnet", "node/api", "node/exec", "node/data",
		"github.com/libp2p/go-libp2p/p2p/", "github.com/libp2p/go-libp2p-kad-dht"},
	"node/data": {"node/requester", "node/provider", "node/p2p", "node/memnet", "node/api", "node/exec", "github.com/libp2p/go-libp2p"},
}

// innerRoom returns the key of inner that an import path belongs to, or "".
func innerRoom(importPath string) string {
	rest, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return ""
	}
	for r := range inner {
		if rest == r || strings.HasPrefix(rest, r+"/") {
			return r
		}
	}
	return ""
}

// reaches reports whether dep is the package (or under the prefix) named by
// rule: a module-relative path, or an outside prefix.
func reaches(dep, rule string) bool {
	if strings.Contains(rule, ".") { // an outside module path
		return strings.HasPrefix(dep, rule)
	}
	rest, ok := strings.CutPrefix(dep, module+"/")
	if !ok {
		return false
	}
	if strings.HasSuffix(rule, "/") {
		return strings.HasPrefix(rest, rule)
	}
	return rest == rule || strings.HasPrefix(rest, rule+"/")
}

// impure is what the scheduler's own files must not import: the network, files,
// processes, libp2p, and the global random source.
func impure(path string) bool {
	switch {
	case path == "net", strings.HasPrefix(path, "net/"),
		path == "os", strings.HasPrefix(path, "os/"),
		path == "io/ioutil", path == "syscall", path == "unsafe",
		path == "math/rand", path == "crypto/rand",
		strings.HasPrefix(path, "github.com/libp2p/"),
		strings.HasPrefix(path, "github.com/quic-go/"):
		return true
	}
	return false
}

// foreign reports whether a package is libp2p or multiformats code, which the
// scheduler must not reach even through package protocol: the placement core
// is the same in the simulator, which speaks no libp2p.
func foreign(path string) bool {
	return strings.HasPrefix(path, "github.com/libp2p/") || strings.HasPrefix(path, "github.com/multiformats/")
}

// forbiddenCalls are the clock, sleeping and timer functions of package time.
var forbiddenCalls = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTicker", "NewTimer"}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func room(importPath string) string {
	rest, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return ""
	}
	r, _, _ := strings.Cut(rest, "/")
	return r
}

// violations checks the room rules on a package graph and returns one line per
// broken rule, sorted.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		from := room(p.ImportPath)
		for _, dep := range append(slices.Clone(p.Imports), p.Deps...) {
			if slices.Contains(forbidden[from], room(dep)) {
				out = append(out, fmt.Sprintf("%s depends on %s: room %s must not reach room %s", p.ImportPath, dep, from, room(dep)))
			}
		}
		if r := innerRoom(p.ImportPath); r != "" {
			for _, dep := range append(slices.Clone(p.Imports), p.Deps...) {
				for _, rule := range inner[r] {
					if reaches(dep, rule) && innerRoom(dep) != r {
						out = append(out, fmt.Sprintf("%s depends on %s: %s must not reach %s", p.ImportPath, dep, r, rule))
					}
				}
			}
		}
		if from == "scheduler" {
			for _, imp := range p.Imports {
				if impure(imp) {
					out = append(out, fmt.Sprintf("%s imports %s: the scheduler core is sans I/O", p.ImportPath, imp))
				}
			}
			for _, dep := range p.Deps {
				if foreign(dep) {
					out = append(out, fmt.Sprintf("%s depends on %s: the scheduler's closure holds no libp2p or multiformats package", p.ImportPath, dep))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// impureCalls parses the scheduler's non-test files and reports clock reads,
// sleeps, timers and go statements.
func impureCalls(t *testing.T, p pkg) []string {
	var out []string
	fset := token.NewFileSet()
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		timeName := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"time"` {
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				out = append(out, fmt.Sprintf("%s: go statement", fset.Position(n.Pos())))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && slices.Contains(forbiddenCalls, n.Sel.Name) {
					out = append(out, fmt.Sprintf("%s: time.%s", fset.Position(n.Pos()), n.Sel.Name))
				}
			}
			return true
		})
	}
	return out
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if room(p.ImportPath) != "" {
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

func TestRooms(t *testing.T) {
	pkgs := listPackages(t)
	rooms := map[string]bool{}
	for _, p := range pkgs {
		rooms[room(p.ImportPath)] = true
	}
	for _, r := range []string{"protocol", "scheduler", "node", "simulations", "cmd", "examples"} {
		if !rooms[r] {
			t.Errorf("room %s has no package", r)
		}
	}
	for _, p := range pkgs {
		if p.ImportPath == module+"/scheduler" && !slices.Contains(p.Deps, module+"/protocol") {
			t.Errorf("go list gives %s no dependency closure to check (Deps: %d packages)", p.ImportPath, len(p.Deps))
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
	for _, p := range pkgs {
		if room(p.ImportPath) == "scheduler" {
			for _, v := range impureCalls(t, p) {
				t.Errorf("scheduler is sans I/O: %s", v)
			}
		}
	}
}

// TestRoomsCatchesViolations shows the checker is not vacuous: a graph that
// breaks each rule is reported.
func TestRoomsCatchesViolations(t *testing.T) {
	bad := []pkg{
		{ImportPath: module + "/protocol", Deps: []string{module + "/scheduler"}},
		{ImportPath: module + "/scheduler", Imports: []string{"net", "github.com/libp2p/go-libp2p/core/host", "math/rand"}},
		{ImportPath: module + "/scheduler/market", Deps: []string{module + "/node"}},
		{ImportPath: module + "/simulations", Deps: []string{module + "/node/exec"}},
		{ImportPath: module + "/node", Imports: []string{module + "/simulations"}},
		{ImportPath: module + "/node/requester", Deps: []string{module + "/node/provider", "github.com/libp2p/go-libp2p/p2p/host/basic"}},
		{ImportPath: module + "/node/p2p", Deps: []string{module + "/node/requester"}},
		{ImportPath: module + "/node/memnet", Deps: []string{"github.com/libp2p/go-libp2p/core/host"}},
		{ImportPath: module + "/node/requester", Deps: []string{module + "/node/transport", module + "/node/clock"}}, // allowed
		// Through package protocol, libp2p and multiformats code; the node may.
		{ImportPath: module + "/scheduler/ranking", Imports: []string{module + "/protocol"},
			Deps: []string{module + "/protocol", "github.com/libp2p/go-libp2p/core/peer", "github.com/multiformats/go-multihash", "google.golang.org/protobuf/proto"}},
		{ImportPath: module + "/node/store", Deps: []string{"github.com/libp2p/go-libp2p/core/peer"}},
	}
	got := violations(bad)
	if len(got) != 13 {
		t.Fatalf("got %d violations, want 13:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func TestImpureCallsCatchesClockAndGoroutines(t *testing.T) {
	dir := t.TempDir()
	src := `package scheduler

import clock "time"

func f() {
	go func() {}()
	_ = clock.Now()
	clock.Sleep(1)
	_ = clock.Duration(3) // allowed: a value type
}
`
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := impureCalls(t, pkg{Dir: dir, GoFiles: []string{"bad.go"}})
	if len(got) != 3 {
		t.Fatalf("got %d findings, want 3:\n%s", len(got), strings.Join(got, "\n"))
	}
}
