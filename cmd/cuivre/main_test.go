package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cuivre/cuivre/node/exec/exectest"
)

// testMainEnv names the environment variable that makes the test binary
// stand in for cuivre (see TestMain).
const testMainEnv = "CUIVRE_TEST_MAIN"

// TestMain lets the test binary stand in for cuivre: with CUIVRE_TEST_MAIN=1
// it runs its command line as main does, instead of the tests. The daemon
// tests and the smoke test of bench run their daemons so, from
// os.Executable(), in processes of their own that they can kill, without
// building a binary.
func TestMain(m *testing.M) {
	if os.Getenv(testMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// execute runs a command line in this process and returns its standard
// output, its standard error and what it returned.
func execute(args ...string) (stdout, stderr string, err error) {
	var out, errOut strings.Builder
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cuivre ", "commit ", "/cuivre/offer/1.0.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestJobInspect(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.wasm"), exectest.Empty(), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("version: 1\nname: t\ntask:\n  module: m.wasm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "job", "inspect", "--sign", good)
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	for _, want := range []string{"job cid    bafkrei", "opened and verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nname: t\ntask:\n  module: m.wasm\n  resources:\n    memory: 12Q\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "job", "inspect", bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:6:") {
		t.Fatalf("bad spec: got %v, want an error at line 6", err)
	}

	missing := filepath.Join(dir, "missing.yaml")
	if err := os.WriteFile(missing, []byte("version: 1\nname: t\ntask:\n  module: nowhere.wasm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "job", "inspect", missing); err == nil || !strings.Contains(err.Error(), "nowhere.wasm") {
		t.Fatalf("missing module: got %v", err)
	}
}
