package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/exec/exectest"
)

// netnsCustomerFresh says whether no provider can dial the customer's node
// before it places a job there: true once it runs as a requester only (a
// DHT client, which the providers' DHT lookups do not reach; its setting
// goes in its set below), and the test then fails when one did. As a DHT
// server it is reached by the NATed providers' lookups when it is up in
// time for them, and a run where one dialled it says nothing of NAT
// traversal for that provider: the report says so.
const netnsCustomerFresh = false

// netnsWANBits is the prefix length of the small internet's addresses,
// 192.0.0.128/25: part of the IETF protocol assignments block (192.0.0.0/24),
// which IANA marks as not globally reachable, so no one on the internet
// holds them, and which go-multiaddr counts as public (it lists only
// 192.0.0.0/26 as unroutable). libp2p punches holes and hands out relay
// addresses only between public addresses (a real internet's), so the
// small internet needs such addresses; its NATed LANs are private, as at
// home. None of them leaves the namespaces.
const netnsWANBits = "/25"

// netnsHost is one node of the small internet of TestNetns.
type netnsHost struct {
	name string // its namespace's role, and its operator label
	// addr is its own address; router, if any, is the namespace of the
	// NAT router its default route goes through.
	addr, router string
	tcp, quic    bool // the transports it listens on
	provider     bool // sells capacity jobs are pinned to; else the customer
	// nat are its NAT settings: the one place they are written. "{relay}"
	// stands for pub2's multiaddrs (its relay service).
	nat map[string]string
	// set are more settings of its daemon, key=value.
	set []string
}

// The small internet. The public hosts and the routers' WAN sides are on
// one bridge in the namespace "inet", on 192.0.0.128/25 (netnsWANBits); each NATed provider
// is alone on its router's LAN, behind a MASQUERADE rule, no port
// forwarded. Every node runs a normal daemon; the customer sells too
// little for any job of the test.
var netnsHosts = []netnsHost{
	{name: "pub1", addr: "192.0.0.141", tcp: true, quic: true, provider: true, // the bootstrap node
		nat: map[string]string{"nat.reachability": "public", "nat.relay_service": "off", "nat.port_mapping": "false"}},
	{name: "pub2", addr: "192.0.0.142", tcp: true, quic: true, provider: true, // the circuit relay: the default, auto, relays once reachable
		nat: map[string]string{"nat.reachability": "public", "nat.port_mapping": "false"}},
	{name: "tcp", addr: "192.0.0.143", tcp: true, provider: true,
		nat: map[string]string{"nat.reachability": "public", "nat.relay_service": "off", "nat.port_mapping": "false"}},
	{name: "udp", addr: "192.0.0.144", quic: true, provider: true,
		nat: map[string]string{"nat.reachability": "public", "nat.relay_service": "off", "nat.port_mapping": "false"}},
	{name: "cust", addr: "192.0.0.145", tcp: true, quic: true,
		nat: map[string]string{"nat.reachability": "public", "nat.relay_service": "off", "nat.port_mapping": "false"},
		// The requester-only role's setting, once the daemon has it
		// (then netnsCustomerFresh is true).
		set: nil},
	{name: "prova", addr: "192.168.10.2", router: "nata", tcp: true, quic: true, provider: true,
		nat: map[string]string{"nat.reachability": "private", "nat.relay_service": "off", "nat.relays": "{relay}", "nat.port_mapping": "false"}},
	{name: "provb", addr: "192.168.20.2", router: "natb", tcp: true, quic: true, provider: true,
		nat: map[string]string{"nat.reachability": "private", "nat.relay_service": "off", "nat.relays": "{relay}", "nat.port_mapping": "false"}},
}

// netnsRouters are the NAT routers: their WAN address on the bridge, their
// LAN's router address (the provider behind is .2 of it).
var netnsRouters = []struct{ name, wan, lan string }{
	{"nata", "192.0.0.151", "192.168.10.1"},
	{"natb", "192.0.0.152", "192.168.20.1"},
}

// Jobs of the test: pinned to each NATed provider, and to each public one.
const (
	netnsNATJobs    = 20
	netnsPublicJobs = 3
	netnsNATAtOnce  = 4 // a provider sells 2 vCPUs: four jobs of half a vCPU
)

// netnsReport is the environment variable naming a file TestNetns appends
// its report lines to.
const netnsReport = "CUIVRE_NETNS_REPORT"

// netnsNode is a host's daemon once set up.
type netnsNode struct {
	netnsHost
	dir    string
	peerID peer.ID
	proc   *labProc
}

// multiaddrs are its listen addresses, each with /p2p/ID.
func (n *netnsNode) multiaddrs() []string {
	var out []string
	if n.quic {
		out = append(out, fmt.Sprintf("/ip4/%s/udp/4242/quic-v1/p2p/%s", n.addr, n.peerID))
	}
	if n.tcp {
		out = append(out, fmt.Sprintf("/ip4/%s/tcp/4242/p2p/%s", n.addr, n.peerID))
	}
	return out
}

// TestNetns: a small internet in Linux network namespaces (issue 16): a
// bootstrap node, a circuit relay, a TCP-only and a QUIC-only host, a
// customer, all public, and two providers each behind a NAT router of its
// own. From the customer's node, through `cuivre job run` in its
// namespace, jobs pinned to each provider (its operator label) must all
// succeed; for the NATed providers, the share of the customer's
// connections to them that are direct (not through the relay) is
// reported, with the flows each opened to the customer before its jobs
// (none for a fresh customer). At the end no namespace of the run is
// left.
//
// Nothing leaves the namespaces, by construction: the lab links
// namespaces it made to one another only, never to the root namespace
// (see lab); the only routes are those of the addresses it gives (192.0.0.128/25
// on the bridge, a /24 per router's LAN) and the NATed providers' default
// routes to their routers, which have none of their own; and no node is
// given an address outside them (each listens on its own address and
// bootstraps from pub1's; no port mapping, no mDNS).
//
// It needs root, ip and iptables, and CUIVRE_NETNS=1: make netns-test.
func TestNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if why := netnsSkip(); why != "" {
		t.Skip("network namespaces: " + why)
	}
	start := time.Now()
	// Cleanups run last first: this one after the lab is closed.
	t.Cleanup(func() {
		if left := netnsLeft(); len(left) > 0 {
			t.Errorf("namespaces left after the run: %v", left)
		}
	})
	l := newLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	buildNetns(t, l)
	nodes := startNetns(t, ctx, l)
	t.Logf("the small internet is up in %v: %d namespaces, %d daemons", time.Since(start).Round(time.Millisecond), len(l.spaces), len(nodes))
	cust := nodes["cust"]

	hello, err := filepath.Abs("../../examples/wasm/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	specs := t.TempDir()
	spec := func(target string) string {
		path := filepath.Join(specs, target+".yaml")
		writeFile(t, path, "version: 1\nname: netns-"+target+"\ntask:\n  module: "+hello+"\n  args: [--name, "+target+"]\n"+
			"  resources: {cpu: 500m, memory: 64Mi, timeout: 30s}\nconstraints:\n  - operator = "+target+"\n")
		return path
	}
	var report []string
	reportf := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		report = append(report, line)
	}

	// Each public provider: a few jobs, one after the other; the first
	// waits for the federation to find it.
	var wg sync.WaitGroup
	results := map[string][]jobResult{}
	var mu sync.Mutex
	for _, name := range []string{"pub1", "pub2", "tcp", "udp"} {
		path := spec(name)
		wg.Go(func() {
			for range netnsPublicJobs {
				r := runNetnsJob(ctx, l, cust, nodes[name], path, "60s")
				mu.Lock()
				results[name] = append(results[name], r)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, name := range []string{"pub1", "pub2", "tcp", "udp"} {
		ok := 0
		for _, r := range results[name] {
			if r.ok {
				ok++
			} else {
				t.Errorf("job on %s: exit %d: %v\n%s", name, r.code, r.err, r.out)
			}
		}
		reportf("netns %s: %d of %d jobs succeeded%s", name, ok, len(results[name]), transportsOf(t, ctx, l, cust, nodes[name]))
	}
	// The single-transport hosts are reached on theirs only.
	for name, want := range map[string]string{"tcp": "/tcp/", "udp": "/quic-v1"} {
		for _, a := range connsTo(t, ctx, l, cust, nodes[name]) {
			if !strings.Contains(a, want) {
				t.Errorf("the customer reaches %s at %s, not over %s", name, a, want)
			}
		}
	}

	// The NATed providers, side by side. Each router counts the flows its
	// provider opens to the customer: a provider that opened one before
	// the customer's first job to it (its DHT lookups reach every DHT
	// server of this small federation, the customer's node among them,
	// when it is up in time) is reached through that connection, and its
	// jobs show nothing of NAT traversal. A fresh customer is one no
	// provider dialled first.
	natted := []string{"prova", "provb"}
	jobs, atOnce, timeout := netnsNATJobs, netnsNATAtOnce, "60s"
	openedBefore := map[string]int{}
	for _, name := range natted {
		openedBefore[name], _ = routerCounts(t, l, nodes[name].router, cust.addr)
	}
	natResults := map[string][]jobResult{}
	for _, name := range natted {
		path := spec(name)
		wg.Go(func() {
			rs := runNetnsJobs(ctx, l, cust, nodes[name], path, jobs, atOnce, timeout)
			mu.Lock()
			natResults[name] = rs
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, name := range natted {
		n, rs, before := nodes[name], natResults[name], openedBefore[name]
		opened, dropped := routerCounts(t, l, n.router, cust.addr)
		ok := 0
		var failures []jobResult
		for _, r := range rs {
			if r.ok {
				ok++
			} else {
				failures = append(failures, r)
			}
		}
		conns := connsTo(t, ctx, l, cust, n)
		direct := 0
		for _, a := range conns {
			if !strings.Contains(a, "/p2p-circuit") {
				direct++
			}
		}
		share := "no connection"
		if len(conns) > 0 {
			share = fmt.Sprintf("%d%% direct (%d of %d: %s)", 100*direct/len(conns), direct, len(conns), strings.Join(conns, ", "))
		}
		fresh := "a fresh customer"
		if before > 0 {
			fresh = "NOT a fresh customer: the jobs show nothing of NAT traversal"
		}
		reportf("netns %s (behind %s): %d of %d jobs succeeded; the customer's connections to it: %s; "+
			"flows it opened to the customer: %d before its jobs (%s), %d during; the customer's packets its router dropped: %d",
			name, n.router, ok, len(rs), share, before, fresh, opened-before, dropped)
		if len(failures) > 0 {
			t.Logf("%s's warnings and errors:\n%s\nthe customer's:\n%s", name, n.proc.logWarnings(40), cust.proc.logWarnings(40))
		}
		for i, r := range failures {
			if i == 3 {
				t.Logf("... and %d more failures", len(failures)-3)
				break
			}
			t.Errorf("job on %s: exit %d: %v\n%s", name, r.code, r.err, lastLines(r.out, 12))
		}
		switch {
		case before > 0 && netnsCustomerFresh:
			t.Errorf("%s had dialled the customer before its jobs (%d flow(s) through %s), which its role should prevent", name, before, n.router)
		case before > 0 && ok > 0:
			t.Logf("%s was reached through a connection it had opened to the customer itself (%d flow(s) through %s before its jobs): "+
				"the customer is a DHT server its lookups reached, not a fresh customer", name, before, n.router)
		}
	}
	if hold := os.Getenv("CUIVRE_NETNS_HOLD"); hold != "" && t.Failed() {
		// A debugging aid: the small internet stays up, for `ip netns exec`,
		// until the file named is removed.
		os.WriteFile(hold, []byte(fmt.Sprintf("customer %s\n", cust.dir)), 0o644)
		t.Logf("holding the namespaces until %s is removed", hold)
		for {
			if _, err := os.Stat(hold); err != nil {
				break
			}
			time.Sleep(time.Second)
		}
	}
	reportf("netns: %s in %v", map[bool]string{true: "passed", false: "FAILED"}[!t.Failed()], time.Since(start).Round(time.Second))
	if path := os.Getenv(netnsReport); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, strings.Join(report, "\n"))
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// buildNetns makes the namespaces, links, addresses, routes and NAT rules.
func buildNetns(t *testing.T, l *lab) {
	t.Helper()
	var custAddr string
	for _, h := range netnsHosts {
		if !h.provider {
			custAddr = h.addr
		}
	}
	l.space("inet")
	l.ip("-n", l.name("inet"), "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.name("inet"), "link", "set", "br0", "up")
	port := func(role string) string { return "v-" + role } // its port on the bridge
	for _, h := range netnsHosts {
		if h.router != "" {
			continue
		}
		l.space(h.name)
		l.link("inet", port(h.name), h.name, "eth0")
		l.ip("-n", l.name("inet"), "link", "set", port(h.name), "master", "br0")
		l.addr(h.name, "eth0", h.addr+netnsWANBits)
		// A single-transport host is on a network that drops the other
		// protocol, both ways: it neither listens nor dials on it.
		for proto, on := range map[string]bool{"udp": h.quic, "tcp": h.tcp} {
			if !on {
				l.in(h.name, "iptables", "-A", "INPUT", "-i", "eth0", "-p", proto, "-j", "DROP")
				l.in(h.name, "iptables", "-A", "OUTPUT", "-o", "eth0", "-p", proto, "-j", "DROP")
			}
		}
	}
	for _, r := range netnsRouters {
		l.space(r.name)
		l.link("inet", port(r.name), r.name, "wan")
		l.ip("-n", l.name("inet"), "link", "set", port(r.name), "master", "br0")
		l.addr(r.name, "wan", r.wan+netnsWANBits)
		l.in(r.name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		// A home router: what leaves through the WAN side takes its
		// address; from the WAN side, only what answers a flow from the
		// LAN is forwarded. No port is forwarded.
		// Two rules only count, for the report: the flows the provider
		// opens to the customer, and what reaches the router's own
		// address from the WAN side unasked (a dial that finds no
		// mapping).
		for _, rule := range [][]string{
			{"-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"},
			{"-P", "FORWARD", "DROP"},
			{"-A", "FORWARD", "-i", "lan", "-o", "wan", "-d", custAddr, "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT"},
			{"-A", "FORWARD", "-i", "lan", "-o", "wan", "-j", "ACCEPT"},
			{"-A", "INPUT", "-i", "wan", "-s", custAddr, "-j", "DROP"},
			{"-A", "FORWARD", "-i", "wan", "-o", "lan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		} {
			l.in(r.name, append([]string{"iptables"}, rule...)...)
		}
	}
	for _, h := range netnsHosts {
		if h.router == "" {
			continue
		}
		var lan string
		for _, r := range netnsRouters {
			if r.name == h.router {
				lan = r.lan
			}
		}
		l.space(h.name)
		l.link(h.router, "lan", h.name, "eth0")
		l.addr(h.router, "lan", lan+"/24")
		l.addr(h.name, "eth0", h.addr+"/24")
		l.ip("-n", l.name(h.name), "route", "add", "default", "via", lan)
	}
}

// startNetns inits a data dir per host and starts its daemon in its
// namespace: pub1 first, which every other bootstraps from.
func startNetns(t *testing.T, ctx context.Context, l *lab) map[string]*netnsNode {
	t.Helper()
	nodes := map[string]*netnsNode{}
	for _, h := range netnsHosts {
		n := &netnsNode{netnsHost: h, dir: initDir(t)}
		key, err := config.LoadIdentity(n.dir)
		if err != nil {
			t.Fatal(err)
		}
		if n.peerID, err = peer.IDFromPrivateKey(key); err != nil {
			t.Fatal(err)
		}
		nodes[h.name] = n
	}
	cache := exectest.CacheDir(t)
	boot := nodes["pub1"].multiaddrs()
	relay := nodes["pub2"].multiaddrs()
	startOne := func(n *netnsNode) {
		var listen []string
		for _, a := range n.multiaddrs() {
			listen = append(listen, strings.TrimSuffix(a, "/p2p/"+n.peerID.String()))
		}
		cpu, mem := "2", "2Gi"
		if !n.provider {
			cpu, mem = "100m", "64Mi" // the customer: less than any job asks
		}
		set := []string{
			"listen=" + strings.Join(listen, ","),
			"api.listen=127.0.0.1:0",
			"capacity.auto=false", "capacity.cpu=" + cpu, "capacity.memory=" + mem, "capacity.scratch=1Gi",
			"capacity.reserve.cpu=0", "capacity.reserve.memory=0", "capacity.offered_percent=100",
			"executor.cache_dir=" + cache,
			"labels.operator=" + n.name, "labels.jurisdiction=fr", "labels.region=fr-par",
		}
		set = append(set, n.set...)
		if n.name != "pub1" {
			set = append(set, "bootstrap="+strings.Join(boot, ","))
		}
		for k, v := range n.nat {
			set = append(set, k+"="+strings.ReplaceAll(v, "{relay}", strings.Join(relay, ",")))
		}
		args := []string{"daemon", "--data-dir", n.dir}
		for _, kv := range set {
			args = append(args, "--set", kv)
		}
		n.proc = l.start(n.name, l.command(context.Background(), n.name, args...), filepath.Join(n.dir, "daemon.log"), "cuivre daemon up")
	}
	startOne(nodes["pub1"])
	if err := nodes["pub1"].proc.waitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range netnsHosts[1:] {
		startOne(nodes[h.name])
	}
	for _, h := range netnsHosts[1:] {
		if err := nodes[h.name].proc.waitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// jobResult is what one `cuivre job run` gave.
type jobResult struct {
	ok   bool
	code int
	err  error
	out  string
}

// runNetnsJob runs spec through `cuivre job run` in the customer's
// namespace, against its data dir: it succeeded if it exits 0 having run
// on want and printed its greeting.
func runNetnsJob(ctx context.Context, l *lab, cust, want *netnsNode, spec, placementTimeout string) jobResult {
	out, err := l.command(ctx, "cust", "job", "run", "--data-dir", cust.dir, "--placement-timeout", placementTimeout, spec).CombinedOutput()
	r := jobResult{out: string(out), err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	}
	switch {
	case err != nil:
	case !strings.Contains(r.out, "hello, "+want.name+"!"):
		r.err = errors.New("no greeting in its output")
	case !strings.Contains(r.out, "on "+shortID(want.peerID.String())):
		r.err = fmt.Errorf("not run on %s (%s)", want.name, shortID(want.peerID.String()))
	default:
		r.ok = true
	}
	return r
}

// runNetnsJobs runs jobs jobs pinned to n, atOnce at a time.
func runNetnsJobs(ctx context.Context, l *lab, cust, n *netnsNode, spec string, jobs, atOnce int, placementTimeout string) []jobResult {
	out := make([]jobResult, jobs)
	next := make(chan int)
	var wg sync.WaitGroup
	for range atOnce {
		wg.Go(func() {
			for i := range next {
				out[i] = runNetnsJob(ctx, l, cust, n, spec, placementTimeout)
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// connsTo are the remote multiaddrs of the customer's connections to n,
// from `cuivre peers` in its namespace.
func connsTo(t *testing.T, ctx context.Context, l *lab, cust, n *netnsNode) []string {
	t.Helper()
	out, err := l.command(ctx, "cust", "peers", "--data-dir", cust.dir).Output()
	if err != nil {
		t.Errorf("cuivre peers: %v\n%s", err, out)
		return nil
	}
	var peers []api.Peer
	if err := json.Unmarshal(out, &peers); err != nil {
		t.Errorf("cuivre peers: %v\n%s", err, out)
		return nil
	}
	for _, p := range peers {
		if p.ID == n.peerID.String() {
			return p.Addrs
		}
	}
	return nil
}

// transportsOf says over what the customer is connected to n, for the report.
func transportsOf(t *testing.T, ctx context.Context, l *lab, cust, n *netnsNode) string {
	conns := connsTo(t, ctx, l, cust, n)
	if len(conns) == 0 {
		return "; no connection from the customer now"
	}
	return "; the customer's connections: " + strings.Join(conns, ", ")
}

// lastLines are the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// routerCounts reads the counting rules of a NAT router: the flows its
// provider opened to the customer at cust, and the packets from the
// customer that reached the router's own address unasked, dropped.
func routerCounts(t *testing.T, l *lab, router, cust string) (opened, unasked int) {
	t.Helper()
	count := func(chain, marks string) int {
		for _, line := range strings.Split(l.output(router, "iptables", "-L", chain, "-v", "-x", "-n"), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.Contains(line, cust) && (marks == "" || strings.Contains(line, marks)) {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
		t.Errorf("no counting rule for %s in %s of %s", cust, chain, router)
		return 0
	}
	return count("FORWARD", "NEW"), count("INPUT", "")
}
