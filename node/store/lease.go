package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/store/storepb"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/scheduler"
)

// Lease is a provider's record of one epoch of a lease (SPEC 6.2, 9): what it
// committed to, and how the run went. IDs, peer IDs, nonces and CIDs are
// binary strings, as in package scheduler. Times are kept to the millisecond;
// the zero time means "not yet".
type Lease struct {
	ID         string // 16 bytes
	Epoch      uint64 // 1 or more
	Requester  string // peer ID
	JobCID     string
	Instance   uint32 // Lease.instance: the job's instance it runs (slot / replicas)
	OfferNonce string
	ExpiresAt  time.Time // Lease.expires_at_ms: the run must start before it
	Envelope   []byte    // the sealed Lease envelope, as received
	Job        []byte    // the customer-sealed Job envelope (Lease.job), as received
	State      pb.LeaseState
	Reserved   scheduler.Resources // what the lease holds: the job's task.resources
	Timeout    time.Duration       // the job's task.timeout_ms
	Price      scheduler.Price     // the leased offer's tariff
	Total      scheduler.Amount    // the leased offer's total: the most it bills
	Committed  time.Time
	Started    time.Time // set by MarkLeaseState to RUNNING
	Ended      time.Time // set by MarkLeaseState to a final state
	ExitCode   int32
	OutputCID  string
	OutputSize uint64 // bytes of the output's files
	StdoutCID  string
	StderrCID  string
	Error      *protocol.Error // why it failed; nil otherwise
	// StdoutCut and StderrCut say a stream was cut at the log limit: its
	// CID covers what was kept.
	StdoutCut, StderrCut bool
	// FinalSeq is the seq of the Status that reported the final state
	// (SPEC 6.3): a watch opened later gets that Status again.
	FinalSeq uint64
}

// Outcome is what a lease reaching a final state records beside its state.
type Outcome struct {
	ExitCode   int32
	OutputCID  string
	OutputSize uint64
	StdoutCID  string
	StderrCID  string
	Error      *protocol.Error
	// StdoutCut and StderrCut say a stream was cut at the log limit.
	StdoutCut, StderrCut bool
	// FinalSeq is the seq of the final Status (SPEC 6.3).
	FinalSeq uint64
}

func encodeLease(l *Lease) ([]byte, error) {
	return proto.Marshal(&storepb.Lease{
		LeaseId:         []byte(l.ID),
		Epoch:           l.Epoch,
		Requester:       []byte(l.Requester),
		JobCid:          []byte(l.JobCID),
		OfferNonce:      []byte(l.OfferNonce),
		ExpiresAtMs:     msOf(l.ExpiresAt),
		Envelope:        l.Envelope,
		Job:             l.Job,
		State:           l.State,
		Reserved:        resourcesToPB(l.Reserved),
		TimeoutMs:       durationMs(l.Timeout),
		Price:           priceToPB(l.Price),
		Total:           amountToPB(l.Total),
		CommittedAtMs:   msOf(l.Committed),
		StartedAtMs:     msOf(l.Started),
		EndedAtMs:       msOf(l.Ended),
		ExitCode:        l.ExitCode,
		OutputCid:       []byte(l.OutputCID),
		StdoutCid:       []byte(l.StdoutCID),
		StderrCid:       []byte(l.StderrCID),
		Error:           errorToPB(l.Error),
		StdoutTruncated: l.StdoutCut,
		OutputSize:      l.OutputSize,
		StderrTruncated: l.StderrCut,
		Instance:        l.Instance,
		FinalSeq:        l.FinalSeq,
	})
}

// decodeLease reads a lease record and checks it against its key.
func decodeLease(k, v []byte) (Lease, error) {
	id, epoch, err := splitLeaseKey(k)
	if err != nil {
		return Lease{}, err
	}
	var m storepb.Lease
	if err := proto.Unmarshal(v, &m); err != nil {
		return Lease{}, fmt.Errorf("lease %x epoch %d: decode: %w", id, epoch, err)
	}
	if string(m.LeaseId) != id || m.Epoch != epoch {
		return Lease{}, fmt.Errorf("lease %x epoch %d: record names lease %x epoch %d: the store is damaged", id, epoch, m.LeaseId, m.Epoch)
	}
	return Lease{
		ID:         id,
		Epoch:      epoch,
		Requester:  string(m.Requester),
		JobCID:     string(m.JobCid),
		OfferNonce: string(m.OfferNonce),
		ExpiresAt:  timeOf(m.ExpiresAtMs),
		Envelope:   orNil(m.Envelope),
		Job:        orNil(m.Job),
		State:      m.State,
		Reserved:   resourcesFromPB(m.Reserved),
		Timeout:    time.Duration(m.TimeoutMs) * time.Millisecond,
		Price:      priceFromPB(m.Price),
		Total:      amountFromPB(m.Total),
		Committed:  timeOf(m.CommittedAtMs),
		Started:    timeOf(m.StartedAtMs),
		Ended:      timeOf(m.EndedAtMs),
		ExitCode:   m.ExitCode,
		OutputCID:  string(m.OutputCid),
		StdoutCID:  string(m.StdoutCid),
		StderrCID:  string(m.StderrCid),
		Error:      errorFromPB(m.Error),
		StdoutCut:  m.StdoutTruncated,
		OutputSize: m.OutputSize,
		StderrCut:  m.StderrTruncated,
		Instance:   m.Instance,
		FinalSeq:   m.FinalSeq,
	}, nil
}

// latestEpoch returns the highest epoch stored under lease ID id in b, 0 if
// none.
func latestEpoch(b *bolt.Bucket, id string) uint64 {
	var top uint64
	c := b.Cursor()
	prefix := []byte(id)
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if _, e, err := splitLeaseKey(k); err == nil && e > top {
			top = e
		}
	}
	return top
}

// PutLease inserts or updates one lease epoch, fenced (SPEC 6.2, 11):
//
//   - an epoch lower than the highest stored for l.ID is refused with
//     CODE_STALE_EPOCH (a *protocol.Error), since a newer epoch has replaced it;
//   - a new epoch must be stored ACCEPTED, the state a committed lease starts in;
//   - an update must carry the same offer nonce and Lease envelope as the
//     stored epoch, else CODE_REPLAYED (the same epoch under another offer), and
//     may change the state only along protocol.CanTransition (ErrTransition).
//
// A retry of a committed lease (SPEC 6.2 step 4) is the caller's to spot with
// Lease before it gets here. PutLease does not touch older epochs of l.ID:
// superseding one (marking it CANCELLED, say) is the caller's, in the same Tx.
func (tx *Tx) PutLease(l Lease) error {
	if err := checkLeaseKey(l.ID, l.Epoch); err != nil {
		return fmt.Errorf("put lease: %w", err)
	}
	if !validLeaseState(l.State) {
		return fmt.Errorf("put lease %x epoch %d: state %s is not a lease state", l.ID, l.Epoch, l.State)
	}
	b := tx.bucket(bucketLeases)
	if top := latestEpoch(b, l.ID); l.Epoch < top {
		return fmt.Errorf("put lease: %w", protocol.Errorf(protocol.CodeStaleEpoch, "lease %x epoch %d is older than epoch %d stored", l.ID, l.Epoch, top))
	}
	k := leaseKey(l.ID, l.Epoch)
	if v := b.Get(k); v != nil {
		old, err := decodeLease(k, v)
		if err != nil {
			return err
		}
		if old.OfferNonce != l.OfferNonce || !bytes.Equal(old.Envelope, l.Envelope) {
			return fmt.Errorf("put lease: %w", protocol.Errorf(protocol.CodeReplayed, "lease %x epoch %d is already stored under another offer or envelope", l.ID, l.Epoch))
		}
		if old.State != l.State && !protocol.CanTransition(old.State, l.State) {
			return fmt.Errorf("put lease %x epoch %d: %s -> %s: %w", l.ID, l.Epoch, old.State, l.State, ErrTransition)
		}
	} else if l.State != pb.LeaseState_LEASE_STATE_ACCEPTED {
		return fmt.Errorf("put lease %x epoch %d: a new lease is stored ACCEPTED (SPEC 9), not %s", l.ID, l.Epoch, l.State)
	}
	v, err := encodeLease(&l)
	if err != nil {
		return fmt.Errorf("put lease %x epoch %d: encode: %w", l.ID, l.Epoch, err)
	}
	return b.Put(k, v)
}

// Lease returns one lease epoch, or an error wrapping ErrNotFound.
func (tx *Tx) Lease(id string, epoch uint64) (Lease, error) {
	k := leaseKey(id, epoch)
	var v []byte
	if len(id) == protocol.LeaseIDSize {
		v = tx.bucket(bucketLeases).Get(k)
	}
	if v == nil {
		return Lease{}, fmt.Errorf("lease %x epoch %d: %w", id, epoch, ErrNotFound)
	}
	return decodeLease(k, v)
}

// LatestLease returns the highest epoch stored of a lease, or an error
// wrapping ErrNotFound.
func (tx *Tx) LatestLease(id string) (Lease, error) {
	if len(id) != protocol.LeaseIDSize {
		return Lease{}, fmt.Errorf("lease %x: %w", id, ErrNotFound)
	}
	b := tx.bucket(bucketLeases)
	top := latestEpoch(b, id)
	if top == 0 {
		return Lease{}, fmt.Errorf("lease %x: %w", id, ErrNotFound)
	}
	k := leaseKey(id, top)
	return decodeLease(k, b.Get(k))
}

// Leases returns the lease epochs for which filter returns true (all of them
// for a nil filter), in key order: by lease ID, then epoch. filter runs
// inside the transaction: it must not use the store.
func (tx *Tx) Leases(filter func(*Lease) bool) ([]Lease, error) {
	var out []Lease
	err := tx.bucket(bucketLeases).ForEach(func(k, v []byte) error {
		l, err := decodeLease(k, v)
		if err != nil {
			return err
		}
		if filter == nil || filter(&l) {
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// MarkLeaseState moves a lease epoch to state at time at, and returns the
// record as stored. Moving to RUNNING sets Started; moving to a final state
// sets Ended and records out (nil records nothing). A move protocol.CanTransition
// refuses, including to the same state, wraps ErrTransition and changes
// nothing; out given with a state that is not final is refused too.
//
// MarkLeaseState is not fenced: an older epoch must still be able to reach a
// final state, or it would look live after a restart and hold capacity.
func (tx *Tx) MarkLeaseState(id string, epoch uint64, state pb.LeaseState, at time.Time, out *Outcome) (Lease, error) {
	l, err := tx.Lease(id, epoch)
	if err != nil {
		return Lease{}, fmt.Errorf("mark %s: %w", state, err)
	}
	if !protocol.CanTransition(l.State, state) {
		return Lease{}, fmt.Errorf("lease %x epoch %d: %s -> %s: %w", id, epoch, l.State, state, ErrTransition)
	}
	final := protocol.Final(state)
	if out != nil && !final {
		return Lease{}, fmt.Errorf("lease %x epoch %d: an outcome is recorded with a final state, not %s", id, epoch, state)
	}
	l.State = state
	switch {
	case state == pb.LeaseState_LEASE_STATE_RUNNING:
		l.Started = at
	case final:
		l.Ended = at
	}
	if out != nil {
		l.ExitCode = out.ExitCode
		l.OutputCID, l.OutputSize = out.OutputCID, out.OutputSize
		l.StdoutCID = out.StdoutCID
		l.StderrCID = out.StderrCID
		l.Error = out.Error
		l.StdoutCut, l.StderrCut = out.StdoutCut, out.StderrCut
		l.FinalSeq = out.FinalSeq
	}
	v, err := encodeLease(&l)
	if err != nil {
		return Lease{}, fmt.Errorf("lease %x epoch %d: encode: %w", id, epoch, err)
	}
	if err := tx.bucket(bucketLeases).Put(leaseKey(id, epoch), v); err != nil {
		return Lease{}, fmt.Errorf("lease %x epoch %d: %w", id, epoch, err)
	}
	// Read back through the codec, so the caller sees what a restart will.
	return tx.Lease(id, epoch)
}

// PutLease is Tx.PutLease in a transaction of its own, synced before it
// returns.
func (s *Store) PutLease(l Lease) error {
	return s.Update(func(tx *Tx) error { return tx.PutLease(l) })
}

// Lease is Tx.Lease on a snapshot.
func (s *Store) Lease(id string, epoch uint64) (Lease, error) {
	return view(s, func(tx *Tx) (Lease, error) { return tx.Lease(id, epoch) })
}

// LatestLease is Tx.LatestLease on a snapshot.
func (s *Store) LatestLease(id string) (Lease, error) {
	return view(s, func(tx *Tx) (Lease, error) { return tx.LatestLease(id) })
}

// Leases is Tx.Leases on a snapshot.
func (s *Store) Leases(filter func(*Lease) bool) ([]Lease, error) {
	return view(s, func(tx *Tx) ([]Lease, error) { return tx.Leases(filter) })
}

// LiveLeases returns the lease epochs not in a final state, in key order: what
// a restarting provider must account for and end (SPEC 9: a run in progress is
// not resumed).
func (s *Store) LiveLeases() ([]Lease, error) {
	return s.Leases(func(l *Lease) bool { return !protocol.Final(l.State) })
}

// MarkLeaseState is Tx.MarkLeaseState, synced before it returns; the marks of
// runs starting or ending together share a transaction (Batch).
func (s *Store) MarkLeaseState(id string, epoch uint64, state pb.LeaseState, at time.Time, out *Outcome) (Lease, error) {
	var l Lease
	err := s.Batch(func(tx *Tx) (err error) {
		l, err = tx.MarkLeaseState(id, epoch, state, at, out)
		return err
	})
	return l, err
}
