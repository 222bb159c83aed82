package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cuivre/cuivre/node/config"
)

// DrainGrace is how long a stopping daemon lets running leases finish.
const DrainGrace = 30 * time.Second

// Daemon is a node run from a data dir: what `cuivre daemon` starts.
type Daemon struct {
	Node *Node
	API  *API
	dir  string
}

// StartDaemon loads the identity in dir, sizes the market from the machine and
// the config, and starts the node and its local API.
func StartDaemon(ctx context.Context, dir string, c config.Config, log *slog.Logger) (*Daemon, error) {
	key, err := config.LoadIdentity(dir)
	if err != nil {
		return nil, err
	}
	detected, err := config.Detect(dir)
	if err != nil {
		return nil, fmt.Errorf("detect capacity: %w", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	market, err := c.Market(string(id), detected)
	if err != nil {
		return nil, err
	}
	opts := Options{Identity: key, Market: market, NAT: c.NAT.AutoNAT || c.NAT.HolePunching || c.NAT.RelayClient, Log: log}
	for _, s := range c.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("listen %q: %w", s, err)
		}
		opts.Listen = append(opts.Listen, a)
	}
	for _, s := range c.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %w (give a multiaddr ending in /p2p/<peer ID>)", s, err)
		}
		opts.Bootstrap = append(opts.Bootstrap, *ai)
	}
	n, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	api, err := n.ServeAPI(c.API.Listen, dir)
	if err != nil {
		n.Close()
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		log.Warn("bootstrap", "err", err)
	}
	log.Info("cuivre daemon up", "peer", n.ID(), "addrs", n.host.Addrs(), "api", api.Addr(),
		"cpu_millis", market.Capacity.CPUMillis, "memory", market.Capacity.MemoryBytes)
	return &Daemon{Node: n, API: api, dir: dir}, nil
}

// Stop drains the node (no new offers, records left to expire), lets running
// leases finish within grace, then closes everything.
func (d *Daemon) Stop(grace time.Duration) error {
	d.Node.SetDraining(true)
	deadline := time.Now().Add(grace)
	for d.Node.MarketState().Leases > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(d.API.Close(ctx), d.Node.Close())
}
