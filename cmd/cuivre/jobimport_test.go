package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJobImport: job import writes the converted spec to standard output or
// -o's file, its notes on standard error a line each and as comments; a job
// it cannot convert exits 1 with nothing written.
func TestJobImport(t *testing.T) {
	src := filepath.Join("..", "..", "protocol", "jobspec", "bacalhau", "testdata")
	out, errOut, err := execute("job", "import", filepath.Join(src, "wasm-full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 17 || !strings.HasSuffix(lines[0], `wasm-full.yaml: Name: "Word Count" becomes "word-count": a cuivre job's name is a-z, 0-9 and '-'`) {
		t.Errorf("stderr: %d lines, want 17, the first the name's:\n%s", len(lines), errOut)
	}
	if !strings.Contains(out, "# Tasks[0].Publisher: ipfs: not carried") || !strings.Contains(out, "\nname: word-count\n") {
		t.Errorf("stdout: want the spec with its notes as comments:\n%s", out)
	}

	file := filepath.Join(t.TempDir(), "job.yaml")
	if out, _, err := execute("job", "import", "-o", file, "--module", "x.wasm", filepath.Join(src, "url-module.yaml")); err != nil || out != "" {
		t.Fatalf("import -o: %v, stdout %q", err, out)
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "module: x.wasm") {
		t.Fatalf("%s: %v\n%s", file, err, b)
	}

	out, _, err = execute("job", "import", filepath.Join(src, "docker.yaml"))
	if err == nil || exitCode(err) != 1 || out != "" || !strings.Contains(err.Error(), "cuivre runs WebAssembly modules") {
		t.Fatalf("a docker job: exit %d (%v), stdout %q", exitCode(err), err, out)
	}
}
