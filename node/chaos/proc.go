package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cuivre/cuivre/node/api"
)

// proc is one `cuivre daemon` of the federation, killed and restarted by
// the faults; its data dir, identity and listen address stay the same
// across restarts, so that its peers and its store know it again.
type proc struct {
	name   string // "p3", "r0"
	dir    string
	peerID string
	listen string // its multiaddr, without /p2p
	netns  string // "" for the harness's namespace
	args   []string
	exe    string
	env    []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd has been waited for
	starts  int
	crashed error // why the last process ended by itself
}

// addr is the multiaddr its peers bootstrap from.
func (p *proc) addr() string { return p.listen + "/p2p/" + p.peerID }

// start starts the daemon; it does not wait for it to be ready.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.name)
	}
	// The API address file is written anew once the daemon listens: its
	// appearance is how a provider in a namespace is seen to be up.
	os.Remove(filepath.Join(p.dir, "api"))
	logf, err := os.OpenFile(filepath.Join(p.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "--- chaos: start %d at %s\n", p.starts+1, time.Now().Format(time.RFC3339Nano))
	args := append([]string{"daemon", "--data-dir", p.dir}, p.args...)
	var cmd *exec.Cmd
	if p.netns != "" {
		// ip execs the daemon in the namespace: the PID is the daemon's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", p.netns, p.exe}, args...)...)
	} else {
		cmd = exec.Command(p.exe, args...)
	}
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// A daemon must not outlive a harness that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	p.starts++
	go func(exited chan struct{}) {
		err := cmd.Wait()
		p.mu.Lock()
		if p.cmd == cmd {
			p.cmd = nil
			p.crashed = fmt.Errorf("%s exited by itself: %v", p.name, err)
		}
		p.mu.Unlock()
		close(exited)
	}(p.exited)
	return nil
}

// running says whether a process of the daemon is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// kill sends sig (SIGKILL, or SIGTERM to stop it cleanly) and waits for the
// process to be gone, so that its store is free for the next one; it
// reports false if no process was running.
func (p *proc) kill(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return false
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(wait):
		cmd.Process.Kill()
		<-exited
	}
	return true
}

// waitReady waits for the daemon to listen: for one in the harness's
// namespace, for its API to answer; for one in a namespace of its own,
// whose API is on that namespace's loopback, for the address file it
// writes once it listens.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.netns != "" {
			if _, err := os.Stat(filepath.Join(p.dir, "api")); err == nil {
				return nil
			}
		} else if c, err := api.Dial(p.dir); err == nil {
			var id api.Identity
			if c.Get("/v1/id", &id) == nil {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-exited:
			return fmt.Errorf("%s exited while starting:\n%s", p.name, p.logTail())
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not up after %v:\n%s", p.name, timeout, p.logTail())
			}
			return ctx.Err()
		}
	}
}

// logTail is the end of the daemon's log, for an error message.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "daemon.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}
