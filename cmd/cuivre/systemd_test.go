package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node"
)

// TestSystemdNotify: a daemon started as systemd starts a Type=notify
// service with WatchdogSec= (NOTIFY_SOCKET, WATCHDOG_USEC) says READY=1, with
// its peer ID in STATUS=, once its node runs, and nothing before; then pets
// the watchdog again and again; answers SIGHUP with RELOADING=1 (and
// MONOTONIC_USEC=, for Type=notify-reload) then READY=1, and SIGTERM with
// STOPPING=1, then exits 0. On the way, its metrics address (metrics.listen)
// is in DIR/metrics.addr by READY=1 and serves cuivre_build_info and
// cuivre_peers without a token.
func TestSystemdNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a safety net only
	defer cancel()

	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan []string, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			select {
			case msgs <- strings.Split(strings.TrimSpace(string(buf[:n])), "\n"):
			case <-ctx.Done():
				return
			}
		}
	}()

	dir := initDir(t)
	cmd := cuivre(t, daemonArgs(t, dir, "", "metrics.listen=127.0.0.1:0")...)
	// WATCHDOG_PID is left empty: the child's PID is not known before it
	// starts, and an empty one means "this process".
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000", "WATCHDOG_PID=")
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Once the process is gone, the test sends the socket a message of its
	// own: it comes after every message the daemon sent, so that the
	// daemon's exit is seen in order with them.
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		if c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"}); err == nil {
			c.Write([]byte(exitedMsg))
			c.Close()
		}
	}()
	defer cmd.Process.Kill()
	fail := func(format string, args ...any) {
		t.Helper()
		b, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
		t.Fatalf(format+"\ndaemon log:\n%s", append(args, b)...)
	}

	// next returns the next message, failing if the daemon exits or the
	// safety net runs out first.
	next := func(waiting string) []string {
		t.Helper()
		select {
		case m := <-msgs:
			if slices.Equal(m, []string{exitedMsg}) {
				fail("waiting for %s: the daemon exited (%v)", waiting, <-exited)
			}
			return m
		case <-ctx.Done():
			fail("waiting for %s: nothing within the test's deadline", waiting)
		}
		return nil
	}
	// await skips watchdog pets up to the message that has line, and
	// returns it.
	await := func(line string) []string {
		t.Helper()
		for {
			m := next(line)
			if slices.Contains(m, line) {
				return m
			}
			if !slices.Equal(m, []string{"WATCHDOG=1"}) {
				fail("waiting for %s, got %q", line, m)
			}
		}
	}
	field := func(m []string, key string) string {
		for _, l := range m {
			if v, ok := strings.CutPrefix(l, key+"="); ok {
				return v
			}
		}
		return ""
	}

	ready := next("READY=1")
	if !slices.Contains(ready, "READY=1") || !regexp.MustCompile(`^peer 12D3KooW\w+, addresses: 1$`).MatchString(field(ready, "STATUS")) {
		fail("first message %q, want READY=1 and STATUS=peer <ID>, addresses: 1", ready)
	}

	b, err := os.ReadFile(filepath.Join(dir, node.MetricsAddrFile))
	if err != nil {
		fail("no %s at READY=1: %v", node.MetricsAddrFile, err)
	}
	resp, err := http.Get(strings.TrimSpace(string(b)) + "/metrics")
	if err != nil {
		fail("scrape: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	info := regexp.MustCompile(`(?m)^cuivre_build_info\{commit="[^"]+",goversion="` + regexp.QuoteMeta(runtime.Version()) + `",version="dev"\} 1$`)
	if resp.StatusCode != 200 || !info.Match(body) || !regexp.MustCompile(`(?m)^cuivre_peers 0$`).Match(body) {
		fail("GET /metrics at %s: %s, want cuivre_build_info (version dev) and cuivre_peers:\n%s", b, resp.Status, body)
	}

	for i := range 2 {
		if m := next("WATCHDOG=1"); !slices.Equal(m, []string{"WATCHDOG=1"}) {
			fail("message %d after READY=1: %q, want WATCHDOG=1", i+1, m)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if m := await("RELOADING=1"); !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(field(m, "MONOTONIC_USEC")) {
		fail("reload message %q, want RELOADING=1 with MONOTONIC_USEC=<microseconds>", m)
	}
	if m := await("READY=1"); field(m, "STATUS") == "" {
		fail("after the reload %q, want READY=1 with a STATUS=", m)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	await("STOPPING=1")
	for {
		select {
		case m := <-msgs:
			if !slices.Equal(m, []string{exitedMsg}) {
				continue // the last pets, while the node drains
			}
			if err := <-exited; err != nil {
				fail("the daemon exited with %v after SIGTERM, want 0", err)
			}
			return
		case <-ctx.Done():
			fail("the daemon did not exit after STOPPING=1")
		}
	}
}

// exitedMsg is what TestSystemdNotify sends its own notify socket once the
// daemon has exited.
const exitedMsg = "TEST: the daemon exited"
