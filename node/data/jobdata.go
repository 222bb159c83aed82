package data

import (
	"context"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/transport"
)

// JobData is a node's data as its requester uses it (requester.Data): it
// grants a job's providers its inputs on the node's Server (whose grants are
// counted, so two leases of one job on one provider share them) and brings
// outputs into the node's Store, pinned for their owner.
type JobData struct {
	store  *Store
	net    transport.Transport
	grants *Server
	clock  clock.Clock
}

// NewJobData returns the requester's view of st, served by sv, fetching over
// net with waits on c.
func NewJobData(st *Store, sv *Server, net transport.Transport, c clock.Clock) *JobData {
	return &JobData{store: st, net: net, grants: sv, clock: c}
}

func (d *JobData) Grant(peer string, root cid.Cid)  { d.grants.Grant(peer, root) }
func (d *JobData) Revoke(peer string, root cid.Cid) { d.grants.Revoke(peer, root) }

func (d *JobData) Fetch(ctx context.Context, holders []string, root cid.Cid, owner string) error {
	if err := d.store.Pin(ctx, root, owner); err != nil {
		return err
	}
	return d.store.Fetch(ctx, d.net, holders, root, FetchOptions{Clock: d.clock})
}

func (d *JobData) Release(root cid.Cid, owner string) {
	_ = d.store.Unpin(context.Background(), root, owner)
}
