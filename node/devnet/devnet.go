package devnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
)

// Defaults of Options.
const (
	// DefaultN is the number of nodes of a devnet.
	DefaultN = 8
	// DefaultMaxScratch is the executor's default scratch ceiling per lease:
	// scratch areas live in memory, and the example jobs ask for up to 256 MiB.
	DefaultMaxScratch = 1 << 30
	// ReadyTimeout bounds the wait for every node to have a DHT peer, and
	// then for every node's first announcements.
	ReadyTimeout = 30 * time.Second
)

// Options configure a devnet. The zero value of each field is its
// documented default.
type Options struct {
	// N is the number of nodes. Default DefaultN.
	N int
	// Dir holds the devnet's files (see Devnet.Dir); it is created if
	// needed. Default: a new temporary directory, removed by Close.
	Dir string
	// Profiles are the kinds of node, dealt out by Assign. Default
	// DefaultProfiles (examples/devnet/profiles.yaml).
	Profiles []Profile
	// Log receives the nodes' logs, each with a "node" attribute. Default:
	// discarded.
	Log *slog.Logger
	// Exec configures the one executor the nodes share. Default CacheDir
	// Dir/cache and MaxOutputBytes DefaultMaxScratch; the rest as exec.New.
	Exec exec.Config
	// NodeOptions, if set, adjusts node i's options just before it is
	// created (placement timeouts, candidate TTL...).
	NodeOptions func(i int, o *node.Options)
}

// Devnet is a running federation of N nodes. Its methods are safe for
// concurrent use; its fields are set by Start and only read after.
type Devnet struct {
	// Dir holds node-<i>/ for each node (its identity.key and state.db),
	// cache/ (compiled modules), and node 0's api, api.token and
	// identity.key, so that CUIVRE_DIR=Dir reaches node 0 and signs with
	// its key.
	Dir string
	// Providers are the nodes, node i at index i: every one sells capacity,
	// node 0 included. A killed node stays at its index, closed. Nodes
	// returns a copy.
	Providers []*node.Node
	// Profiles[i] is the profile of node i.
	Profiles []Profile
	// Requester is node 0, whose local API the CLI uses. A requester never
	// leases to itself, so its jobs run on the other nodes.
	Requester *node.Node

	api     *node.API
	exec    *exec.Executor
	stores  []*store.Store
	tempDir bool

	mu     sync.Mutex
	killed map[int]bool
	closed bool
}

// Start starts a devnet: node 0, then each other node joining through node 0
// and one earlier node; it waits until every node has a DHT peer, has each
// announce itself (so that when Start returns every node can be found under
// its facet keys), starts their background work, and serves node 0's API.
// ctx bounds the start only: Close stops the devnet.
func Start(ctx context.Context, o Options) (_ *Devnet, err error) {
	if o.N <= 0 {
		o.N = DefaultN
	}
	if len(o.Profiles) == 0 {
		o.Profiles = DefaultProfiles()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	d := &Devnet{Dir: o.Dir, killed: map[int]bool{}}
	if d.Dir == "" {
		if d.Dir, err = os.MkdirTemp("", "cuivre-devnet-"); err != nil {
			return nil, err
		}
		d.tempDir = true
	} else if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if o.Exec.CacheDir == "" {
		o.Exec.CacheDir = filepath.Join(d.Dir, "cache")
		if err := os.MkdirAll(o.Exec.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("devnet: executor cache: %w", err)
		}
	}
	if o.Exec.MaxOutputBytes == 0 {
		o.Exec.MaxOutputBytes = DefaultMaxScratch
	}
	if d.exec, err = exec.New(ctx, o.Exec); err != nil {
		return nil, fmt.Errorf("devnet: executor: %w", err)
	}

	for i, p := range Assign(o.Profiles, o.N) {
		var boot []peer.AddrInfo
		if i > 0 {
			boot = append(boot, d.Providers[0].AddrInfo())
		}
		if i > 1 {
			boot = append(boot, d.Providers[i/2].AddrInfo()) // a tree, so node 0 is not the only way in
		}
		n, err := d.newNode(ctx, i, o.Profiles[p], boot, o)
		if err != nil {
			return nil, fmt.Errorf("devnet: node %d (%s): %w", i, o.Profiles[p].Name, err)
		}
		d.Providers, d.Profiles = append(d.Providers, n), append(d.Profiles, o.Profiles[p])
	}
	d.Requester = d.Providers[0]

	rctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	if err := d.each(func(_ int, n *node.Node) error { return n.Bootstrap(rctx) }); err != nil {
		return nil, fmt.Errorf("devnet: bootstrap: %w", err)
	}
	if err := d.waitPeers(rctx); err != nil {
		return nil, err
	}
	if err := d.each(func(i int, n *node.Node) error {
		if err := n.Advertise(rctx); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("devnet: advertise: %w", err)
	}
	for _, n := range d.Providers {
		// The node's own loop announces again, then keeps its records fresh.
		if err := n.Start(ctx); err != nil {
			return nil, fmt.Errorf("devnet: start: %w", err)
		}
	}
	if err := d.serve(); err != nil {
		return nil, err
	}
	return d, nil
}

// newNode creates node i: its key (kept in Dir/node-<i>, so a devnet started
// again on the same Dir has the same peers), its store and its node.
func (d *Devnet) newNode(ctx context.Context, i int, p Profile, boot []peer.AddrInfo, o Options) (*node.Node, error) {
	dir := filepath.Join(d.Dir, "node-"+strconv.Itoa(i))
	key, err := identity(dir)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	m, err := p.Market(string(id))
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(dir, node.StateFile), store.Options{})
	if err != nil {
		return nil, err
	}
	d.stores = append(d.stores, st)
	opts := node.Options{
		Identity:  key,
		Listen:    []ma.Multiaddr{ma.StringCast(Listen)},
		Bootstrap: boot,
		Market:    m,
		Store:     st,
		Exec:      d.exec,
		Log:       o.Log.With("node", i),
	}
	if o.NodeOptions != nil {
		o.NodeOptions(i, &opts)
	}
	return node.New(ctx, opts)
}

// identity loads dir's identity.key, or creates dir and a new Ed25519 key.
func identity(dir string) (crypto.PrivKey, error) {
	if _, err := os.Stat(filepath.Join(dir, config.IdentityFile)); err == nil {
		return config.LoadIdentity(dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	return key, writeKey(filepath.Join(dir, config.IdentityFile), key)
}

func writeKey(path string, key crypto.PrivKey) error {
	b, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600) // an existing file keeps its mode through WriteFile
}

// each runs f on every node at once and joins the errors.
func (d *Devnet) each(f func(i int, n *node.Node) error) error {
	errs := make([]error, len(d.Providers))
	var wg sync.WaitGroup
	for i, n := range d.Providers {
		wg.Go(func() { errs[i] = f(i, n) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitPeers waits until every node has a peer in its DHT routing table.
func (d *Devnet) waitPeers(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var alone []int
		for i, n := range d.Providers {
			if n.RoutingTableSize() == 0 {
				alone = append(alone, i)
			}
		}
		if len(alone) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devnet: nodes %v have no DHT peer: %w", alone, ctx.Err())
		case <-tick.C:
		}
	}
}

// serve starts node 0's API on a free loopback port, writing Dir/api and
// Dir/api.token, and copies node 0's key to Dir/identity.key, the key
// `cuivre job run` signs with.
func (d *Devnet) serve() error {
	if err := writeKey(filepath.Join(d.Dir, config.IdentityFile), d.Requester.Identity()); err != nil {
		return fmt.Errorf("devnet: identity: %w", err)
	}
	api, err := d.Requester.ServeAPI("127.0.0.1:0", d.Dir)
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	d.api = api
	return nil
}

// Nodes returns the nodes, node i at index i, killed ones included (closed).
// The caller owns the slice, not the nodes.
func (d *Devnet) Nodes() []*node.Node { return append([]*node.Node(nil), d.Providers...) }

// Node returns node i; it panics if there is no node i, as indexing does.
func (d *Devnet) Node(i int) *node.Node { return d.Providers[i] }

// API returns node 0's local API (its address and token).
func (d *Devnet) API() *node.API { return d.api }

// Kill closes node i abruptly, as a crash would look to its peers: no
// draining, running leases cancelled, connections dropped. Its store stays
// open until Close. Killing node 0 stops the API too. Killing a node twice
// does nothing.
func (d *Devnet) Kill(i int) error {
	if i < 0 || i >= len(d.Providers) {
		return fmt.Errorf("devnet: no node %d (0 to %d)", i, len(d.Providers)-1)
	}
	d.mu.Lock()
	if d.killed[i] || d.closed {
		d.mu.Unlock()
		return nil
	}
	d.killed[i] = true
	d.mu.Unlock()
	var errs []error
	if i == 0 && d.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		errs = append(errs, d.api.Close(ctx))
		cancel()
	}
	return errors.Join(append(errs, d.Providers[i].Close())...)
}

// Close stops the API and every node still running, then the executor and
// the stores, and removes Dir if Start made it. Only the first call does
// anything.
func (d *Devnet) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	killed := d.killed
	d.mu.Unlock()
	var errs []error
	if d.api != nil && !killed[0] {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, d.api.Close(ctx))
		cancel()
	}
	errs = append(errs, d.each(func(i int, n *node.Node) error {
		if killed[i] {
			return nil
		}
		return n.Close()
	}))
	if d.exec != nil {
		errs = append(errs, d.exec.Close(context.Background()))
	}
	for _, s := range d.stores {
		errs = append(errs, s.Close())
	}
	if d.tempDir {
		errs = append(errs, os.RemoveAll(d.Dir))
	}
	return errors.Join(errs...)
}

var _ io.Closer = (*Devnet)(nil)
