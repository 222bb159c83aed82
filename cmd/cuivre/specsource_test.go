package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cuivre/cuivre/node/exec/exectest"
)

// TestSpecFromStdin: `job inspect -` reads the spec from standard input and
// resolves its relative module path against the current directory; a spec
// file's still resolve against the file's own directory.
func TestSpecFromStdin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.wasm"), exectest.Module(t, "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "specs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	const spec = "version: 1\nname: hi\ntask:\n  module: hello.wasm\n"
	writeFile(t, filepath.Join(sub, "here.yaml"), spec)
	writeFile(t, filepath.Join(sub, "up.yaml"), strings.Replace(spec, "hello.wasm", "../hello.wasm", 1))
	for _, c := range []struct {
		name, stdin, want string
		args              []string
	}{
		{"stdin resolves in the current directory", spec, "name       hi", []string{"-"}},
		{"stdin with a path relative to the spec's directory fails", strings.Replace(spec, "hello.wasm", "../hello.wasm", 1), "no such file", []string{"-"}},
		{"a file resolves in its directory", "", "name       hi", []string{filepath.Join("specs", "up.yaml")}},
		{"a file does not resolve in the current directory", "", "no such file", []string{filepath.Join("specs", "here.yaml")}},
		{"empty stdin says what to do", "", "standard input is empty: pipe a job spec", []string{"-"}},
		{"errors name stdin", "version: 1\nname: hi\ntask: {module: hello.wasm, colour: red}\n", "stdin:3:", []string{"-"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := cuivre(t, append([]string{"job", "inspect"}, c.args...)...)
			cmd.Dir, cmd.Stdin = dir, strings.NewReader(c.stdin)
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), c.want) {
				t.Errorf("job inspect %s: want %q in:\n%s", strings.Join(c.args, " "), c.want, out)
			}
		})
	}
}
