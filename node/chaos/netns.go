package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The network namespaces of a run are named nsPrefix + the harness's PID +
// "-" + a role ("hub", "p3"); the harness's own end of the hub is the link
// linkPrefix + PID in its namespace. The PID in the names is what lets a
// run remove what a dead run left behind without touching a live one's.
const (
	nsPrefix   = "cuivre-chaos-"
	linkPrefix = "cvch"
)

// netns is a star of network namespaces: a hub namespace holding a bridge,
// one namespace per provider daemon with a veth to the bridge, and a veth
// from the harness's own namespace, so that the requester daemons (which
// run beside the harness: their API must be on its loopback) reach the
// providers, and a provider is cut off by taking its port on the bridge
// down. Only addresses of one private /24 are used, and no route leads out
// of the namespaces.
type netns struct {
	pid    int
	prefix netip.Prefix // the /24
	hub    string
	link   string // the harness's end, in its own namespace
	spaces []string
}

// probeNetns says why partitions cannot be made here, or "" if they can.
func probeNetns() string {
	if os.Geteuid() != 0 {
		return "not running as root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "the ip command (iproute2) is not installed"
	}
	return ""
}

// ipCmd runs ip with args and returns its error with ip's own words.
func ipCmd(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func ipOutput(args ...string) string {
	out, _ := exec.Command("ip", args...).Output()
	return string(out)
}

// cleanStale removes the namespaces and links of earlier runs whose
// harness is no longer alive: a run killed with SIGKILL cannot clean up
// after itself.
func cleanStale(ctx context.Context) {
	for _, line := range strings.Split(ipOutput("netns", "list"), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidText); err == nil && !alive(pid) {
			ipCmd(ctx, "netns", "del", name)
		}
	}
	for _, line := range strings.Split(ipOutput("-o", "link", "show"), "\n") {
		// "12: cvch4242@if11: <...>"
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		rest, ok := strings.CutPrefix(name, linkPrefix)
		if !ok {
			continue
		}
		if pid, err := strconv.Atoi(rest); err == nil && !alive(pid) {
			ipCmd(ctx, "link", "del", name)
		}
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freePrefix picks a 10.x.y.0/24 that no interface of this namespace uses,
// so that the run's routes shadow nothing.
func freePrefix(seed int) (netip.Prefix, error) {
	used := ipOutput("-o", "-4", "addr", "show") + ipOutput("-4", "route", "show")
	for k := range 2000 {
		n := (seed + k*7919) % (50 * 256)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + n/256), byte(n % 256), 0}), 24)
		if !strings.Contains(used, strings.TrimSuffix(p.Addr().String(), ".0")+".") {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("no free 10.200-249.x.0/24 for the namespaces")
}

// newNetns makes the hub and the harness's link to it. On error, what was
// made is removed.
func newNetns(ctx context.Context) (n *netns, err error) {
	pid := os.Getpid()
	prefix, err := freePrefix(pid)
	if err != nil {
		return nil, err
	}
	n = &netns{pid: pid, prefix: prefix, hub: fmt.Sprintf("%s%d-hub", nsPrefix, pid), link: fmt.Sprintf("%s%d", linkPrefix, pid)}
	defer func() {
		if err != nil {
			n.Close()
			n = nil
		}
	}()
	if err := n.addSpace(ctx, n.hub); err != nil {
		return n, err
	}
	for _, args := range [][]string{
		{"-n", n.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", n.hub, "link", "set", "br0", "up"},
		{"link", "add", n.link, "type", "veth", "peer", "name", "harness", "netns", n.hub},
		{"-n", n.hub, "link", "set", "harness", "master", "br0", "up"},
		{"addr", "add", n.addr(1).String() + "/24", "dev", n.link},
		{"link", "set", n.link, "up"},
	} {
		if err := ipCmd(ctx, args...); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (n *netns) addSpace(ctx context.Context, name string) error {
	if err := ipCmd(ctx, "netns", "add", name); err != nil {
		return err
	}
	n.spaces = append(n.spaces, name)
	return ipCmd(ctx, "-n", name, "link", "set", "lo", "up")
}

// addr is the host address i of the run's /24: 1 is the harness, 10+k
// provider k.
func (n *netns) addr(i int) netip.Addr {
	b := n.prefix.Addr().As4()
	b[3] = byte(i)
	return netip.AddrFrom4(b)
}

// HarnessAddr is the address the requester daemons listen on.
func (n *netns) HarnessAddr() netip.Addr { return n.addr(1) }

// AddProvider makes provider k's namespace, wired to the bridge through the
// hub's port "pK", and returns its name and address.
func (n *netns) AddProvider(ctx context.Context, k int) (string, netip.Addr, error) {
	if k > 200 {
		return "", netip.Addr{}, fmt.Errorf("at most 200 providers in namespaces, not %d", k+1)
	}
	name, port, addr := fmt.Sprintf("%s%d-p%d", nsPrefix, n.pid, k), "p"+strconv.Itoa(k), n.addr(10+k)
	if err := n.addSpace(ctx, name); err != nil {
		return "", netip.Addr{}, err
	}
	for _, args := range [][]string{
		{"-n", n.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name},
		{"-n", n.hub, "link", "set", port, "master", "br0", "up"},
		{"-n", name, "addr", "add", addr.String() + "/24", "dev", "eth0"},
		{"-n", name, "link", "set", "eth0", "up"},
	} {
		if err := ipCmd(ctx, args...); err != nil {
			return "", netip.Addr{}, err
		}
	}
	return name, addr, nil
}

// Cut takes provider k's port on the bridge down (cut true) or up: its
// packets are dropped silently, as on a real partition, and its sockets
// stay open.
func (n *netns) Cut(ctx context.Context, k int, cut bool) error {
	state := "up"
	if cut {
		state = "down"
	}
	return ipCmd(ctx, "-n", n.hub, "link", "set", "p"+strconv.Itoa(k), state)
}

// Close removes every namespace and link made, whatever happened before:
// deleting a namespace deletes the veths in it, and their peers.
func (n *netns) Close() error {
	ctx := context.Background()
	var errs []error
	for i := len(n.spaces) - 1; i >= 0; i-- {
		if err := ipCmd(ctx, "netns", "del", n.spaces[i]); err != nil {
			errs = append(errs, err)
		}
	}
	n.spaces = nil
	// Its peer went with the hub; if the hub was never made, it may remain.
	if strings.Contains(ipOutput("-o", "link", "show"), " "+n.link+"@") {
		if err := ipCmd(ctx, "link", "del", n.link); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
