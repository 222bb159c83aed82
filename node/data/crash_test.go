package data

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
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
