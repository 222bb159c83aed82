package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/cuivre/cuivre/node/exec/exectest"
)

// TestJobRunLiveOnATerminal runs `cuivre job run` on a pseudo-terminal, as a
// customer at a shell would: the run's output shows while the job still
// runs, under a status line rewritten in place that says the slot is running
// and on whom; the job stopped from elsewhere ends the command with exit 1.
func TestJobRunLiveOnATerminal(t *testing.T) {
	_, b := twoDaemons(t)
	dir := t.TempDir()
	const line = "hello, live"
	if err := os.WriteFile(filepath.Join(dir, "loop.wasm"), exectest.WriteLoop(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "loop.yaml")
	if err := os.WriteFile(spec, []byte("version: 1\nname: live\ntask:\n  module: loop.wasm\n  resources: {cpu: 250m, memory: 32Mi, timeout: 10m}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := cuivre(t, "job", "run", "--data-dir", b.dir, spec)
	term, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer term.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	// Read the terminal until the output and a running status show; each
	// read waits for what the command writes, not for a time. Should they
	// never show, the terminal is closed after a while, so that the test
	// fails with what it saw rather than hang.
	guard := time.AfterFunc(2*time.Minute, func() { term.Close() })
	defer guard.Stop()
	var seen strings.Builder
	submitted := regexp.MustCompile(`job (\S+) submitted`)
	running := regexp.MustCompile(`\r\x1b\[K  … slot 0 running on \w{8} for \d+s`)
	r := bufio.NewReader(term)
	for !(strings.Contains(seen.String(), line) && running.MatchString(seen.String())) {
		chunk := make([]byte, 4096)
		n, err := r.Read(chunk)
		seen.Write(chunk[:n])
		if err != nil {
			t.Fatalf("the terminal closed (%v) before the output and a running status showed:\n%q", err, seen.String())
		}
	}
	m := submitted.FindStringSubmatch(seen.String())
	if m == nil {
		t.Fatalf("no job CID on the terminal:\n%q", seen.String())
	}
	if _, _, err := execute("job", "stop", "--data-dir", b.dir, m[1]); err != nil {
		t.Fatal(err)
	}
	go func() { // drain the terminal until the command has gone
		buf := make([]byte, 4096)
		for {
			if _, err := term.Read(buf); err != nil {
				return
			}
		}
	}()
	var exit *exec.ExitError
	if err := <-exited; !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("job run of a job stopped elsewhere exited with %v, want exit code 1", err)
	}
	if i := strings.Index(seen.String(), line); strings.Contains(seen.String()[:i], "state") {
		t.Errorf("the output showed only after the job's final status:\n%q", seen.String())
	}
}
