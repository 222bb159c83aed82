// Package devnet runs a federation of real cuivre nodes in one process, on
// loopback: each node a libp2p host on QUIC in the private DHT, with its own
// key and bbolt store, all sharing one wazero executor (so modules compile
// once). The demo, the integration tests and `cuivre devnet` use it.
package devnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/scheduler"
)

// Profile is a kind of provider: where it is, who runs it, what it sells and
// at what price.
type Profile struct {
	Name          string
	Region        string // its jurisdiction is the region's first two letters
	Operator      string
	Certification string
	CPUMillis     uint64
	MemoryBytes   uint64
	CPUPrice      uint64 // nano-EUR per vCPU-second
	MemoryPrice   uint64 // nano-EUR per GiB-second
}

// Profiles is the default mix: SMEs, a large subsidised sovereign site, a
// certified health-data host, across six regions and four jurisdictions. It
// is examples/devnet/profiles.yaml, which a test keeps the same.
var Profiles = []Profile{
	{"sme-paris", "fr-par", "atelier", "", 4000, 8 << 30, 11_000, 1_400},
	{"sme-lyon", "fr-lyo", "rhone-it", "", 2000, 8 << 30, 9_000, 1_400},
	{"sovereign", "fr-par", "etat", "secnumcloud", 16000, 64 << 30, 4_000, 1_400},
	{"health", "fr-mrs", "sante-plus", "hds", 8000, 32 << 30, 15_000, 1_400},
	{"berlin", "de-fra", "kiez", "", 4000, 8 << 30, 10_000, 1_400},
	{"brussels", "be-bru", "atomium", "", 4000, 8 << 30, 12_000, 1_400},
	{"amsterdam", "nl-ams", "polder", "", 4000, 8 << 30, 10_500, 1_400},
	{"lyon-2", "fr-lyo", "rhone-it", "", 4000, 8 << 30, 9_500, 1_400},
}

// Options of a devnet.
type Options struct {
	N        int       // providers; default len(Profiles)
	Dir      string    // data dirs go under it; default a new temporary dir, removed at Close
	Profiles []Profile // default Profiles; node i takes profile i mod len
	Log      *slog.Logger
	// OfferTimeout of the requester's placements; default 2 s.
	OfferTimeout time.Duration
	// CacheDir is the executor's compilation cache; default Dir/cache. A
	// cache kept across devnets compiles each module once.
	CacheDir string
	// ClientRequesters makes the requesters NewRequester adds nodes of role
	// requester (SPEC 1): DHT clients, in no routing table, holding no
	// one's records, as a customer's node is. Default false: they sell next
	// to nothing, as Requester does, and are DHT servers.
	ClientRequesters bool
}

// Devnet is a running federation: providers and one requester (Requester),
// the requester serving the local API when asked.
type Devnet struct {
	Providers []*node.Node
	Profiles  []Profile // of each provider
	Requester *node.Node
	Dir       string
	opts      Options
	boot      []peer.AddrInfo
	extra     []*node.Node // requesters added by NewRequester
	exec      *exec.Executor
	stores    []*store.Store
	datas     []*data.Store
	tempDir   bool
}

// Start starts a devnet and waits until every node has a DHT peer and every
// provider has announced itself.
func Start(ctx context.Context, o Options) (_ *Devnet, err error) {
	if len(o.Profiles) == 0 {
		o.Profiles = Profiles
	}
	if o.N <= 0 {
		o.N = len(o.Profiles)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.OfferTimeout <= 0 {
		o.OfferTimeout = 2 * time.Second
	}
	d := &Devnet{Dir: o.Dir, opts: o}
	if d.Dir == "" {
		if d.Dir, err = os.MkdirTemp("", "cuivre-devnet"); err != nil {
			return nil, err
		}
		d.tempDir = true
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	// Scratch areas live in memory: allow what the providers sell (1 GiB).
	cache := o.CacheDir
	if cache == "" {
		cache = filepath.Join(d.Dir, "cache")
	}
	if d.exec, err = exec.New(ctx, exec.Config{CacheDir: cache, MaxOutputBytes: 1 << 30}); err != nil {
		return nil, err
	}
	var boot []peer.AddrInfo
	for i := range o.N {
		p := o.Profiles[i%len(o.Profiles)]
		labels := []scheduler.Label{{Key: "region", Value: p.Region}, {Key: "jurisdiction", Value: p.Region[:2]}, {Key: "operator", Value: p.Operator}}
		if p.Certification != "" {
			labels = append(labels, scheduler.Label{Key: "certification", Value: p.Certification})
		}
		n, err := d.newNode(ctx, fmt.Sprintf("node-%d", i+1), boot, o, scheduler.MarketConfig{
			Capacity:  scheduler.Resources{CPUMillis: p.CPUMillis, MemoryBytes: p.MemoryBytes, ScratchBytes: 1 << 30},
			Labels:    scheduler.NewLabels(labels...),
			Executors: []string{"wasm"},
			Pricing:   scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: p.CPUPrice, MemoryNanosPerGiBSecond: p.MemoryPrice}},
		}, false)
		if err != nil {
			return nil, err
		}
		if boot == nil {
			boot = []peer.AddrInfo{n.AddrInfo()}
		}
		d.Providers, d.Profiles = append(d.Providers, n), append(d.Profiles, p)
	}
	d.boot = boot
	if d.Requester, err = d.newNode(ctx, "node-0", boot, o, requesterMarket, false); err != nil {
		return nil, err
	}
	all := append([]*node.Node{d.Requester}, d.Providers...)
	for _, n := range append(d.Providers[1:], d.Requester) {
		if err := n.Bootstrap(ctx); err != nil {
			return nil, err
		}
	}
	if err := WaitFor(ctx, time.Minute, func() bool {
		for _, n := range all {
			if n.RoutingTableSize() == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("the DHT did not form: %w", err)
	}
	for _, p := range d.Providers {
		// A minute: a federation of a hundred nodes on two cores takes
		// seconds to announce each provider's keys while the DHT forms.
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		err := p.Advertise(actx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("advertise: %w", err)
		}
		if err := p.Start(ctx); err != nil {
			return nil, err
		}
	}
	if err := d.writeBootstrap(); err != nil {
		return nil, err
	}
	return d, nil
}

// BootstrapFile is the file in a devnet's Dir that lists its bootstrap
// multiaddrs, one a line (SPEC 4.1): what a node of another implementation,
// or of another process, puts in its configuration to join the devnet.
const BootstrapFile = "bootstrap.txt"

// BootstrapAddrs returns the multiaddrs, ending in /p2p/<peer ID>, of the
// devnet's providers: DHT servers, each a bootstrap peer. The slice is the
// caller's.
func (d *Devnet) BootstrapAddrs() ([]string, error) {
	var out []string
	for _, p := range d.Providers {
		ai := p.AddrInfo()
		addrs, err := peer.AddrInfoToP2pAddrs(&ai)
		if err != nil {
			return nil, fmt.Errorf("bootstrap address of %s: %w", p.ID(), err)
		}
		for _, a := range addrs {
			out = append(out, a.String())
		}
	}
	return out, nil
}

// writeBootstrap writes BootstrapAddrs to Dir/BootstrapFile.
func (d *Devnet) writeBootstrap() error {
	addrs, err := d.BootstrapAddrs()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, a := range addrs {
		b.WriteString(a + "\n")
	}
	if err := os.WriteFile(filepath.Join(d.Dir, BootstrapFile), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("devnet bootstrap file: %w", err)
	}
	return nil
}

// requesterMarket is what a requester sells: next to nothing, so that it
// places jobs on the providers rather than runs them.
var requesterMarket = scheduler.MarketConfig{
	Capacity: scheduler.Resources{CPUMillis: 1, MemoryBytes: 1 << 20}, Executors: []string{"wasm"},
	Pricing: scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR"}},
}

// NewRequester starts one more requester, with a new key, its own store and
// empty caches, bootstrapped into the devnet like Requester, and returns once
// it has a DHT peer: a requester that has never contacted the providers.
// Close closes it too.
func (d *Devnet) NewRequester(ctx context.Context) (*node.Node, error) {
	return d.NewRequesterAt(ctx, d.boot)
}

// NewRequesterAt is NewRequester for a requester that joins the DHT through
// boot rather than the devnet's nodes: another federation, such as the
// conformance kit's providers.
func (d *Devnet) NewRequesterAt(ctx context.Context, boot []peer.AddrInfo) (*node.Node, error) {
	n, err := d.newNode(ctx, fmt.Sprintf("requester-%d", len(d.extra)+1), boot, d.opts, requesterMarket, d.opts.ClientRequesters)
	if err != nil {
		return nil, err
	}
	d.extra = append(d.extra, n)
	if err := n.Bootstrap(ctx); err != nil {
		return nil, err
	}
	if err := WaitFor(ctx, 20*time.Second, func() bool { return n.RoutingTableSize() > 0 }); err != nil {
		return nil, fmt.Errorf("new requester did not join the DHT: %w", err)
	}
	return n, nil
}

func (d *Devnet) newNode(ctx context.Context, name string, boot []peer.AddrInfo, o Options, m scheduler.MarketConfig, client bool) (*node.Node, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(d.Dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(dir, node.StateFile), store.Options{})
	if err != nil {
		return nil, err
	}
	d.stores = append(d.stores, st)
	ds, err := data.Open(filepath.Join(dir, node.DataDir))
	if err != nil {
		return nil, err
	}
	d.datas = append(d.datas, ds)
	rand.Read(m.Seed[:])
	return node.New(node.Options{Identity: k, Market: m, Store: st, Data: ds, Exec: d.exec, Bootstrap: boot, RequesterOnly: client,
		Log: o.Log.With("node", name), Placement: scheduler.Config{OfferTimeout: o.OfferTimeout}})
}

// Kill closes provider i abruptly, as a crash would: no draining.
func (d *Devnet) Kill(i int) error { return d.Providers[i].Close() }

// Close stops every node and removes a temporary dir.
func (d *Devnet) Close() error {
	var errs []error
	for _, n := range append([]*node.Node{d.Requester}, d.extra...) {
		if n != nil {
			errs = append(errs, n.Close())
		}
	}
	for _, p := range d.Providers {
		p.Close() // a killed one is already closed
	}
	if d.exec != nil {
		errs = append(errs, d.exec.Close(context.Background()))
	}
	for _, s := range d.stores {
		errs = append(errs, s.Close())
	}
	for _, s := range d.datas {
		errs = append(errs, s.Close())
	}
	if d.tempDir {
		os.RemoveAll(d.Dir)
	}
	return errors.Join(errs...)
}

// WaitFor polls cond every 20 ms until it holds, ctx ends or timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
