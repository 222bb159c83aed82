package record

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// CapacityKey is the DHT key of a provider's capacity record (SPEC 4.4):
// "/cuivre-capacity/" and its binary peer ID.
func CapacityKey(p peer.ID) string { return "/" + protocol.CapacityNamespace + "/" + string(p) }

// CapacityValidator is the DHT record validator of the cuivre-capacity
// namespace, as every DHT node applies it (SPEC 4.4): the key names a peer,
// the value is at most protocol.MaxRecordSize, a capacity record sealed by
// that peer and live at Now; of two, the higher seq wins.
type CapacityValidator struct{ Now func() time.Time }

// Open checks value under key and returns its record.
func (v CapacityValidator) Open(key string, value []byte) (*pb.CapacityRecord, error) {
	id, ok := strings.CutPrefix(key, "/"+protocol.CapacityNamespace+"/")
	if !ok {
		return nil, fmt.Errorf("capacity key %q: wrong namespace", key)
	}
	if _, err := peer.IDFromBytes([]byte(id)); err != nil {
		return nil, fmt.Errorf("capacity key: %w", err)
	}
	if len(value) > protocol.MaxRecordSize {
		return nil, fmt.Errorf("capacity record of %d bytes, above %d", len(value), protocol.MaxRecordSize)
	}
	rec, err := OpenCapacity(value, v.Now())
	if err != nil {
		return nil, err
	}
	if string(rec.Provider) != id {
		return nil, errors.New("capacity record of another peer than its key's")
	}
	return rec, nil
}

// Validate is the DHT's record.Validator check.
func (v CapacityValidator) Validate(key string, value []byte) error {
	_, err := v.Open(key, value)
	return err
}

// Select picks the valid value with the highest seq.
func (v CapacityValidator) Select(key string, values [][]byte) (int, error) {
	best, seq := -1, uint64(0)
	for i, val := range values {
		if rec, err := v.Open(key, val); err == nil && (best < 0 || rec.Seq > seq) {
			best, seq = i, rec.Seq
		}
	}
	if best < 0 {
		return 0, errors.New("no valid capacity record")
	}
	return best, nil
}
