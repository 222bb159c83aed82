package p2p

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// CapacityKey is the DHT key of a provider's capacity record.
func CapacityKey(p peer.ID) string { return record.CapacityKey(p) }

// PutCapacity puts a signed capacity record (SPEC 4.4) under this host's key
// in the DHT, where anyone can audit what it claims.
func (h *Host) PutCapacity(ctx context.Context, env []byte) error {
	return h.dht.PutValue(ctx, CapacityKey(h.host.ID()), env)
}

// Capacity reads and verifies a provider's capacity record from the DHT.
func (h *Host) Capacity(ctx context.Context, p peer.ID) (*pb.CapacityRecord, error) {
	c, _, err := h.CapacityEnvelope(ctx, p)
	return c, err
}

// CapacityEnvelope is Capacity, with the sealed record as read, which an
// auditor checks itself (SPEC 6.7).
func (h *Host) CapacityEnvelope(ctx context.Context, p peer.ID) (*pb.CapacityRecord, []byte, error) {
	env, err := h.dht.GetValue(ctx, CapacityKey(p))
	if err != nil {
		return nil, nil, fmt.Errorf("capacity of %s: %w", protocol.ShortPeerID(string(p)), err)
	}
	c, err := record.OpenCapacity(env, h.opts.Now())
	return c, env, err
}
