package store

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/store/storepb"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// Job is a requester's record of a customer's job: the sealed job,
// how far it got, and per lease slot the lease of its current epoch and its
// result. A requester that restarts finds its jobs here.
type Job struct {
	CID       string // binary CIDv1 of the job (SPEC 5.3); the key
	Envelope  []byte // the customer-sealed Job envelope
	SpecFile  string // the job spec file it was made from, for the customer's eyes
	Submitted time.Time
	State     scheduler.JobState
	Reason    string      // why the job failed, or is not placed yet
	Code      int32       // the reason's code: the protocol's (SPEC 2.5), or the scheduler's from 1000
	Slots     []Slot      // Count x Replicas, in the scheduler's order
	History   []string    // what happened, one line each, the latest kept
	Events    []SlotEvent // when each lease epoch was acknowledged, lost and ended, the latest kept
}

// SlotEvent is one turn in the life of a slot's lease epoch, as the
// requester saw it: what a reliability report measures detection and
// re-placement times from.
type SlotEvent struct {
	At       time.Time
	Slot     int
	Epoch    uint64
	Provider string // peer ID
	Kind     SlotEventKind
}

// SlotEventKind says what happened to a lease epoch.
type SlotEventKind uint8

const (
	EventLeased SlotEventKind = iota + 1 // the provider acknowledged the lease
	EventLost                            // the requester declared it lost: heartbeats missed, or the provider lost the run
	EventEnded                           // its result came
)

var eventKinds = map[SlotEventKind]storepb.SlotEventKind{
	EventLeased: storepb.SlotEventKind_SLOT_EVENT_KIND_LEASED,
	EventLost:   storepb.SlotEventKind_SLOT_EVENT_KIND_LOST,
	EventEnded:  storepb.SlotEventKind_SLOT_EVENT_KIND_ENDED,
}

var eventKindsBack = invert(eventKinds)

func (k SlotEventKind) String() string {
	switch k {
	case EventLeased:
		return "leased"
	case EventLost:
		return "lost"
	case EventEnded:
		return "ended"
	}
	return fmt.Sprintf("SlotEventKind(%d)", k)
}

// Slot is one lease slot of a job.
type Slot struct {
	LeaseID  string
	Epoch    uint64 // the current epoch; 0 before the first lease
	Provider string // peer ID of the current epoch's provider
	State    scheduler.SlotState
	Lease    []byte           // the sealed Lease envelope sent for Epoch
	Price    scheduler.Amount // the leased offer's total
	Result   *Result          // the provider's result for Epoch; nil until it comes
	// Labels are the leased offer's (operator, region...), so that a
	// placement resumed after a restart still spreads its replicas.
	Labels scheduler.Labels
	// Site is the site a retailer's offer leased runs on (SPEC 6.7).
	Site string
}

// Result is a provider's final result for a lease epoch (SPEC 6.3), as the
// requester recorded it.
type Result struct {
	State      pb.LeaseState
	ExitCode   int32
	OutputCID  string
	OutputSize uint64
	StdoutCID  string
	StderrCID  string
	// StdoutCut and StderrCut say the provider cut a stream at the log limit.
	StdoutCut, StderrCut bool
	Started              time.Time
	Ended                time.Time
	Error                *protocol.Error
	// HasReceipt says the result carried a usage receipt: one the
	// requester must have countersigned, and fetches again if it has not.
	HasReceipt bool
}

// The scheduler's states are numbered by iota; the file's are fixed in
// store.proto. These tables are the only link, so a reordering there cannot
// change what a stored job means.
var (
	jobStates = map[scheduler.JobState]storepb.JobState{
		scheduler.JobPlacing:   storepb.JobState_JOB_STATE_PLACING,
		scheduler.JobRunning:   storepb.JobState_JOB_STATE_RUNNING,
		scheduler.JobSucceeded: storepb.JobState_JOB_STATE_SUCCEEDED,
		scheduler.JobFailed:    storepb.JobState_JOB_STATE_FAILED,
		scheduler.JobCancelled: storepb.JobState_JOB_STATE_CANCELLED,
	}
	slotStates = map[scheduler.SlotState]storepb.SlotState{
		scheduler.SlotPending:   storepb.SlotState_SLOT_STATE_PENDING,
		scheduler.SlotLeasing:   storepb.SlotState_SLOT_STATE_LEASING,
		scheduler.SlotRunning:   storepb.SlotState_SLOT_STATE_RUNNING,
		scheduler.SlotSucceeded: storepb.SlotState_SLOT_STATE_SUCCEEDED,
		scheduler.SlotFailed:    storepb.SlotState_SLOT_STATE_FAILED,
		scheduler.SlotCancelled: storepb.SlotState_SLOT_STATE_CANCELLED,
	}
	jobStatesBack  = invert(jobStates)
	slotStatesBack = invert(slotStates)
)

func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

func encodeJob(j *Job) ([]byte, error) {
	st, ok := jobStates[j.State]
	if !ok {
		return nil, fmt.Errorf("job state %d is not a job state", j.State)
	}
	m := &storepb.Job{
		Cid:           []byte(j.CID),
		Envelope:      j.Envelope,
		SpecFile:      j.SpecFile,
		SubmittedAtMs: msOf(j.Submitted),
		State:         st,
		Reason:        j.Reason,
		Code:          j.Code,
		Slots:         make([]*storepb.Slot, len(j.Slots)),
		History:       j.History,
	}
	for _, e := range j.Events {
		k, ok := eventKinds[e.Kind]
		if !ok {
			return nil, fmt.Errorf("slot event kind %d is not one", e.Kind)
		}
		m.Events = append(m.Events, &storepb.SlotEvent{AtMs: msOf(e.At), Slot: uint32(e.Slot), Epoch: e.Epoch, Provider: []byte(e.Provider), Kind: k})
	}
	for i, s := range j.Slots {
		ss, ok := slotStates[s.State]
		if !ok {
			return nil, fmt.Errorf("slot %d: state %d is not a slot state", i, s.State)
		}
		ps := &storepb.Slot{
			LeaseId:  []byte(s.LeaseID),
			Epoch:    s.Epoch,
			Provider: []byte(s.Provider),
			State:    ss,
			Lease:    s.Lease,
			Price:    amountToPB(s.Price),
			Site:     []byte(s.Site),
		}
		for _, l := range s.Labels {
			ps.Labels = append(ps.Labels, &pb.Label{Key: l.Key, Value: l.Value})
		}
		if r := s.Result; r != nil {
			ps.Result = &storepb.Result{
				State:           r.State,
				ExitCode:        r.ExitCode,
				OutputCid:       []byte(r.OutputCID),
				StdoutCid:       []byte(r.StdoutCID),
				StderrCid:       []byte(r.StderrCID),
				StartedAtMs:     msOf(r.Started),
				EndedAtMs:       msOf(r.Ended),
				Error:           errorToPB(r.Error),
				StdoutTruncated: r.StdoutCut,
				OutputSize:      r.OutputSize,
				StderrTruncated: r.StderrCut,
				HasReceipt:      r.HasReceipt,
			}
		}
		m.Slots[i] = ps
	}
	return proto.Marshal(m)
}

func decodeJob(k, v []byte) (Job, error) {
	var m storepb.Job
	if err := proto.Unmarshal(v, &m); err != nil {
		return Job{}, fmt.Errorf("job %x: decode: %w", k, err)
	}
	if string(m.Cid) != string(k) {
		return Job{}, fmt.Errorf("job %x: record names job %x: the store is damaged", k, m.Cid)
	}
	st, ok := jobStatesBack[m.State]
	if !ok {
		return Job{}, fmt.Errorf("job %x: unknown state %s", k, m.State)
	}
	j := Job{
		CID:       string(k),
		Envelope:  orNil(m.Envelope),
		SpecFile:  m.SpecFile,
		Submitted: timeOf(m.SubmittedAtMs),
		State:     st,
		Reason:    m.Reason,
		Code:      m.Code,
		History:   m.History,
	}
	for _, e := range m.Events {
		k, ok := eventKindsBack[e.Kind]
		if !ok {
			continue // a kind a newer cuivre wrote: not one this one shows
		}
		j.Events = append(j.Events, SlotEvent{At: timeOf(e.AtMs), Slot: int(e.Slot), Epoch: e.Epoch, Provider: string(e.Provider), Kind: k})
	}
	if len(m.Slots) > 0 {
		j.Slots = make([]Slot, len(m.Slots))
	}
	for i, ps := range m.Slots {
		ss, ok := slotStatesBack[ps.State]
		if !ok {
			return Job{}, fmt.Errorf("job %x slot %d: unknown state %s", k, i, ps.State)
		}
		s := Slot{
			LeaseID:  string(ps.LeaseId),
			Epoch:    ps.Epoch,
			Provider: string(ps.Provider),
			State:    ss,
			Lease:    orNil(ps.Lease),
			Price:    amountFromPB(ps.Price),
			Site:     string(ps.Site),
		}
		if len(ps.Labels) > 0 {
			ls := make([]scheduler.Label, len(ps.Labels))
			for i, l := range ps.Labels {
				ls[i] = scheduler.Label{Key: l.Key, Value: l.Value}
			}
			s.Labels = scheduler.NewLabels(ls...)
		}
		if r := ps.Result; r != nil {
			s.Result = &Result{
				State:      r.State,
				ExitCode:   r.ExitCode,
				OutputCID:  string(r.OutputCid),
				StdoutCID:  string(r.StdoutCid),
				StderrCID:  string(r.StderrCid),
				Started:    timeOf(r.StartedAtMs),
				Ended:      timeOf(r.EndedAtMs),
				Error:      errorFromPB(r.Error),
				StdoutCut:  r.StdoutTruncated,
				OutputSize: r.OutputSize,
				StderrCut:  r.StderrTruncated,
				HasReceipt: r.HasReceipt,
			}
		}
		j.Slots[i] = s
	}
	return j, nil
}

// PutJob inserts or replaces a job. j.CID must be a CID as cuivre makes them
// (CIDv1, raw, sha2-256) and j.Envelope set. Each slot is fenced against the
// stored one at the same index: the same lease ID at a lower epoch is
// CODE_STALE_EPOCH, so a late writer cannot roll a slot back to a lease it has
// given up.
func (tx *Tx) PutJob(j Job) error {
	if _, err := wire.ParseCID([]byte(j.CID)); err != nil {
		return fmt.Errorf("put job %x: %w", j.CID, err)
	}
	if len(j.Envelope) == 0 {
		return fmt.Errorf("put job %x: no job envelope", j.CID)
	}
	b := tx.bucket(bucketJobs)
	k := []byte(j.CID)
	if v := b.Get(k); v != nil {
		old, err := decodeJob(k, v)
		if err != nil {
			return err
		}
		for i := range min(len(old.Slots), len(j.Slots)) {
			o, n := old.Slots[i], j.Slots[i]
			if o.LeaseID == n.LeaseID && n.Epoch < o.Epoch {
				return fmt.Errorf("put job %x slot %d: %w", j.CID, i, protocol.Errorf(protocol.CodeStaleEpoch, "lease %x epoch %d is older than epoch %d stored", n.LeaseID, n.Epoch, o.Epoch))
			}
		}
	}
	v, err := encodeJob(&j)
	if err != nil {
		return fmt.Errorf("put job %x: %w", j.CID, err)
	}
	return b.Put(k, v)
}

// Job returns a job, or an error wrapping ErrNotFound.
func (tx *Tx) Job(cid string) (Job, error) {
	var v []byte
	if cid != "" {
		v = tx.bucket(bucketJobs).Get([]byte(cid))
	}
	if v == nil {
		return Job{}, fmt.Errorf("job %x: %w", cid, ErrNotFound)
	}
	return decodeJob([]byte(cid), v)
}

// Jobs returns the jobs for which filter returns true (all for a nil filter),
// in key order (by binary CID). filter runs inside the transaction: it must
// not use the store.
func (tx *Tx) Jobs(filter func(*Job) bool) ([]Job, error) {
	var out []Job
	err := tx.bucket(bucketJobs).ForEach(func(k, v []byte) error {
		j, err := decodeJob(k, v)
		if err != nil {
			return err
		}
		if filter == nil || filter(&j) {
			out = append(out, j)
		}
		return nil
	})
	return out, err
}

// PutJob is Tx.PutJob, synced before it returns. A requester writes the
// status of every job it places: concurrent calls share a transaction and an
// fsync (Batch), so its throughput is not one fsync per job.
func (s *Store) PutJob(j Job) error {
	return s.Batch(func(tx *Tx) error { return tx.PutJob(j) })
}

// Job is Tx.Job on a snapshot.
func (s *Store) Job(cid string) (Job, error) {
	return view(s, func(tx *Tx) (Job, error) { return tx.Job(cid) })
}

// Jobs is Tx.Jobs on a snapshot.
func (s *Store) Jobs(filter func(*Job) bool) ([]Job, error) {
	return view(s, func(tx *Tx) ([]Job, error) { return tx.Jobs(filter) })
}
