package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/config"
)

// Options are a run's settings; Run fills the zero ones with the defaults.
type Options struct {
	// Exe is the cuivre binary the daemons run, and Env their environment
	// (the tests run their own binary as cuivre with a variable set).
	// Default: this executable, this environment.
	Exe string
	Env []string
	// Dir holds the daemons' data dirs, kept after the run; it must be new
	// or empty. Default: a temporary directory, removed after the run.
	Dir string
	// Providers and Requesters are how many daemons of each to run.
	// Default 10 and 1.
	Providers, Requesters int
	// Duration is how long jobs are submitted and faults injected; the run
	// then heals every fault and waits for the jobs to end. Default 10m.
	Duration time.Duration
	// Rate is jobs submitted per second. Default 1.
	Rate float64
	// Seed draws the fault plan; the same seed and settings give the same
	// plan. Default: the clock.
	Seed uint64
	// Faults is how many faults to plan; 0: one every 2.5 s.
	Faults int
	// Partitions asks for partitions, which need root and iproute2; without
	// them the run goes on without, and the report says why.
	Partitions bool
	// PartitionFor is how long a partition lasts. Default 90s.
	PartitionFor time.Duration
	// Module is the sieve's WebAssembly (examples/wasm/sieve.wasm) and Args
	// its arguments, which set how long a job runs. Default args: a few
	// seconds of counting primes.
	Module []byte
	Args   []string
	// Heartbeat and PlacementTimeout go into every job. Default 500ms, 2m.
	Heartbeat, PlacementTimeout time.Duration
	// CacheDir is the daemons' shared compilation cache. Default: under Dir.
	CacheDir string
	// Log gets the plan and the run's progress. Default: discarded.
	Log io.Writer
}

// DefaultArgs make the sieve count the primes below 5,000,000 once: about
// 0.6 s of one core alone, 1 to 3 s under the stream's load. A stream of 1
// job/s then keeps about a third of two cores busy beside eleven daemons:
// a heavier job (two rounds were tried) makes the jobs queue for CPU until
// their placement timeout, which measures the machine, not the faults.
var DefaultArgs = []string{"--n", "5000000", "--rounds", "1"}

func (o *Options) defaults() error {
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("the cuivre binary: %w", err)
		}
		o.Exe = exe
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	if o.Providers == 0 {
		o.Providers = 10
	}
	if o.Requesters == 0 {
		o.Requesters = 1
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Minute
	}
	if o.Rate == 0 {
		o.Rate = 1
	}
	if o.PartitionFor == 0 {
		o.PartitionFor = 90 * time.Second
	}
	if o.Args == nil {
		o.Args = DefaultArgs
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 500 * time.Millisecond
	}
	if o.PlacementTimeout == 0 {
		o.PlacementTimeout = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	switch {
	case o.Providers < 2 || o.Providers > 200:
		return fmt.Errorf("providers %d: run 2 to 200", o.Providers)
	case o.Requesters < 1 || o.Requesters > 20:
		return fmt.Errorf("requesters %d: run 1 to 20", o.Requesters)
	case o.Duration < 10*time.Second:
		return fmt.Errorf("duration %v: at least 10s", o.Duration)
	case o.Rate <= 0 || o.Rate > 50:
		return fmt.Errorf("rate %g: more than 0 and at most 50 jobs/s", o.Rate)
	case o.Faults < 0:
		return fmt.Errorf("faults %d: 0 (one every 2.5 s) or more", o.Faults)
	case len(o.Module) == 0:
		return errors.New("no module: give the sieve's WebAssembly (examples/wasm/sieve.wasm)")
	}
	return nil
}

// run is the state of one harness run.
type run struct {
	o          Options
	providers  []*proc
	requesters []*proc
	ns         *netns
	spec       jobSpec
	keys       []crypto.PrivKey // the requesters' identities, which sign their jobs
	jobs       ledger
	report     *Report

	mu       sync.Mutex
	hits     []hit
	reqUp    []bool
	reqDown  []outage // requester kills, from the kill to the restart ready
	sentMod  []bool
	t0       time.Time
	restores sync.WaitGroup
	inflight sync.WaitGroup // submissions not yet answered
}

// Run runs the federation, its job stream and its faults, heals everything,
// lets the jobs end, stops the daemons and audits their stores. It removes
// every namespace and link it made before it returns, on error and on
// ctx's cancellation too. The report is returned with a nil error whatever
// it found: Report.OK says whether the run kept every job.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	r := &run{o: o, report: &Report{Seed: o.Seed, Duration: o.Duration.String(), Providers: o.Providers, Requesters: o.Requesters,
		Rate: o.Rate, Faults: map[Kind]int{}}}
	r.spec = newJobSpec(o.Module, o.Args, o.Heartbeat, o.PlacementTimeout)
	if o.Dir == "" {
		tmp, err := os.MkdirTemp("", "cuivre-chaos-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		r.o.Dir = tmp
	} else if err := emptyDir(o.Dir); err != nil {
		return nil, err
	}
	if r.o.CacheDir == "" {
		r.o.CacheDir = filepath.Join(r.o.Dir, "cache")
	}

	if o.Partitions {
		why := probeNetns()
		if why == "" {
			cleanStale(ctx)
			ns, err := newNetns(ctx)
			if err != nil {
				why = err.Error()
			} else {
				r.ns = ns
				defer func() {
					if err := ns.Close(); err != nil {
						fmt.Fprintf(o.Log, "removing the run's namespaces and links: %v (remove them with `ip netns del`, `ip link del`)\n", err)
					}
				}()
			}
		}
		r.report.PartitionsSkipped = why
	} else {
		r.report.PartitionsSkipped = "not asked (--no-partitions)"
	}
	r.report.Partitions = r.ns != nil
	if !r.report.Partitions {
		fmt.Fprintf(o.Log, "partitions skipped: %s; the daemons run on loopback\n", r.report.PartitionsSkipped)
	}
	defer r.stopAll(syscall.SIGKILL) // on any early return

	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	r.report.Plan = makePlan(planConfig{Seed: o.Seed, Duration: o.Duration, Providers: o.Providers, Requesters: o.Requesters,
		Faults: o.Faults, Partitions: r.ns != nil, PartitionFor: o.PartitionFor})
	fmt.Fprintf(o.Log, "plan (seed %d: run again with --seed %d to replay it):\n", o.Seed, o.Seed)
	for _, f := range r.report.Plan {
		fmt.Fprintln(o.Log, f)
	}

	if err := r.stream(ctx); err != nil {
		return nil, err
	}
	r.finish(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	r.stopAll(syscall.SIGTERM)
	var dirs [2][]string
	for _, p := range r.providers {
		dirs[0] = append(dirs[0], p.dir)
	}
	for _, p := range r.requesters {
		dirs[1] = append(dirs[1], p.dir)
	}
	if err := auditStores(r.report, dirs[0], dirs[1]); err != nil {
		return nil, err
	}
	r.tally()
	return r.report, nil
}

func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty (a previous run?): give a new or empty directory", dir)
	}
	return nil
}

// setup makes the data dirs and starts every daemon, providers first.
func (r *run) setup(ctx context.Context) error {
	mk := func(name string) (*proc, error) {
		dir := filepath.Join(r.o.Dir, name)
		res, err := config.Init(dir, false)
		if err != nil {
			return nil, err
		}
		return &proc{name: name, dir: dir, peerID: res.PeerID.String(), exe: r.o.Exe, env: r.o.Env}, nil
	}
	for k := range r.o.Providers {
		p, err := mk("p" + strconv.Itoa(k))
		if err != nil {
			return err
		}
		if r.ns != nil {
			name, addr, err := r.ns.AddProvider(ctx, k)
			if err != nil {
				return err
			}
			p.netns, p.listen = name, fmt.Sprintf("/ip4/%s/udp/4242/quic-v1", addr)
		} else {
			port, err := freeUDPPort("127.0.0.1")
			if err != nil {
				return err
			}
			p.listen = fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)
		}
		r.providers = append(r.providers, p)
	}
	host := "127.0.0.1"
	if r.ns != nil {
		host = r.ns.HarnessAddr().String()
	}
	for k := range r.o.Requesters {
		p, err := mk("r" + strconv.Itoa(k))
		if err != nil {
			return err
		}
		port, err := freeUDPPort(host)
		if err != nil {
			return err
		}
		p.listen = fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", host, port)
		key, err := config.LoadIdentity(p.dir)
		if err != nil {
			return err
		}
		r.keys = append(r.keys, key)
		r.requesters = append(r.requesters, p)
	}
	r.reqUp, r.sentMod = make([]bool, len(r.requesters)), make([]bool, len(r.requesters))

	// Every daemon knows the others' fixed addresses from the start, so a
	// restarted one finds the federation whoever else is down.
	for k, p := range r.providers {
		var boot []string
		for i := 1; i <= min(8, len(r.providers)-1); i++ {
			boot = append(boot, r.providers[(k+i)%len(r.providers)].addr())
		}
		p.args = r.settings(p.listen, boot, "2", "2Gi")
	}
	var boot []string
	for _, p := range r.providers {
		boot = append(boot, p.addr())
	}
	for _, p := range r.requesters {
		// A requester sells less than a job asks: the jobs run on the
		// providers, whose faults are what is measured.
		p.args = r.settings(p.listen, boot, "0.5", "512Mi")
	}

	all := append(append([]*proc(nil), r.providers...), r.requesters...)
	for _, p := range all {
		if err := p.start(); err != nil {
			return err
		}
	}
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, p := range all {
		wg.Go(func() { errs[i] = p.waitReady(ctx, 2*time.Minute) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i := range r.reqUp {
		r.reqUp[i] = true
	}
	// The stream starts once each requester sees most providers in its
	// routing table; a federation still forming would make the first
	// jobs' figures the DHT's, not the faults'.
	deadline := time.Now().Add(time.Minute)
	for _, p := range r.requesters {
		for {
			var st api.NodeStatus
			c, err := api.Dial(p.dir)
			if err == nil && c.Get("/v1/status", &st) == nil && st.DHTPeers >= (len(r.providers)+1)/2 {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(r.o.Log, "%s sees %d DHT peers after a minute; starting anyway\n", p.name, st.DHTPeers)
				break
			}
			if err := clock.Sleep(ctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(r.o.Log, "federation up: %d providers, %d requester(s), in %s\n", len(r.providers), len(r.requesters), r.o.Dir)
	return nil
}

// settings are a daemon's --set flags: its fixed address, a small
// capacity sold whole, no NAT traversal (no port mapping, no relays: no
// traffic leaves the run's addresses), and the shared compilation cache.
func (r *run) settings(listen string, boot []string, cpu, mem string) []string {
	kv := []string{
		"listen=" + listen,
		"api.listen=127.0.0.1:0",
		"bootstrap=" + strings.Join(boot, ","),
		"nat.autonat=false", "nat.hole_punching=false", "nat.relay_client=false", "nat.port_mapping=false", "nat.relay_service=off",
		"capacity.auto=false", "capacity.cpu=" + cpu, "capacity.memory=" + mem, "capacity.scratch=1Gi",
		"capacity.reserve.cpu=0", "capacity.reserve.memory=0", "capacity.offered_percent=100",
		"executor.cache_dir=" + r.o.CacheDir,
		"labels.region=chaos", "labels.jurisdiction=fr",
	}
	var args []string
	for _, s := range kv {
		args = append(args, "--set", s)
	}
	return args
}

func freeUDPPort(host string) (int, error) {
	c, err := net.ListenPacket("udp4", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("a free UDP port on %s: %w", host, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// stopAll stops every daemon still running: SIGTERM drains (30 s of grace
// for running leases), SIGKILL at once.
func (r *run) stopAll(sig syscall.Signal) {
	var wg sync.WaitGroup
	for _, p := range append(append([]*proc(nil), r.requesters...), r.providers...) {
		wg.Go(func() { p.kill(sig, 45*time.Second) })
	}
	wg.Wait()
}
