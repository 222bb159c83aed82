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
	id, err := keyedPeer(protocol.CapacityNamespace, key, value)
	if err != nil {
		return nil, err
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
	return selectSeq(protocol.CapacityNamespace, values, func(val []byte) (uint64, error) {
		rec, err := v.Open(key, val)
		return rec.GetSeq(), err
	})
}

// keyedPeer checks what a namespace of signed records per peer (SPEC 4.4,
// 4.5) asks of a key and a value before the record is opened: the key is
// "/ns/" and a binary peer ID, which it returns; the value is at most
// protocol.MaxRecordSize.
func keyedPeer(ns, key string, value []byte) (string, error) {
	id, ok := strings.CutPrefix(key, "/"+ns+"/")
	if !ok {
		return "", fmt.Errorf("%s key %q: wrong namespace", ns, key)
	}
	if _, err := peer.IDFromBytes([]byte(id)); err != nil {
		return "", fmt.Errorf("%s key: %w", ns, err)
	}
	if len(value) > protocol.MaxRecordSize {
		return "", fmt.Errorf("%s record of %d bytes, above %d", ns, len(value), protocol.MaxRecordSize)
	}
	return id, nil
}

// selectSeq returns the index of the valid value with the highest seq, the
// first of equals.
func selectSeq(ns string, values [][]byte, seqOf func([]byte) (uint64, error)) (int, error) {
	best, seq := -1, uint64(0)
	for i, val := range values {
		if s, err := seqOf(val); err == nil && (best < 0 || s > seq) {
			best, seq = i, s
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("no valid %s record", ns)
	}
	return best, nil
}
