package p2p

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// capacityValidator checks capacity records in the DHT (SPEC 4.4): the key is
// "/cuivre-capacity/" + the binary peer ID, the value a capacity record sealed
// by that peer and live; of two, the higher seq wins.
type capacityValidator struct{ now func() time.Time }

func (v capacityValidator) open(key string, value []byte) (*pb.CapacityRecord, error) {
	id, ok := strings.CutPrefix(key, "/"+protocol.CapacityNamespace+"/")
	if !ok {
		return nil, fmt.Errorf("capacity key %q: wrong namespace", key)
	}
	if _, err := peer.IDFromBytes([]byte(id)); err != nil {
		return nil, fmt.Errorf("capacity key: %w", err)
	}
	rec, err := record.OpenCapacity(value, v.now())
	if err != nil {
		return nil, err
	}
	if string(rec.Provider) != id {
		return nil, errors.New("capacity record of another peer")
	}
	return rec, nil
}

func (v capacityValidator) Validate(key string, value []byte) error {
	_, err := v.open(key, value)
	return err
}

func (v capacityValidator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, uint64(0)
	for i, val := range values {
		rec, err := v.open(key, val)
		if err != nil {
			continue
		}
		if best < 0 || rec.Seq > bestSeq {
			best, bestSeq = i, rec.Seq
		}
	}
	if best < 0 {
		return 0, errors.New("no valid capacity record")
	}
	return best, nil
}

// CapacityKey is the DHT key of a provider's capacity record.
func CapacityKey(p peer.ID) string { return "/" + protocol.CapacityNamespace + "/" + string(p) }

// PutCapacity puts a signed capacity record (SPEC 4.4) under this host's key
// in the DHT, where anyone can audit what it claims.
func (h *Host) PutCapacity(ctx context.Context, env []byte) error {
	return h.dht.PutValue(ctx, CapacityKey(h.host.ID()), env)
}

// Capacity reads and verifies a provider's capacity record from the DHT.
func (h *Host) Capacity(ctx context.Context, p peer.ID) (*pb.CapacityRecord, error) {
	env, err := h.dht.GetValue(ctx, CapacityKey(p))
	if err != nil {
		return nil, fmt.Errorf("capacity of %s: %w", p.ShortString(), err)
	}
	return record.OpenCapacity(env, h.opts.Now())
}
