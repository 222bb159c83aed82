package record

import (
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

func (v CapacityValidator) records() peerRecords[*pb.CapacityRecord] {
	return peerRecords[*pb.CapacityRecord]{protocol.CapacityNamespace, v.Now, OpenCapacity, (*pb.CapacityRecord).GetProvider}
}

// Open checks value under key and returns its record.
func (v CapacityValidator) Open(key string, value []byte) (*pb.CapacityRecord, error) {
	return v.records().open(key, value)
}

// Validate is the DHT's record.Validator check.
func (v CapacityValidator) Validate(key string, value []byte) error {
	_, err := v.Open(key, value)
	return err
}

// Select picks the valid value with the highest seq.
func (v CapacityValidator) Select(key string, values [][]byte) (int, error) {
	return v.records().pick(key, values)
}

// peerRecords is a DHT namespace of one signed record per peer (SPEC 4.4,
// 4.5): the key is "/ns/" and a binary peer ID; the value is at most
// protocol.MaxRecordSize and opens, live at now, as a record whose named
// peer (signer) is the key's; of two, the higher seq wins.
type peerRecords[T interface{ GetSeq() uint64 }] struct {
	ns     string
	now    func() time.Time
	openAt func([]byte, time.Time) (T, error)
	signer func(T) []byte
}

func (r peerRecords[T]) open(key string, value []byte) (T, error) {
	var zero T
	id, ok := strings.CutPrefix(key, "/"+r.ns+"/")
	if !ok {
		return zero, fmt.Errorf("%s key %q: wrong namespace", r.ns, key)
	}
	if _, err := peer.IDFromBytes([]byte(id)); err != nil {
		return zero, fmt.Errorf("%s key: %w", r.ns, err)
	}
	if len(value) > protocol.MaxRecordSize {
		return zero, fmt.Errorf("%s record of %d bytes, above %d", r.ns, len(value), protocol.MaxRecordSize)
	}
	rec, err := r.openAt(value, r.now())
	if err != nil {
		return zero, err
	}
	if string(r.signer(rec)) != id {
		return zero, fmt.Errorf("%s record of another peer than its key's", r.ns)
	}
	return rec, nil
}

// pick returns the index of the valid value with the highest seq, the
// first of equals.
func (r peerRecords[T]) pick(key string, values [][]byte) (int, error) {
	best, seq := -1, uint64(0)
	for i, val := range values {
		if rec, err := r.open(key, val); err == nil && (best < 0 || rec.GetSeq() > seq) {
			best, seq = i, rec.GetSeq()
		}
	}
	if best < 0 {
		return 0, fmt.Errorf("no valid %s record", r.ns)
	}
	return best, nil
}
