package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// crashChild is set in the environment of the process TestAddSurvivesCrash
// starts: it adds a file and a pin, then exits without closing the store.
const crashChild = "CUIVRE_DATA_CRASH_CHILD"

// crashData is what the child adds: several chunks, more than a memtable
// flush of the last block would hold.
var crashData = bytes.Repeat([]byte("0123456789abcdef"), 100_000)

// TestAddSurvivesCrash: the store keeps no write-ahead log, so an add must
// be on disk when it returns. A process adds a file and pins it, then dies
// without closing the store; the store reopened holds both.
func TestAddSurvivesCrash(t *testing.T) {
	if dir := os.Getenv(crashChild); dir != "" {
		s, err := Open(dir)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		c, err := s.AddReader(context.Background(), bytes.NewReader(crashData))
		if err == nil {
			err = s.Pin(context.Background(), c, "lease")
		}
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(c)
		os.Exit(0) // no Close: what a kill -9 leaves
	}
	dir := t.TempDir()
	c := crash(t, dir)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fsys, err := s.FS(context.Background(), c)
	if err != nil {
		t.Fatalf("the added file after a crash: %v", err)
	}
	f, err := fsys.Open(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, crashData) {
		t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(crashData))
	}
	pins, err := s.Pins(context.Background())
	if err != nil || len(pins) != 1 || !pins[0].Root.Equals(c) {
		t.Fatalf("pins after a crash: %v (%v)", pins, err)
	}
}

// crash runs the child of TestAddSurvivesCrash on the store in dir, and
// returns the root it added.
func crash(t *testing.T, dir string) cid.Cid {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAddSurvivesCrash$")
	cmd.Env = append(os.Environ(), crashChild+"="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	c, err := cid.Decode(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	return c
}

// TestTornBlockRemoved: a block written since the last sync may be torn by
// a crash (written, renamed, its bytes never on disk). The store reopened
// after an unclean stop checks those blocks and removes the torn one, so
// that it reads as missing, never as wrong bytes, and an add brings it
// back; a store closed cleanly checks nothing.
func TestTornBlockRemoved(t *testing.T) {
	dir := t.TempDir()
	c := crash(t, dir)
	leaves, err := filepath.Glob(filepath.Join(dir, "blocks", "*", "*.data"))
	if err != nil || len(leaves) < 2 {
		t.Fatalf("block files: %v (%v)", leaves, err)
	}
	var torn string // a leaf: the root must stay for the DAG to be read
	var fi fs.FileInfo
	for i, p := range leaves {
		if fi, err = os.Stat(p); err == nil && fi.Size() == ChunkSize {
			torn = p
			leaves = append(leaves[:i], leaves[i+1:]...)
			break
		}
	}
	if torn == "" {
		t.Fatalf("no leaf among %v", leaves)
	}
	if err := os.Truncate(torn, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(torn); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the torn block after reopening: %v, want removed", err)
	}
	fsys, err := s.FS(context.Background(), c)
	if err == nil {
		_, err = fs.ReadFile(fsys, ".")
	}
	if err == nil {
		t.Fatal("the DAG with its torn block removed read whole")
	}
	h, err := b32.DecodeString(strings.TrimSuffix(filepath.Base(torn), ".data"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Has(context.Background(), cid.NewCidV1(cid.Raw, h)); ok || err != nil {
		t.Fatalf("Has the torn block: %v (%v), want false", ok, err)
	}
	var held uint64
	for _, p := range leaves {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("a whole block after reopening: %v", err)
		}
		held += footprint(fi.Size())
	}
	if s.Used() != held {
		t.Fatalf("Used %d, want the %d bytes of the blocks left", s.Used(), held)
	}
	again, err := s.AddReader(context.Background(), bytes.NewReader(crashData))
	if err != nil || !again.Equals(c) {
		t.Fatalf("added again: %s (%v), want %s", again, err, c)
	}
	if _, err := os.Stat(torn); err != nil {
		t.Fatalf("the block added again: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Closed cleanly: nothing is checked at the next open, so a block
	// damaged since stays, and reads as an error, not as its bytes.
	if err := os.Truncate(torn, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(torn); err != nil {
		t.Fatalf("a clean open removed a block: %v", err)
	}
	fsys, err = s.FS(context.Background(), c)
	if err == nil {
		_, err = fs.ReadFile(fsys, ".")
	}
	if err == nil {
		t.Fatal("a damaged block read back without an error")
	}
}
