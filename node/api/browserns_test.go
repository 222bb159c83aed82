package api_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
	"golang.org/x/sys/unix"
)

// isolated starts the test's browser in a network namespace of its own,
// with nothing but loopback, when the test runs as root with ip(8): the
// browser's own probes of the internet (its IPv6 reachability probe, which
// makes the kernel solicit the default router) then find no route, and
// nothing leaves the host. The page's API servers are forwarded into the
// namespace by the test. It
// returns the allocator context, and how the browser reaches an API
// server's base URL. Elsewhere it returns a browser in the host's network,
// as before.
func isolated(t *testing.T, ctx context.Context, browser string, flags []chromedp.ExecAllocatorOption, apis ...string) (context.Context, func(string) string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return direct(t, ctx, browser, flags)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return direct(t, ctx, browser, flags)
	}
	ns := fmt.Sprintf("cuivre-ui-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Logf("no network namespace for the browser (%v: %s): it runs in the host's network", err, out)
		return direct(t, ctx, browser, flags)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("loopback in %s: %v: %s", ns, err, out)
	}

	// The API servers, reached in the namespace at addresses of its own.
	inside := map[string]string{}
	for _, base := range apis {
		host := strings.TrimPrefix(base, "http://")
		ln := listenIn(t, ns)
		go forward(ln, func() (net.Conn, error) { return net.Dial("tcp", host) })
		inside[base] = "http://" + ln.Addr().String()
	}

	// The browser in the namespace: chromedp talks to it on a pipe, which
	// ip netns exec hands down with the rest of its descriptors.
	alloc, cancel := chromedp.NewExecAllocator(ctx, append(flags, chromedp.ExecPath(browser), chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
		ip, _ := exec.LookPath("ip")
		cmd.Args = append([]string{"ip", "netns", "exec", ns, cmd.Path}, cmd.Args[1:]...)
		cmd.Path = ip
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}))...)
	t.Cleanup(cancel)
	return alloc, func(base string) string { return inside[base] }
}

// direct is the browser in the host's network.
func direct(t *testing.T, ctx context.Context, browser string, flags []chromedp.ExecAllocatorOption) (context.Context, func(string) string) {
	alloc, cancel := chromedp.NewExecAllocator(ctx, append(flags, chromedp.ExecPath(browser))...)
	t.Cleanup(cancel)
	return alloc, func(base string) string { return base }
}

// forward pipes each connection ln accepts to one dial makes, until ln is
// closed.
func forward(ln net.Listener, dial func() (net.Conn, error)) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := dial()
			if err != nil {
				return
			}
			defer out.Close()
			go io.Copy(out, in)
			io.Copy(in, out)
		}()
	}
}

// inNS runs f on an OS thread moved into the network namespace ns, then
// moves the thread back: the sockets f makes belong to ns, and serve from
// any thread after.
func inNS(ns string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return err
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return err
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// A thread stuck in the namespace must not serve the rest: leave
		// it locked, and Go ends it with this goroutine.
		runtime.LockOSThread()
		return err
	}
	return ferr
}

// listenIn listens on the loopback of the network namespace ns.
func listenIn(t *testing.T, ns string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
