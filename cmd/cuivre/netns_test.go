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
		// A node that only buys: a DHT client, which the providers' DHT
		// lookups never reach, so none of them dials it first.
		set: []string{"role=requester"}},
	{name: "prova", addr: "192.168.10.2", router: "nata", tcp: true, quic: true, provider: true,
		nat: map[string]string{"nat.reachability": "private", "nat.relay_service": "off", "nat.relays": "{relay}", "nat.port_mapping": "false"}},
	{name: "provb", addr: "192.168.20.2", router: "natb", tcp: true, quic: true, provider: true,
		nat: map[string]string{"nat.reachability": "private", "nat.relay_service": "off", "nat.relays": "{relay}", "nat.port_mapping": "false"}},
	// A second customer, behind a NAT of its own: between it and a NATed
	// provider only a hole punched through both NATs gives a direct
	// connection.
	{name: "custn", addr: "192.168.30.2", router: "natc", tcp: true, quic: true,
		nat: map[string]string{"nat.reachability": "private", "nat.relay_service": "off", "nat.relays": "{relay}", "nat.port_mapping": "false"},
		set: []string{"role=requester"}},
}

// netnsRouters are the NAT routers: their WAN address on the bridge, their
// LAN's router address (the provider behind is .2 of it).
var netnsRouters = []struct{ name, wan, lan string }{
	{"nata", "192.0.0.151", "192.168.10.1"},
	{"natb", "192.0.0.152", "192.168.20.1"},
	{"natc", "192.0.0.153", "192.168.30.1"},
}

// Jobs of the test: pinned to each NATed provider, and to each public one.
const (
	netnsNATJobs    = 20
	netnsPublicJobs = 3
	netnsNATAtOnce  = 4 // a provider sells 2 vCPUs: four jobs of half a vCPU
	netnsPunchJobs  = 3 // of the NATed customer, on a NATed provider
)

// netnsMetrics is where each daemon serves its metrics, in its namespace.
const netnsMetrics = "127.0.0.1:9464"

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
	// specOf writes a job of module with args pinned to target's operator.
	specOf := func(name, module, args, target string) string {
		path := filepath.Join(specs, name+".yaml")
		writeFile(t, path, "version: 1\nname: netns-"+name+"\ntask:\n  module: "+module+"\n  args: "+args+"\n"+
			"  resources: {cpu: 500m, memory: 64Mi, timeout: 30s}\nconstraints:\n  - operator = "+target+"\n")
		return path
	}
	spec := func(target string) string { return specOf(target, hello, "[--name, "+target+"]", target) }
	var report []string
	reportf := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		report = append(report, line)
	}

	// The NATed providers first, side by side, while no provider has had
	// any reason to reach the customer: each router counts the flows its
	// provider opens to it, and none may come before the customer's first
	// job there (a fresh customer, a DHT client the providers' lookups
	// never meet). The customer's first contact goes through the relay;
	// DCUtR then gives a direct connection: the provider dials the
	// customer back (direct_dial), or both punch a hole. Each provider's
	// metrics say how its lease streams came, direct or relayed.
	var wg sync.WaitGroup
	var mu sync.Mutex
	natted := []string{"prova", "provb"}
	for _, name := range natted {
		if before, _ := routerCounts(t, l, nodes[name].router, cust.addr); before > 0 {
			t.Errorf("%s dialled the customer before any job (%d packet(s) of new flows through %s): the customer is not fresh", name, before, nodes[name].router)
		}
	}
	natResults := map[string][]jobResult{}
	for _, name := range natted {
		path := spec(name)
		wg.Go(func() {
			rs := runNetnsJobs(ctx, l, cust, nodes[name], path, netnsNATJobs, netnsNATAtOnce, "60s")
			mu.Lock()
			natResults[name] = rs
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, name := range natted {
		n, rs := nodes[name], natResults[name]
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
		m := metricsOf(t, ctx, l, n)
		leaseDirect := m[`cuivre_streams_served_total{conn="direct",protocol="/cuivre/lease/1.0.0"}`]
		leaseRelayed := m[`cuivre_streams_served_total{conn="relayed",protocol="/cuivre/lease/1.0.0"}`]
		share := "no lease stream"
		if leaseDirect+leaseRelayed > 0 {
			share = fmt.Sprintf("%.0f%% direct (%.0f direct, %.0f relayed)", 100*leaseDirect/(leaseDirect+leaseRelayed), leaseDirect, leaseRelayed)
		}
		reportf("netns %s (behind %s): %d of %d jobs succeeded; its lease streams: %s; DCUtR: %.0f direct dial(s), %.0f hole punch(es), %.0f failed; "+
			"offer streams relayed %.0f, direct %.0f; the customer's connections to it now: %s; "+
			"new flows it opened to the customer: %d packet(s); the customer's packets its router dropped: %d",
			name, n.router, ok, len(rs), share,
			m[`cuivre_hole_punches_total{result="direct_dial"}`], m[`cuivre_hole_punches_total{result="success"}`], m[`cuivre_hole_punches_total{result="failure"}`],
			m[`cuivre_streams_served_total{conn="relayed",protocol="/cuivre/offer/1.0.0"}`], m[`cuivre_streams_served_total{conn="direct",protocol="/cuivre/offer/1.0.0"}`],
			strings.Join(connsTo(t, ctx, l, cust, n), ", "), opened, dropped)
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
	}

	// The customer behind a NAT, on a NATed provider: before this phase
	// neither had a reason to reach the other, and only a hole punched
	// through both NATs gives a direct connection, which the module and the
	// output need.
	//
	// This phase measures, it does not require: on links with no delay
	// (this kernel has no netem to add some), the two NATs' packets cross
	// before either has its mapping, and Linux's conntrack then gives one
	// side another port, so holes rarely open; over the relay, placement
	// works only while the relay's limits last. Its report says what
	// happened.
	custn, provb := nodes["custn"], nodes["provb"]
	pre := metricsOf(t, ctx, l, provb)
	rs := runNetnsJobs(ctx, l, custn, provb, spec("provb"), netnsPunchJobs, 1, "20s")
	post := metricsOf(t, ctx, l, provb)
	ok := 0
	for _, r := range rs {
		if r.ok {
			ok++
		} else {
			t.Logf("job of the NATed customer on provb: exit %d: %v\n%s", r.code, r.err, lastLines(r.out, 6))
		}
	}
	delta := func(k string) float64 { return post[k] - pre[k] }
	direct, relayed := delta(`cuivre_streams_served_total{conn="direct",protocol="/cuivre/lease/1.0.0"}`), delta(`cuivre_streams_served_total{conn="relayed",protocol="/cuivre/lease/1.0.0"}`)
	reportf("netns custn (behind natc) on provb (behind natb): %d of %d jobs succeeded; provb's lease streams: %.0f direct, %.0f relayed; "+
		"provb's DCUtR: %.0f hole punch(es) succeeded, %.0f failed, %.0f direct dial(s); custn's connections to it: %s",
		ok, len(rs), direct, relayed, delta(`cuivre_hole_punches_total{result="success"}`), delta(`cuivre_hole_punches_total{result="failure"}`),
		delta(`cuivre_hole_punches_total{result="direct_dial"}`), strings.Join(connsTo(t, ctx, l, custn, provb), ", "))

	// A module provb does not have yet must come from custn, the only
	// holder, over a direct connection: when hole punching gave none, the
	// job fails, and says why, rather than pushing megabytes through the
	// relay.
	if ok == len(rs) && relayed > 0 {
		sieve, err := filepath.Abs("../../examples/wasm/sieve.wasm")
		if err != nil {
			t.Fatal(err)
		}
		r := runNetnsJob(ctx, l, custn, provb, specOf("sieve", sieve, `[-n, "1000"]`, "provb"), "20s")
		why := "not sent through a relay"
		switch {
		case r.ok:
			t.Errorf("a module went to provb through the relay, or a hole was punched after all:\n%s", r.out)
		case !strings.Contains(r.out, why):
			t.Errorf("the job needing a module through the relay failed without saying %q:\n%s", why, lastLines(r.out, 12))
		default:
			reportf("netns custn on provb, a new module: refused over the relay, as it must be: %q", lineWith(r.out, why))
		}
	}

	// Then each public provider: a few jobs, one after the other.
	results := map[string][]jobResult{}
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
		if h.name == "cust" {
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
			"executor.cache_dir=" + cache, "metrics.listen=" + netnsMetrics,
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
	out, err := l.command(ctx, cust.name, "job", "run", "--data-dir", cust.dir, "--placement-timeout", placementTimeout, spec).CombinedOutput()
	r := jobResult{out: string(out), err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	}
	switch {
	case err != nil:
	case !strings.Contains(r.out, "hello, "+want.name+"!"):
		r.err = errors.New("no greeting in its output")
	case !strings.Contains(r.out, "on "+shortPeer(want.peerID.String())):
		r.err = fmt.Errorf("not run on %s (%s)", want.name, shortPeer(want.peerID.String()))
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
	out, err := l.command(ctx, cust.name, "peers", "-o", "json", "--data-dir", cust.dir).Output()
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

// metricsOf reads n's Prometheus metrics on its metrics address, in its
// namespace: each series, with its labels, to its value.
func metricsOf(t *testing.T, ctx context.Context, l *lab, n *netnsNode) map[string]float64 {
	t.Helper()
	b, err := exec.CommandContext(ctx, "ip", "netns", "exec", l.name(n.name), "curl", "-sf", "http://"+netnsMetrics+"/metrics").Output()
	if err != nil {
		t.Errorf("metrics of %s: %v", n.name, err)
		return nil
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// lineWith is the first line of s holding sub.
func lineWith(s, sub string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
