package node

import (
	"context"

	"github.com/ipfs/go-cid"
)

// Provide announces any CID in the DHT as provided by this node (a module's,
// for instance); FindCID finds it.
func (n *Node) Provide(ctx context.Context, c cid.Cid) error {
	return n.dht.Provide(ctx, c, true)
}
