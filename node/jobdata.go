package node

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/transport"
)

// grants is what serves the node's data: who may fetch which root.
type grants interface {
	Grant(peer string, root cid.Cid)
	Revoke(peer string, root cid.Cid)
}

// jobData is the node's data as its requester uses it (requester.Data).
// Grants are counted, so that two leases of one job on one provider, each
// granting the job's inputs, do not take the grant back from each other;
// fetched outputs are pinned for their owner.
type jobData struct {
	store  *data.Store
	net    transport.Transport
	grants grants
	clock  clock.Clock

	mu    sync.Mutex
	count map[grantKey]int
}

type grantKey struct {
	peer string
	root cid.Cid
}

func newJobData(st *data.Store, net transport.Transport, g grants, c clock.Clock) *jobData {
	return &jobData{store: st, net: net, grants: g, clock: c, count: map[grantKey]int{}}
}

func (d *jobData) Grant(peer string, root cid.Cid) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := grantKey{peer, root}
	if d.count[k]++; d.count[k] == 1 {
		d.grants.Grant(peer, root)
	}
}

func (d *jobData) Revoke(peer string, root cid.Cid) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := grantKey{peer, root}
	if d.count[k] <= 1 {
		delete(d.count, k)
		d.grants.Revoke(peer, root)
		return
	}
	d.count[k]--
}

func (d *jobData) Fetch(ctx context.Context, holders []string, root cid.Cid, owner string) error {
	if err := d.store.Pin(ctx, root, owner); err != nil {
		return err
	}
	return d.store.Fetch(ctx, d.net, holders, root, data.FetchOptions{Clock: d.clock})
}

func (d *jobData) Release(root cid.Cid, owner string) {
	_ = d.store.Unpin(context.Background(), root, owner)
}
