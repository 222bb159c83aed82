package store

import (
	"bytes"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/store/storepb"
	"github.com/cuivre/cuivre/protocol"
)

// Receipt is one lease epoch's usage receipt, as its provider sealed it, and
// the requester's countersignature once there is one (SPEC 6.4). Provider and
// requester both keep them: the chain of pairs is what an operator bills from.
type Receipt struct {
	LeaseID          string
	Epoch            uint64
	Envelope         []byte // the sealed UsageReceipt envelope
	Countersignature []byte // the sealed Countersignature envelope; nil until countersigned
	// Delivered says, on a requester's side, that the provider took the
	// countersignature: until then it is handed over again (Undelivered).
	Delivered bool
}

func encodeReceipt(r *Receipt) ([]byte, error) {
	return proto.Marshal(&storepb.Receipt{
		LeaseId:          []byte(r.LeaseID),
		Epoch:            r.Epoch,
		Receipt:          r.Envelope,
		Countersignature: r.Countersignature,
		Delivered:        r.Delivered,
	})
}

func decodeReceipt(k, v []byte) (Receipt, error) {
	id, epoch, err := splitLeaseKey(k)
	if err != nil {
		return Receipt{}, err
	}
	var m storepb.Receipt
	if err := proto.Unmarshal(v, &m); err != nil {
		return Receipt{}, fmt.Errorf("receipt %x epoch %d: decode: %w", id, epoch, err)
	}
	if string(m.LeaseId) != id || m.Epoch != epoch {
		return Receipt{}, fmt.Errorf("receipt %x epoch %d: record names lease %x epoch %d: the store is damaged", id, epoch, m.LeaseId, m.Epoch)
	}
	return Receipt{LeaseID: id, Epoch: epoch, Envelope: orNil(m.Receipt), Countersignature: orNil(m.Countersignature), Delivered: m.Delivered}, nil
}

// fence refuses an epoch older than the newest one stored of a lease, as a
// lease or as a receipt: results and receipts of an older epoch are refused
// (SPEC 6.2, 6.4).
func (tx *Tx) fence(id string, epoch uint64) error {
	top := max(latestEpoch(tx.bucket(bucketLeases), id), latestEpoch(tx.bucket(bucketReceipts), id))
	if epoch < top {
		return protocol.Errorf(protocol.CodeStaleEpoch, "lease %x epoch %d is older than epoch %d stored", id, epoch, top)
	}
	return nil
}

// PutReceipt stores a receipt, with or without its countersignature. It is
// fenced: a lease ID stored at a higher epoch, as a lease or a receipt, is
// CODE_STALE_EPOCH. A receipt is issued once per lease epoch: storing another
// envelope for the same epoch is CODE_REPLAYED, while storing the same one
// again keeps it and adds r's countersignature if none is stored yet.
func (tx *Tx) PutReceipt(r Receipt) error {
	if err := checkLeaseKey(r.LeaseID, r.Epoch); err != nil {
		return fmt.Errorf("put receipt: %w", err)
	}
	if len(r.Envelope) == 0 {
		return fmt.Errorf("put receipt %x epoch %d: no receipt envelope", r.LeaseID, r.Epoch)
	}
	if err := tx.fence(r.LeaseID, r.Epoch); err != nil {
		return fmt.Errorf("put receipt: %w", err)
	}
	b := tx.bucket(bucketReceipts)
	k := leaseKey(r.LeaseID, r.Epoch)
	if v := b.Get(k); v != nil {
		old, err := decodeReceipt(k, v)
		if err != nil {
			return err
		}
		if !bytes.Equal(old.Envelope, r.Envelope) {
			return fmt.Errorf("put receipt: %w", protocol.Errorf(protocol.CodeReplayed, "lease %x epoch %d already has another receipt", r.LeaseID, r.Epoch))
		}
		if len(old.Countersignature) > 0 || len(r.Countersignature) == 0 {
			return nil
		}
	}
	v, err := encodeReceipt(&r)
	if err != nil {
		return fmt.Errorf("put receipt %x epoch %d: encode: %w", r.LeaseID, r.Epoch, err)
	}
	return b.Put(k, v)
}

// Countersign adds the requester's sealed countersignature to a stored
// receipt. The receipt must be stored (else ErrNotFound) and its epoch the
// newest of its lease (else CODE_STALE_EPOCH). A receipt countersigned already
// keeps its first countersignature, and Countersign returns nil: a pair
// submitted again is acknowledged again (SPEC 6.4). Checking the signature and
// the receipt hash is the caller's, before.
func (tx *Tx) Countersign(id string, epoch uint64, countersignature []byte) error {
	if len(countersignature) == 0 {
		return fmt.Errorf("countersign receipt %x epoch %d: no countersignature", id, epoch)
	}
	r, err := tx.Receipt(id, epoch)
	if err != nil {
		return fmt.Errorf("countersign: %w", err)
	}
	if err := tx.fence(id, epoch); err != nil {
		return fmt.Errorf("countersign: %w", err)
	}
	if len(r.Countersignature) > 0 {
		return nil
	}
	r.Countersignature = countersignature
	v, err := encodeReceipt(&r)
	if err != nil {
		return fmt.Errorf("countersign receipt %x epoch %d: encode: %w", id, epoch, err)
	}
	return tx.bucket(bucketReceipts).Put(leaseKey(id, epoch), v)
}

// Deliver marks a countersigned receipt delivered: its provider took the
// countersignature. It is bookkeeping of the requester's, not fenced: an
// older epoch's receipt is delivered as well as the newest.
func (tx *Tx) Deliver(id string, epoch uint64) error {
	r, err := tx.Receipt(id, epoch)
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	if len(r.Countersignature) == 0 {
		return fmt.Errorf("deliver receipt %x epoch %d: not countersigned", id, epoch)
	}
	if r.Delivered {
		return nil
	}
	r.Delivered = true
	v, err := encodeReceipt(&r)
	if err != nil {
		return fmt.Errorf("deliver receipt %x epoch %d: encode: %w", id, epoch, err)
	}
	return tx.bucket(bucketReceipts).Put(leaseKey(id, epoch), v)
}

// Receipt returns one lease epoch's receipt, or an error wrapping ErrNotFound.
func (tx *Tx) Receipt(id string, epoch uint64) (Receipt, error) {
	k := leaseKey(id, epoch)
	var v []byte
	if len(id) == protocol.LeaseIDSize {
		v = tx.bucket(bucketReceipts).Get(k)
	}
	if v == nil {
		return Receipt{}, fmt.Errorf("receipt %x epoch %d: %w", id, epoch, ErrNotFound)
	}
	return decodeReceipt(k, v)
}

// Receipts returns every receipt in key order: by lease ID, then epoch.
func (tx *Tx) Receipts() ([]Receipt, error) {
	var out []Receipt
	err := tx.bucket(bucketReceipts).ForEach(func(k, v []byte) error {
		r, err := decodeReceipt(k, v)
		if err == nil {
			out = append(out, r)
		}
		return err
	})
	return out, err
}

// PutReceipt is Tx.PutReceipt, synced before it returns; concurrent calls
// share a transaction (Batch).
func (s *Store) PutReceipt(r Receipt) error {
	return s.Batch(func(tx *Tx) error { return tx.PutReceipt(r) })
}

// Countersign is Tx.Countersign, synced before it returns; concurrent calls
// share a transaction (Batch).
func (s *Store) Countersign(id string, epoch uint64, countersignature []byte) error {
	return s.Batch(func(tx *Tx) error { return tx.Countersign(id, epoch, countersignature) })
}

// Deliver is Tx.Deliver, synced before it returns; concurrent calls share a
// transaction (Batch).
func (s *Store) Deliver(id string, epoch uint64) error {
	return s.Batch(func(tx *Tx) error { return tx.Deliver(id, epoch) })
}

// Undelivered returns the receipts countersigned here whose countersignature
// was not yet taken by their provider, in key order.
func (s *Store) Undelivered() ([]Receipt, error) {
	all, err := s.Receipts()
	return slices.DeleteFunc(all, func(r Receipt) bool { return r.Delivered || len(r.Countersignature) == 0 }), err
}

// Receipt is Tx.Receipt on a snapshot.
func (s *Store) Receipt(id string, epoch uint64) (Receipt, error) {
	return view(s, func(tx *Tx) (Receipt, error) { return tx.Receipt(id, epoch) })
}

// Receipts is Tx.Receipts on a snapshot.
func (s *Store) Receipts() ([]Receipt, error) {
	return view(s, func(tx *Tx) ([]Receipt, error) { return tx.Receipts() })
}

// LatestReceipt returns the receipt of the highest epoch stored for the
// lease (or slice rent) id, or ErrNotFound.
func (s *Store) LatestReceipt(id string) (Receipt, error) {
	return view(s, func(tx *Tx) (Receipt, error) {
		top := latestEpoch(tx.bucket(bucketReceipts), id)
		if top == 0 {
			return Receipt{}, fmt.Errorf("receipt of %x: %w", id, ErrNotFound)
		}
		return tx.Receipt(id, top)
	})
}
