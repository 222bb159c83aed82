package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataAddGet: a directory added through a daemon process comes back, by
// its CID, byte for byte; a CID the node does not hold is refused with a
// clear error, and an existing output path is not written over.
func TestDataAddGet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	d := startDaemon(t, initDir(t), "")
	src := filepath.Join(t.TempDir(), "inputs")
	big := bytes.Repeat([]byte("cuivre "), 200_000) // 1.4 MB: six chunks
	for name, b := range map[string][]byte{"a.txt": []byte("a\n"), "sub/big.txt": big} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := cuivre(t, "data", "add", "--data-dir", d.dir, src).Output()
	if err != nil {
		t.Fatalf("data add: %v", err)
	}
	root := strings.TrimSpace(string(out))
	if !strings.HasPrefix(root, "bafybei") {
		t.Fatalf("data add printed %q, want a CIDv1 of a directory", out)
	}
	t.Logf("added %s as %s", src, root)
	dst := filepath.Join(t.TempDir(), "back")
	if b, err := cuivre(t, "data", "get", "--data-dir", d.dir, root, "-o", dst).CombinedOutput(); err != nil {
		t.Fatalf("data get: %v\n%s", err, b)
	}
	for name, want := range map[string][]byte{"a.txt": []byte("a\n"), "sub/big.txt": big} {
		if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes back (%v), want %d", name, len(got), err, len(want))
		}
	}
	if b, err := cuivre(t, "data", "get", "--data-dir", d.dir, root, "-o", dst).CombinedOutput(); err == nil || !strings.Contains(string(b), "exists") {
		t.Errorf("data get over an existing path: %v\n%s", err, b)
	}
	unknown := "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
	if b, err := cuivre(t, "data", "get", "--data-dir", d.dir, unknown, "-o", filepath.Join(t.TempDir(), "x")).CombinedOutput(); err == nil || !strings.Contains(string(b), "not held") {
		t.Errorf("data get of a CID not held: %v\n%s", err, b)
	}
}

// TestDataBetweenDaemons: data added on one daemon with --public is fetched
// by another, daemons in processes of their own on loopback, over
// /cuivre/blocks, and comes out byte for byte; data added without it is
// refused to the other.
func TestDataBetweenDaemons(t *testing.T) {
	a, b := twoDaemons(t)
	src := filepath.Join(t.TempDir(), "results")
	big := bytes.Repeat([]byte("cuivre "), 300_000) // 2.1 MB: nine chunks
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "table.txt"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := cuivre(t, "data", "add", "--data-dir", a.dir, src).Output()
	if err != nil {
		t.Fatalf("data add on A: %v", err)
	}
	root := strings.TrimSpace(string(out))
	dst := filepath.Join(t.TempDir(), "back")
	if b, err := cuivre(t, "data", "get", "--data-dir", b.dir, "--from", a.id.ID, root, "-o", dst).CombinedOutput(); err == nil || !strings.Contains(string(b), "unauthorized") {
		t.Fatalf("data get on B of a root A did not share: %v\n%s", err, b)
	}
	if out, err = cuivre(t, "data", "add", "--public", "--data-dir", a.dir, src).Output(); err != nil || strings.TrimSpace(string(out)) != root {
		t.Fatalf("data add --public on A: %v, %q", err, out)
	}
	if b, err := cuivre(t, "data", "get", "--data-dir", b.dir, "--from", a.id.ID, root, "-o", dst).CombinedOutput(); err != nil {
		t.Fatalf("data get on B from A: %v\n%s", err, b)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "table.txt")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("table.txt: %d bytes back (%v), want %d", len(got), err, len(big))
	}
}
