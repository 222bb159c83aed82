package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol/pb"
)

// TestSigtermDrains: SIGTERM to a daemon running a lease lets the lease
// finish within the grace period, its requester gets the result, and the
// process exits 0. (The daemon used to be handed the signal's context, which
// cancelled every run the moment the signal arrived.)
func TestSigtermDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	d := startDaemon(t, initDir(t), "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	info, err := peer.AddrInfoFromString(d.id.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	req, key := requesterNode(t, *info)
	if err := req.Host().Connect(ctx, *info); err != nil {
		t.Fatal(err)
	}
	running := make(chan string, 1)
	results := make(chan *pb.Result, 1)
	go func() {
		// A few seconds of sieve: well inside the 30 s grace period, even
		// on a loaded machine.
		res, _ := lease(t, ctx, req, key, info.ID, exectest.Module(t, "sieve"), []string{"--n", "3000000", "--rounds", "3"}, time.Minute, running)
		results <- res
	}()
	select {
	case <-running:
	case <-ctx.Done():
		t.Fatal("the lease never ran")
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := <-results
	if res == nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
		t.Fatalf("the lease running at SIGTERM ended %v, want succeeded within the grace period", res)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("the daemon exited with %v after draining, want 0", err)
	}
}
