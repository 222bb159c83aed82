package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDevnetBootstrap: `cuivre devnet` prints its bootstrap multiaddrs and
// writes the same ones, one a line, to bootstrap.txt in its data dir, then
// stops when its context ends.
func TestDevnetBootstrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	pr, pw := io.Pipe()
	root := newRootCmd()
	root.SetOut(pw)
	root.SetErr(pw)
	root.SetArgs([]string{"devnet", "-n", "2", "--data-dir", dir})
	done := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(ctx)
		pw.Close()
		done <- err
	}()
	var printed []string
	in := false
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "bootstrap multiaddrs") {
			in = true
			continue
		}
		if in && strings.HasPrefix(line, "  /") {
			printed = append(printed, strings.TrimSpace(line))
			continue
		}
		if in {
			break
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil && ctx.Err() == nil {
		t.Fatalf("devnet: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bootstrap.txt"))
	if err != nil {
		t.Fatal(err)
	}
	written := strings.Fields(string(b))
	if len(printed) < 2 || strings.Join(printed, "\n") != strings.Join(written, "\n") {
		t.Fatalf("printed %q, bootstrap.txt holds %q: want the same, at least one a provider", printed, written)
	}
	for _, a := range printed {
		if !strings.Contains(a, "/p2p/12D3KooW") {
			t.Errorf("%q does not end in a peer ID", a)
		}
	}
}
