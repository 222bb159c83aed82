package main

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
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/requester"
)

// How long an ephemeral node waits, at most: to join the federation, and,
// once its job has ended, for a cancel to be told and the receipts'
// countersignatures to be taken by their providers before it stops.
const (
	ephemeralJoin   = 30 * time.Second
	ephemeralSettle = 10 * time.Second
)

// ephemeral is a requester node started for one command (`job run
// --bootstrap`), in a temporary data dir that close removes.
type ephemeral struct {
	d      *node.Daemon
	dir    string
	key    crypto.PrivKey
	client *api.Client
	job    string // the CID of the job it placed, once submitted
}

// startEphemeral starts a requester node that joins the federation through
// bootstrap, with the data dir's identity if it has one, else a new key, and
// waits until it has a DHT peer. progress says what it does; its log's
// warnings go to logTo.
func startEphemeral(ctx context.Context, bootstrap []string, progress, logTo io.Writer) (*ephemeral, error) {
	c := config.Default()
	c.Role = config.RoleRequester
	c.API.Listen = "127.0.0.1:0"
	// It dials every peer it deals with, and its providers answer on those
	// connections: nobody needs to reach it first, so it asks no router for
	// a port, checks no reachability and relays for no one; it still dials
	// providers behind NATs through their relays and punches holes to them.
	c.NAT.PortMapping, c.NAT.AutoNAT, c.NAT.RelayService = false, false, "off"
	loopback := true
	for _, s := range bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("--bootstrap %q: %v (give a multiaddr ending in /p2p/<peer ID>, which `cuivre id` prints on that node)", s, err)
		}
		for _, a := range ai.Addrs {
			loopback = loopback && manet.IsIPLoopback(a)
		}
		c.Bootstrap = append(c.Bootstrap, s)
	}
	// Listen where the bootstrap peers are, on ports the system picks: on
	// loopback for a devnet, which keeps the DHT's diversity filter off as
	// there (SPEC 4.1); else on every interface.
	if loopback {
		c.Listen = []string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"}
	} else {
		c.Listen = []string{"/ip4/0.0.0.0/udp/0/quic-v1", "/ip6/::/udp/0/quic-v1", "/ip4/0.0.0.0/tcp/0", "/ip6/::/tcp/0"}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	key, whose, err := ephemeralKey()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cuivre-run-")
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := node.StartDaemonWith(ctx, dir, key, c, log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e := &ephemeral{d: d, dir: dir, key: key}
	fail := func(err error) (*ephemeral, error) {
		return nil, errors.Join(err, e.close())
	}
	fmt.Fprintf(progress, "requester %s started for this command (%s), joining through %d bootstrap address(es)\n", d.Node.ID(), whose, len(bootstrap))
	joined := time.Now().Add(ephemeralJoin)
	for d.Node.Ready() != nil {
		if time.Now().After(joined) {
			return fail(fmt.Errorf("no --bootstrap peer took this node into the DHT within %s: check the addresses, and that their nodes run", ephemeralJoin))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if e.client, err = api.Dial(dir); err != nil {
		return fail(err)
	}
	return e, nil
}

// ephemeralKey returns the key an ephemeral node signs with, and whose it
// is: the data dir's identity if it has one, else a new key. A data dir
// whose daemon runs is refused: two nodes with one peer ID would each lose
// the other's connections, and the job is better placed through the daemon.
func ephemeralKey() (crypto.PrivKey, string, error) {
	dir, err := resolveDir()
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, config.IdentityFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("identity: %w", err)
		}
	}
	if err != nil { // no data dir, or no identity in it
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		return key, "a key for this run only", err
	}
	if c, err := api.Dial(dir); err == nil && c.Get("/v1/id", nil) == nil {
		return nil, "", fmt.Errorf("a daemon runs from %s with its identity: drop --bootstrap to place the job through it", dir)
	}
	key, err := config.LoadIdentity(dir)
	return key, "the identity of " + dir, err
}

// unfollowed is the error of a job the command stopped following before it
// ended: close cancels it, since its node stops with the command.
func (e *ephemeral) unfollowed(err error) error {
	var still *stillRunning
	if errors.As(err, &still) {
		return fmt.Errorf("job %s still %s %s: cancelled, since the node that placed it stops with this command", still.cid, still.state, still.why)
	}
	return err
}

// close cancels the job if it is still going, waits a little for its
// providers to be told and for them to take the countersignatures of its
// receipts (SPEC 6.4), then stops the node and removes its data dir.
func (e *ephemeral) close() error {
	settled := time.Now().Add(ephemeralSettle)
	view := func() (v requester.JobView, ok bool) { return v, e.client.Get("/v1/jobs/"+e.job, &v) == nil }
	final := func() bool {
		v, ok := view()
		return !ok || v.State == "succeeded" || v.State == "failed" || v.State == "cancelled"
	}
	// Every receipt that came is countersigned, kept and taken by its
	// provider (or refused by it for good); the node's store holds this
	// job's receipts only.
	delivered := func() bool {
		v, ok := view()
		rs, err := e.d.Store.Receipts()
		if !ok || err != nil {
			return true
		}
		came := 0
		for _, s := range v.Slots {
			if s.Billed != "" {
				came++
			}
		}
		for _, r := range rs {
			if !r.Delivered {
				return false
			}
		}
		return len(rs) >= came
	}
	if e.job != "" && e.client != nil {
		if !final() {
			e.client.Do("DELETE", "/v1/jobs/"+e.job, nil, nil)
		}
		for !(final() && delivered()) && time.Now().Before(settled) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return errors.Join(e.d.Stop(node.DrainGrace), os.RemoveAll(e.dir))
}
