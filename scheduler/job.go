package scheduler

import (
	"fmt"
	"slices"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Job is what the core needs of a customer's job to place it.
type Job struct {
	CID         string // binary CID
	Requester   string // the requester's peer ID
	Count       int
	Replicas    int
	Executor    string
	Resources   Resources
	Timeout     time.Duration
	Constraints []Selector
	Affinities  []Selector
	Spread      []Spread
	MaxPrice    Amount
	// Heartbeat is the Status interval the job asks of its providers; 0
	// takes Config.HeartbeatInterval.
	Heartbeat time.Duration
	// PlacementTimeout is how long the job may take to be placed; 0 takes
	// Config.PlacementTimeout.
	PlacementTimeout time.Duration
}

// Slots returns the number of leases the job needs: Count x Replicas.
func (j *Job) Slots() int { return j.Count * j.Replicas }

// JobFromPB takes what the core needs from a validated job.
func JobFromPB(cid, requester string, j *pb.Job) (Job, error) {
	if err := protocol.ValidateJob(j); err != nil {
		return Job{}, fmt.Errorf("job: %w", err)
	}
	t := j.GetTask()
	out := Job{
		CID:       cid,
		Requester: requester,
		Count:     int(j.Count),
		Replicas:  int(j.Replicas),
		Executor:  t.Engine,
		Resources: resourcesFromPB(t.Resources),
		Timeout:   time.Duration(t.TimeoutMs) * time.Millisecond,
		MaxPrice:  Amount{Currency: j.GetMaxPrice().GetCurrency(), Nanos: j.GetMaxPrice().GetNanos()},
		Heartbeat: time.Duration(j.HeartbeatMs) * time.Millisecond,

		PlacementTimeout: time.Duration(j.PlacementTimeoutMs) * time.Millisecond,
	}
	for _, c := range j.Constraints {
		out.Constraints = append(out.Constraints, Selector{Key: c.Key, Op: c.Op, Values: c.Values})
	}
	for _, a := range j.Affinities {
		out.Affinities = append(out.Affinities, Selector{Key: a.Key, Op: a.Op, Values: a.Values, Weight: a.Weight})
	}
	for _, s := range j.Spread {
		out.Spread = append(out.Spread, Spread{Attribute: s.Attribute, Weight: s.Weight})
	}
	return out, nil
}

func resourcesFromPB(r *pb.Resources) Resources {
	return Resources{CPUMillis: r.GetCpuMillis(), MemoryBytes: r.GetMemoryBytes(), ScratchBytes: r.GetScratchBytes()}
}

// Blocks reports whether a job waiting for capacity holds back a later one
// of the same requester, which serves its waiting jobs in the order they
// were submitted. It does when the
// later job can find no room the earlier could not: it asks at least as
// much of every resource, for at least as long, of the same executor,
// under every constraint of the earlier, with no higher price ceiling. A
// later job that asks less of something, or may go where the earlier may
// not, tries on its own back-off: it may fit where the earlier does not
// (a backfill), and the earlier loses nothing it could have had.
func Blocks(earlier, later *Job) bool {
	r, s := earlier.Resources, later.Resources
	if !r.Fits(s) || later.Timeout < earlier.Timeout || later.Executor != earlier.Executor {
		return false
	}
	if c := earlier.MaxPrice; c.Currency != "" {
		if later.MaxPrice.Currency != c.Currency || later.MaxPrice.Nanos > c.Nanos {
			return false
		}
	}
	for _, c := range earlier.Constraints {
		if !slices.ContainsFunc(later.Constraints, func(d Selector) bool {
			return d.Key == c.Key && d.Op == c.Op && slices.Equal(d.Values, c.Values)
		}) {
			return false
		}
	}
	return true
}
