package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cuivre/cuivre/node/exec/exectest"
)

// TestJobRun: `cuivre job run` against a daemon that places on another one,
// all separate processes: exit 0 with the output for a job that fits, exit 2
// with per-provider reasons for one no provider can take.
func TestJobRun(t *testing.T) {
	a, _ := twoDaemons(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.wasm"), exectest.Module(t, "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "hello.yaml")
	writeFile(t, spec, "version: 1\nname: hi\ntask:\n  module: hello.wasm\n  args: [--name, cli]\n  resources: {cpu: 500m, memory: 64Mi}\nconstraints:\n  - jurisdiction = fr\n")
	out, err := cuivre(t, "job", "run", "--data-dir", a.dir, spec).Output()
	if err != nil || string(out) != "hello, cli! (0 lines on stdin)\n" {
		t.Fatalf("job run: %v, stdout %q", err, out)
	}
	// A job over data: a local input directory added through the node, its
	// output written out at the end of the run.
	if err := os.Mkdir(filepath.Join(dir, "corpus"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "corpus", "a.txt"), "le cuivre et le courant\n")
	wordfreq, err := filepath.Abs("../../examples/wasm/wordfreq.wasm")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, spec, "version: 1\nname: words\ntask:\n  module: "+wordfreq+"\n  args: [corpus]\n  inputs:\n    - {path: corpus, source: ./corpus}\n"+
		"  outputs: [words.txt]\n  resources: {cpu: 500m, memory: 64Mi, scratch: 1Mi}\nconstraints:\n  - jurisdiction = fr\n")
	got := filepath.Join(dir, "words")
	if b, err := cuivre(t, "job", "run", "--data-dir", a.dir, "--download", got, spec).CombinedOutput(); err != nil {
		t.Fatalf("job run --download: %v\n%s", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(got, "words.txt")); err != nil || string(b) != "2 le\n1 courant\n1 cuivre\n1 et\n" {
		t.Fatalf("words.txt downloaded: %q (%v)", b, err)
	}
	writeFile(t, spec, "version: 1\nname: swiss\ntask:\n  module: hello.wasm\n  resources: {cpu: 500m, memory: 64Mi}\nconstraints:\n  - region = fr-par\n  - certification exists\n")
	cmd := cuivre(t, "job", "run", "--data-dir", a.dir, spec)
	b, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(b), "constraint mismatch") {
		t.Fatalf("unplaceable job: exit %d (%v), want 2 with reasons:\n%s", cmd.ProcessState.ExitCode(), err, b)
	}
}

// TestModuleRefused: a spec whose module path names something other than a
// WebAssembly command in a regular file is refused before anything leaves
// the machine: a private key, a device, a directory.
func TestModuleRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\n-----END OPENSSH PRIVATE KEY-----\n")
	for _, c := range []struct{ module, want string }{
		{filepath.Join(dir, "id_ed25519"), "not a WebAssembly module"},
		{"/dev/zero", "not a regular file"},
		{dir, "not a regular file"},
	} {
		spec := filepath.Join(dir, "job.yaml")
		writeFile(t, spec, "version: 1\nname: x\ntask:\n  module: "+c.module+"\n  resources: {cpu: 100m, memory: 16Mi}\n")
		cmd := cuivre(t, "job", "inspect", spec)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("module %s: %v, output:\n%s\nwant a refusal saying %q", c.module, err, out, c.want)
		}
	}
}
