package requester

import (
	"fmt"
	"time"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/scheduler"
)

// report records a placement's status: in memory for the API, and in the store.
func (r *Requester) report(j *job, st scheduler.Status) {
	submitted := j.submitted
	j.update(func() {
		j.status = st
		if j.placed == 0 {
			for _, s := range st.Slots {
				if s.State == scheduler.SlotRunning {
					j.placed = max(r.clock.Now().Sub(submitted), time.Nanosecond)
				}
			}
		}
		if st.Message != "" {
			j.history = append(j.history, fmt.Sprintf("%s %s", r.clock.Now().Sub(submitted).Round(time.Millisecond), st.Message))
		}
		if st.State.Final() {
			select {
			case <-j.done:
			default:
				close(j.done)
			}
		}
	})
	if r.store == nil {
		return
	}
	rec := store.Job{CID: j.cid, Envelope: j.env, SpecFile: j.spec, Submitted: submitted, State: st.State, Reason: st.Reason}
	j.mu.Lock()
	for _, s := range st.Slots {
		slot := store.Slot{LeaseID: s.LeaseID, Epoch: s.Epoch, Provider: s.Provider, State: s.State, Price: s.Price, Labels: s.Labels}
		if res := j.results[runKey{s.LeaseID, s.Epoch}]; res != nil {
			var perr *protocol.Error
			if e := protocol.FromPB(res.Error); e != nil {
				perr, _ = e.(*protocol.Error)
			}
			slot.Result = &store.Result{State: res.State, ExitCode: res.ExitCode, OutputCID: string(res.OutputCid), OutputSize: res.OutputSize,
				StdoutCID: string(res.StdoutCid), StderrCID: string(res.StderrCid),
				Started: conv.MsTime(res.StartedAtMs), Ended: conv.MsTime(res.EndedAtMs), Error: perr,
				StdoutCut: res.StdoutTruncated, StderrCut: res.StderrTruncated}
		}
		rec.Slots = append(rec.Slots, slot)
	}
	j.mu.Unlock()
	// The status is written behind the placement, not on its path: the
	// latest one wins. A crash may lose the last steps; a resumed placement
	// then re-places what it no longer knows of, and a lease orphaned so
	// is never countersigned, so it is never billed twice.
	r.queueSave(j, rec)
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
