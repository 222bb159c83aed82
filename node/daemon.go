package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/p2p"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/scheduler"
)

// DrainGrace is how long a stopping daemon lets running leases finish.
const DrainGrace = 30 * time.Second

// Daemon is a node run from a data dir: what `cuivre daemon` starts.
type Daemon struct {
	Node  *Node
	API   *api.API
	Store *store.Store
	Data  *data.Store
	Exec  *exec.Executor // nil for a requester only
	dir   string
	cfg   config.Config // as it runs: the start's, with the prices and labels of the last reload

	metrics *metricsServer // on config metrics.listen; nil without
}

// StateFile is the name of the node's bbolt file in its data dir.
const StateFile = "state.db"

// DataDir is the folder of the node's content-addressed data in its data dir.
const DataDir = "blocks"

// DaemonOption sets something of a daemon that is not in its config.
type DaemonOption func(*Options)

// WithBuild names the binary the daemon runs, for cuivre_build_info.
func WithBuild(b Build) DaemonOption { return func(o *Options) { o.Build = b } }

// StartDaemon loads the identity in dir, sizes the market from the machine and
// the config, and starts the node, its local API and, if the config asks, its
// metrics address. ctx bounds the start only (bootstrapping): the daemon runs
// until Stop, so that a signal's context can ask for a drain instead of
// cutting the runs short.
//
// A requester (c.Role) has no market and no executor: it detects nothing of
// the machine but the free disk its data store may take (when data.max_size
// is 0), and its node buys only (Options.RequesterOnly).
func StartDaemon(ctx context.Context, dir string, c config.Config, log *slog.Logger, with ...DaemonOption) (*Daemon, error) {
	key, err := config.LoadIdentity(dir)
	if err != nil {
		return nil, err
	}
	return StartDaemonWith(ctx, dir, key, c, log, with...)
}

// StartDaemonWith is StartDaemon with the node's identity given rather than
// read from dir, for a node whose key lives elsewhere (`cuivre job run
// --bootstrap`, whose data dir is a temporary one).
func StartDaemonWith(ctx context.Context, dir string, key crypto.PrivKey, c config.Config, log *slog.Logger, with ...DaemonOption) (*Daemon, error) {
	requesterOnly := c.Role == config.RoleRequester
	var market scheduler.MarketConfig // a requester's stays empty
	quota := uint64(c.Data.MaxSize)
	if requesterOnly {
		if quota == 0 {
			free, err := config.FreeDisk(dir)
			if err != nil {
				return nil, fmt.Errorf("%w (set data.max_size)", err)
			}
			quota = free
		}
	} else {
		detected, err := config.Detect(dir)
		if err != nil {
			return nil, fmt.Errorf("detect capacity: %w", err)
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if market, err = c.Market(string(id), detected); err != nil {
			return nil, err
		}
		if quota == 0 {
			quota = market.Capacity.ScratchBytes
		}
	}
	st, err := store.Open(filepath.Join(dir, StateFile), store.Options{})
	if err != nil {
		return nil, err
	}
	var ex *exec.Executor
	closeExec := func() {
		if ex != nil {
			ex.Close(context.Background())
		}
	}
	if !requesterOnly && c.Role != config.RoleRetailer { // a retailer's jobs run on its site
		if ex, err = newExecutor(ctx, dir, c.Executor); err != nil {
			st.Close()
			return nil, err
		}
	}
	ds, err := data.OpenWith(filepath.Join(dir, DataDir), data.Options{Quota: quota, Keep: time.Duration(c.Data.Keep)})
	if err != nil {
		closeExec()
		st.Close()
		return nil, err
	}
	d := &Daemon{Store: st, Data: ds, Exec: ex, dir: dir, cfg: c}
	fail := func(err error) (*Daemon, error) {
		closeExec()
		ds.Close()
		st.Close()
		return nil, err
	}
	opts := Options{Identity: key, Market: market, RequesterOnly: requesterOnly, Retail: c.Role == config.RoleRetailer, Log: log, Store: st, Data: ds, Exec: ex,
		Limits: hostLimits(c.Limits)}
	if c.Wholesale.Enabled && !requesterOnly {
		t := c.Tariff(market.Capacity)
		opts.Tariff, opts.RentEvery = &t, time.Duration(c.Wholesale.BillEvery)
	}
	for _, s := range c.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fail(fmt.Errorf("listen %q: %w", s, err))
		}
		opts.Listen = append(opts.Listen, a)
	}
	for _, s := range c.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return fail(fmt.Errorf("bootstrap %q: %w (give a multiaddr ending in /p2p/<peer ID>)", s, err))
		}
		opts.Bootstrap = append(opts.Bootstrap, *ai)
	}
	opts.DiversityFilter = diversityFilter(opts.Listen)
	if opts.NAT, err = natOf(c.NAT, opts.Listen); err != nil {
		return fail(err)
	}
	for _, f := range with {
		f(&opts)
	}
	n, err := New(opts)
	if err != nil {
		return fail(err)
	}
	api, err := n.ServeAPI(c.API.Listen, dir)
	if err != nil {
		n.Close()
		return fail(err)
	}
	ms, err := serveMetrics(c.Metrics.Listen, dir, n.Metrics(), log)
	if err != nil {
		api.Close(context.Background())
		n.Close()
		return fail(err)
	}
	d.metrics = ms
	if err := n.Start(ctx); err != nil {
		log.Warn("bootstrap", "err", err)
	}
	if r := n.Transport().Reach(); len(r.Announced) == 0 && !c.NAT.PrivateAddrs && diversityFilter(opts.Listen) {
		log.Warn("no address to announce yet: peers can reach this node only once it holds a relay slot (behind a NAT, as AutoNAT will tell); "+
			"on a private network set nat.private_addrs: true and nat.reachability: public", "listen", r.Listen)
	}
	log.Info("cuivre daemon up", "role", n.Role(), "peer", n.ID(), "addrs", n.Host().Addrs(), "api", api.Addr(),
		"cpu_millis", market.Capacity.CPUMillis, "memory", market.Capacity.MemoryBytes, "data_quota", quota)
	d.Node, d.API = n, api
	return d, nil
}

// newExecutor starts a provider's executor, its compilation cache in dir
// unless e names an absolute one.
func newExecutor(ctx context.Context, dir string, e config.Executor) (*exec.Executor, error) {
	cacheDir := e.CacheDir
	if cacheDir != "" && !filepath.IsAbs(cacheDir) {
		cacheDir = filepath.Join(dir, cacheDir)
	}
	if cacheDir != "" {
		if err := os.MkdirAll(cacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("executor cache: %w", err)
		}
	}
	ex, err := exec.New(ctx, exec.Config{
		CacheDir: cacheDir, MaxMemoryBytes: uint64(e.MaxMemory),
		MaxOutputBytes: uint64(e.MaxScratch), MaxTimeout: time.Duration(e.MaxTimeout),
		ScratchDir: filepath.Join(dir, "scratch"),
	})
	if err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	return ex, nil
}

// Stop drains the node (no new offers at once, records left to expire), lets
// running leases finish within grace, cancels the rest (each is recorded
// cancelled, billed, and its watching requester told), then closes
// everything.
func (d *Daemon) Stop(grace time.Duration) error {
	if k := d.Node.Drain(grace, 5*time.Second); k > 0 {
		d.Node.log.Warn("leases cancelled at the end of the drain", "leases", k, "grace", grace)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var execErr error
	if d.Exec != nil {
		execErr = d.Exec.Close(ctx)
	}
	return errors.Join(d.API.Close(ctx), d.metrics.close(ctx), d.Node.Close(), execErr, d.Data.Close(), d.Store.Close())
}

// Reloaded is what a reload did: the changes it applied, and those that
// wait for a restart (the running values stay).
type Reloaded struct {
	Applied, Restart []config.Change
}

// Reload applies the prices and labels of c, the config read again; a
// change of any other setting waits for a restart, and is listed as such. A
// requester has no prices or labels: it refuses a change of them.
func (d *Daemon) Reload(c config.Config) (Reloaded, error) {
	var r Reloaded
	for _, ch := range config.Changes(d.cfg, c) {
		if config.Reloadable(ch.Path) {
			r.Applied = append(r.Applied, ch)
		} else {
			r.Restart = append(r.Restart, ch)
		}
	}
	if len(r.Applied) == 0 {
		return r, nil
	}
	if d.Node.Role() == config.RoleRequester {
		return Reloaded{}, fmt.Errorf("reload: %w: it has no prices or labels", errSellsNothing)
	}
	detected, err := config.Detect(d.dir)
	if err != nil {
		return Reloaded{}, err
	}
	m, err := c.Market(string(d.Node.ID()), detected)
	if err != nil {
		return Reloaded{}, err
	}
	if err := d.Node.Reprice(m.Pricing, m.Labels); err != nil {
		return Reloaded{}, err
	}
	if d.cfg.Wholesale.Enabled {
		d.Node.SetTariff(c.Tariff(m.Capacity)) // its labels are the node's
	}
	d.cfg.Pricing, d.cfg.Labels = c.Pricing, c.Labels
	return r, nil
}

// hostLimits returns the limits the node's host enforces, from its config.
func hostLimits(l config.Limits) p2p.Limits {
	rate := func(n uint32) float64 {
		if n == 0 {
			return -1 // no limit
		}
		return float64(n)
	}
	return p2p.Limits{RequestsPerSecond: rate(l.RequestsPerSecond), BlockRequestsPerSecond: rate(l.BlockRequestsPerSecond),
		ConnsPerIP: int(l.ConnsPerIP), Loopback: l.Loopback}
}

// natOf is the NAT traversal a daemon runs: each switch of its config as it
// says, but port mapping never when every listen address is loopback (a
// devnet, a test), where it would only send discovery traffic to the host's
// LAN. Its relays were checked by config.Validate.
func natOf(c config.NAT, listen []ma.Multiaddr) (p2p.NAT, error) {
	n := p2p.NAT{AutoNAT: c.AutoNAT, HolePunching: c.HolePunching, RelayClient: c.RelayClient,
		PortMapping: c.PortMapping && diversityFilter(listen), PrivateAddrs: c.PrivateAddrs,
		RelayLimits: p2p.RelayLimits{Reservations: int(c.RelayLimits.Reservations), CircuitsPerPeer: int(c.RelayLimits.CircuitsPerPeer),
			CircuitDuration: time.Duration(c.RelayLimits.CircuitDuration), CircuitData: int64(c.RelayLimits.CircuitData)}}
	switch c.Reachability {
	case "public":
		n.Reachability = network.ReachabilityPublic
	case "private":
		n.Reachability = network.ReachabilityPrivate
	}
	switch c.RelayService {
	case "auto":
		n.RelayService = p2p.RelayAuto
	case "on":
		n.RelayService = p2p.RelayOn
	}
	// One relay per peer, however many of its addresses are listed:
	// autorelay waits for as many relays as it is given.
	var addrs []ma.Multiaddr
	for _, s := range c.Relays {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return p2p.NAT{}, fmt.Errorf("nat.relays: %q: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	if len(addrs) > 0 {
		relays, err := peer.AddrInfosFromP2pAddrs(addrs...)
		if err != nil {
			return p2p.NAT{}, fmt.Errorf("nat.relays: %w", err)
		}
		n.Relays = relays
	}
	return n, nil
}

// diversityFilter says whether a daemon listening on listen turns the DHT's
// routing-table diversity filter on (SPEC 4.1): yes, unless it listens on
// loopback only (the default), where every peer is in one IP group and the
// filter's limits would keep all but three peers out of the routing table.
func diversityFilter(listen []ma.Multiaddr) bool { return !p2p.Devnet(listen) }
