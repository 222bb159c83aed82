package requester

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/scheduler"
)

// report records a placement's status: in memory for the API, and in the store.
func (r *Requester) report(j *job, st scheduler.Status) {
	submitted := j.submitted
	now := r.clock.Now()
	j.update(func() {
		j.turns = keepLast(append(j.turns, turns(now, j.status.Slots, st.Slots)...), maxKept)
		j.status = st
		if j.placed == 0 {
			for _, s := range st.Slots {
				if s.State == scheduler.SlotRunning {
					j.placed = max(now.Sub(submitted), time.Nanosecond)
				}
			}
		}
		if st.Message != "" {
			j.history = keepLast(append(j.history, fmt.Sprintf("%s %s", now.Sub(submitted).Round(time.Millisecond), st.Message)), maxKept)
		}
		if st.State.Final() {
			select {
			case <-j.done:
			default:
				close(j.done)
			}
		}
	})
	if st.State != scheduler.JobPlacing || st.Code != scheduler.ReasonNotPlaced || !scheduler.WaitsForCapacity(st.Asked) {
		r.queue.done(j)
	}
	if r.store == nil {
		return
	}
	// The status is written behind the placement, not on its path: the
	// latest one wins. A crash may lose the last steps, but never a lease
	// sent (saveLeases writes it first): a resumed placement watches it
	// again, or fences it out with a new epoch.
	r.queueSave(j, r.record(j, st))
}

// record is the job's record for status st.
func (r *Requester) record(j *job, st scheduler.Status) store.Job {
	rec := store.Job{CID: j.cid, Envelope: j.env, SpecFile: j.spec, Submitted: j.submitted, State: st.State, Reason: st.Reason, Code: int32(st.Code)}
	j.mu.Lock()
	rec.History, rec.Events = slices.Clone(j.history), slices.Clone(j.turns)
	for _, s := range st.Slots {
		slot := store.Slot{LeaseID: s.LeaseID, Epoch: s.Epoch, Provider: s.Provider, State: s.State, Price: s.Price, Labels: s.Labels, Site: s.Site}
		if res := j.results[runKey{s.LeaseID, s.Epoch}]; res != nil {
			var perr *protocol.Error
			if e := protocol.FromPB(res.Error); e != nil {
				perr, _ = e.(*protocol.Error)
			}
			slot.Result = &store.Result{State: res.State, ExitCode: res.ExitCode, OutputCID: string(res.OutputCid), OutputSize: res.OutputSize,
				StdoutCID: string(res.StdoutCid), StderrCID: string(res.StderrCid),
				Started: conv.MsTime(res.StartedAtMs), Ended: conv.MsTime(res.EndedAtMs), Error: perr,
				StdoutCut: res.StdoutTruncated, StderrCut: res.StderrTruncated, HasReceipt: len(res.Receipt) > 0}
		}
		rec.Slots = append(rec.Slots, slot)
	}
	j.mu.Unlock()
	return rec
}

// saveLeases writes the job's record before the leases of a step are sent,
// and waits for it: a lease epoch must never be sent before it is on disk,
// or a restart of this node could send the same epoch of the same lease
// again, to another provider, and run the slot twice under one epoch.
func (r *Requester) saveLeases(j *job, st scheduler.Status) {
	if r.store == nil {
		return
	}
	if err := r.store.PutJob(r.record(j, st)); err != nil && !errors.Is(err, protocol.ErrStaleEpoch) {
		r.log.Warn("store job before its lease", "job", j.cid, "err", err)
	}
}

// queueSave makes rec the job's next record to write, starting the writer if
// none is running.
func (r *Requester) queueSave(j *job, rec store.Job) {
	j.mu.Lock()
	pending := j.unsaved != nil
	j.unsaved = &rec
	j.mu.Unlock()
	if !pending {
		r.spawn(func() { r.saveJob(j) })
	}
}

// saveJob writes a job's latest unsaved status until none is left.
func (r *Requester) saveJob(j *job) {
	for {
		j.mu.Lock()
		rec := j.unsaved
		j.mu.Unlock()
		err := r.store.PutJob(*rec)
		if errors.Is(err, protocol.ErrStaleEpoch) {
			err = nil // a lease sent since wrote a newer record: saveLeases
		}
		if err != nil {
			r.log.Warn("store job", "err", err)
		}
		j.mu.Lock()
		if j.stored != nil {
			j.stored <- err
			j.stored = nil
		}
		if j.unsaved == rec {
			j.unsaved = nil
			j.mu.Unlock()
			return
		}
		j.mu.Unlock()
	}
}

// maxKept is how many history lines and slot events a job keeps: the latest.
// A job's record is rewritten at every step, so it must stay small.
const maxKept = 256

func keepLast[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	return append(s[:0:0], s[len(s)-n:]...)
}

// turns are the slot events between two statuses of a job: a lease epoch
// acknowledged (running), ended (its slot final), or lost (it stopped
// running without its slot ending: missed heartbeats, or a provider that
// lost the run).
func turns(now time.Time, before, after []scheduler.SlotStatus) []store.SlotEvent {
	var out []store.SlotEvent
	for i, s := range after {
		var o scheduler.SlotStatus
		if i < len(before) {
			o = before[i]
		}
		same := o.Epoch == s.Epoch && o.LeaseID == s.LeaseID
		switch {
		case s.State == scheduler.SlotRunning && !(same && o.State == scheduler.SlotRunning):
			if o.State == scheduler.SlotRunning {
				out = append(out, store.SlotEvent{At: now, Slot: i, Epoch: o.Epoch, Provider: o.Provider, Kind: store.EventLost})
			}
			out = append(out, store.SlotEvent{At: now, Slot: i, Epoch: s.Epoch, Provider: s.Provider, Kind: store.EventLeased})
		case s.State.Final() && !o.State.Final() && s.Epoch > 0:
			out = append(out, store.SlotEvent{At: now, Slot: i, Epoch: s.Epoch, Provider: s.Provider, Kind: store.EventEnded})
		case o.State == scheduler.SlotRunning && s.State != scheduler.SlotRunning && !s.State.Final():
			out = append(out, store.SlotEvent{At: now, Slot: i, Epoch: o.Epoch, Provider: o.Provider, Kind: store.EventLost})
		}
	}
	return out
}
