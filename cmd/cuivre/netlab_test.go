package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The lab of TestNetns: Linux network namespaces joined by veth pairs and
// bridges, and the processes run in them. Every namespace is named
// netnsPrefix + the test process's PID + "-" + a role ("cvn-4242-inet"): the
// PID is what lets a run remove what a killed run left behind (its PID no
// longer alive) without touching a live run's.
//
// Nothing it makes touches the root (host) namespace: every `ip` command
// that makes a link names the namespace it is made in (-n) and the one its
// peer goes to (netns), both made by the lab, so no interface, address,
// route or rule is ever added to the root namespace, and no link leads to
// it. A packet of a daemon can only reach an interface of the lab's
// namespaces; whatever else it is sent to is unreachable (no default route
// leads out of them).
const netnsPrefix = "cvn-"

// lab is the namespaces and processes of one run; close removes them all.
type lab struct {
	t      *testing.T
	pid    int
	mu     sync.Mutex
	spaces []string // made, in order
	procs  []*labProc
}

// newLab removes the namespaces of earlier runs that were killed (their
// processes first), and returns a lab that the test's cleanup closes, on
// failure and panic too. A run killed outright (go test's -timeout, kill
// -9) cannot clean up: its daemons die with it (Pdeathsig), and its
// namespaces go at the next run's start.
func newLab(t *testing.T) *lab {
	t.Helper()
	cleanStaleNetns(t)
	l := &lab{t: t, pid: os.Getpid()}
	t.Cleanup(l.close)
	return l
}

// netnsOfRun lists the namespaces whose name starts with prefix.
func netnsOfRun(prefix string) []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		// "cvn-4242-inet (id: 3)"
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}

// cleanStaleNetns removes the namespaces of runs of this test whose process
// is gone, killing any process still in them (by PID) first.
func cleanStaleNetns(t *testing.T) {
	for _, name := range netnsOfRun(netnsPrefix) {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(name, netnsPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		killNetnsProcs(name)
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("stale namespace %s: %v: %s", name, err, out)
		} else {
			t.Logf("removed the stale namespace %s of a killed run", name)
		}
	}
}

// killNetnsProcs kills, by PID, every process left in the namespace name.
func killNetnsProcs(name string) {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// name is the namespace name of role in this run.
func (l *lab) name(role string) string { return fmt.Sprintf("%s%d-%s", netnsPrefix, l.pid, role) }

// ip runs ip with args, failing the test with ip's own words.
func (l *lab) ip(args ...string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// in runs a command in the namespace of role, failing the test on error.
func (l *lab) in(role string, args ...string) {
	l.t.Helper()
	l.ip(append([]string{"netns", "exec", l.name(role)}, args...)...)
}

// output runs a command in the namespace of role and returns its standard
// output, failing the test on error.
func (l *lab) output(role string, args ...string) string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.name(role)}, args...)...).Output()
	if err != nil {
		l.t.Fatalf("%s in %s: %v", strings.Join(args, " "), role, err)
	}
	return string(out)
}

// space makes the namespace of role, its loopback up (the daemons' API is
// on it), and returns its name.
func (l *lab) space(role string) string {
	l.t.Helper()
	name := l.name(role)
	l.ip("netns", "add", name)
	l.mu.Lock()
	l.spaces = append(l.spaces, name)
	l.mu.Unlock()
	l.ip("-n", name, "link", "set", "lo", "up")
	return name
}

// link joins two namespaces of the lab with a veth pair, ifA in roleA and
// ifB in roleB: both ends are made inside the lab's namespaces.
func (l *lab) link(roleA, ifA, roleB, ifB string) {
	l.t.Helper()
	l.ip("-n", l.name(roleA), "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", l.name(roleB))
	l.ip("-n", l.name(roleA), "link", "set", ifA, "up")
	l.ip("-n", l.name(roleB), "link", "set", ifB, "up")
}

// addr gives the interface dev of role the address cidr.
func (l *lab) addr(role, dev, cidr string) {
	l.t.Helper()
	l.ip("-n", l.name(role), "addr", "add", cidr, "dev", dev)
}

// close kills every process the lab started, then removes every namespace
// it made (a namespace's veths go with it, and their peers).
func (l *lab) close() {
	l.mu.Lock()
	procs, spaces := l.procs, l.spaces
	l.procs, l.spaces = nil, nil
	l.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	for i := len(spaces) - 1; i >= 0; i-- {
		killNetnsProcs(spaces[i]) // none should be left; a command's child might be
		if out, err := exec.Command("ip", "netns", "del", spaces[i]).CombinedOutput(); err != nil {
			l.t.Errorf("remove namespace %s: %v: %s", spaces[i], err, out)
		}
	}
}

// command is a command line of this test binary standing in for cuivre
// (TestMain), run in the namespace of role.
func (l *lab) command(ctx context.Context, role string, args ...string) *exec.Cmd {
	l.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	// ip execs the program in the namespace: the PID is the program's.
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.name(role), exe}, args...)...)
	cmd.Env = append(os.Environ(), testMainEnv+"=1")
	// It must not outlive a test process that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// labProc is a long-running process of the lab: a daemon.
type labProc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once it has been waited for
	ready  chan struct{} // closed at its first output line holding the ready mark
	log    string        // its output, as a file
}

// start starts cmd, its output (standard output and error) copied to the
// file log; ready closes at the first line holding mark.
func (l *lab) start(name string, cmd *exec.Cmd, log, mark string) *labProc {
	l.t.Helper()
	logf, err := os.Create(log)
	if err != nil {
		l.t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		l.t.Fatalf("start %s: %v", name, err)
	}
	p := &labProc{name: name, cmd: cmd, exited: make(chan struct{}), ready: make(chan struct{}), log: log}
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			logf.Write(append(sc.Bytes(), '\n'))
			if !seen && strings.Contains(sc.Text(), mark) {
				seen = true
				close(p.ready)
			}
		}
		io.Copy(logf, pr) // a line too long for the scanner: keep the rest
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	return p
}

// waitReady waits for p's ready line, or fails the test when it exits
// first or ctx ends.
func (p *labProc) waitReady(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-p.exited:
		return fmt.Errorf("%s exited while starting (%v):\n%s", p.name, p.cmd.ProcessState, p.logTail(20))
	case <-ctx.Done():
		return fmt.Errorf("%s not up: %v:\n%s", p.name, ctx.Err(), p.logTail(20))
	}
}

// kill kills p and waits for it to be gone.
func (p *labProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.exited
}

// logTail is the last n lines of p's output.
func (p *labProc) logTail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logWarnings is the last n lines of p's output logged at WARN or ERROR.
func (p *labProc) logWarnings(n int) string {
	b, _ := os.ReadFile(p.log)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}

// logHas counts p's output lines holding s.
func (p *labProc) logHas(s string) int {
	b, _ := os.ReadFile(p.log)
	return bytes.Count(b, []byte(s))
}

// netnsSkip says why TestNetns cannot run here, or "" if it can.
func netnsSkip() string {
	var why []string
	if os.Getenv("CUIVRE_NETNS") != "1" {
		why = append(why, "CUIVRE_NETNS=1 is not set (make netns-test sets it)")
	}
	if os.Geteuid() != 0 {
		why = append(why, "not running as root")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			why = append(why, "no "+tool+" command (apt-get install -y iproute2 iptables)")
		}
	}
	return strings.Join(why, "; ")
}

// netnsLeft are the namespaces of this run still listed, sorted.
func netnsLeft() []string {
	left := netnsOfRun(fmt.Sprintf("%s%d-", netnsPrefix, os.Getpid()))
	slices.Sort(left)
	return left
}
