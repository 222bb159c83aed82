package requester

import (
	"bytes"
	"fmt"

	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// reloadFinished shows a job that ended before this process started, from
// its record: status, results, and the logs kept by CID.
func (r *Requester) reloadFinished(rec store.Job) {
	sj, err := record.OpenJob(rec.Envelope)
	if err != nil {
		return
	}
	j := newJob(sj.Job, rec.CID, rec.Envelope, rec.SpecFile, rec.Submitted)
	close(j.ended) // no placement: nothing to stop
	j.status = scheduler.Status{State: rec.State, Reason: rec.Reason, Code: scheduler.Reason(rec.Code)}
	j.history, j.turns = rec.History, rec.Events
	for _, s := range rec.Slots {
		ss := scheduler.SlotStatus{LeaseID: s.LeaseID, Epoch: s.Epoch, Provider: s.Provider, State: s.State, Price: s.Price, Labels: s.Labels, Site: s.Site}
		if res := s.Result; res != nil {
			ss.ExitCode, ss.OutputCID = res.ExitCode, res.OutputCID
			if j.results == nil {
				j.results = map[runKey]*pb.Result{}
			}
			j.results[runKey{s.LeaseID, s.Epoch}] = &pb.Result{StdoutTruncated: res.StdoutCut, StderrTruncated: res.StderrCut, OutputSize: res.OutputSize}
			for _, l := range []struct {
				cid string
				buf *bytes.Buffer
			}{{res.StdoutCID, &j.stdout}, {res.StderrCID, &j.stderr}} {
				if c, err := wire.ParseCID([]byte(l.cid)); err == nil {
					if b, err := r.store.Module(c); err == nil {
						l.buf.Write(b)
					}
				}
			}
		}
		j.status.Slots = append(j.status.Slots, ss)
	}
	close(j.done)
	r.jobsMu.Lock()
	r.jobs[sj.CID.String()] = j
	r.jobsMu.Unlock()
}

// resumeJobs takes up the jobs a previous process of this node was placing
// (jobs survive a requester restart): each gets its placement back
// with its slots as last recorded; running leases are watched again, and a
// provider that no longer answers loses its lease to a new epoch.
func (r *Requester) resumeJobs() error {
	if r.store == nil {
		return nil
	}
	all, err := r.store.Jobs(nil)
	if err != nil {
		return fmt.Errorf("reload jobs: %w", err)
	}
	defer r.redeliver(all)
	for _, rec := range all {
		if rec.State.Final() {
			r.reloadFinished(rec)
			continue
		}
		sj, err := record.OpenJob(rec.Envelope)
		if err != nil {
			r.log.Warn("stored job does not open", "err", err)
			continue
		}
		sjob, err := scheduler.JobFromPB(rec.CID, r.id, sj.Job)
		if err != nil {
			continue
		}
		p := scheduler.NewPlacement(r.cfg.Placement, sjob, randomSeed())
		slots := make([]scheduler.SlotStatus, len(rec.Slots))
		for i, s := range rec.Slots {
			slots[i] = scheduler.SlotStatus{LeaseID: s.LeaseID, Epoch: s.Epoch, Provider: s.Provider, State: s.State, Price: s.Price, Labels: s.Labels, Site: s.Site}
		}
		if len(slots) > 0 && !p.Resume(slots) {
			r.log.Warn("stored job's slots do not match it", "job", sj.CID)
			continue
		}
		key := sj.CID.String()
		j := newJob(sj.Job, rec.CID, rec.Envelope, rec.SpecFile, rec.Submitted)
		// What it was, so that the turns of its first step here are new ones.
		j.status = scheduler.Status{State: rec.State, Reason: rec.Reason, Code: scheduler.Reason(rec.Code), Slots: p.Status().Slots}
		j.history, j.turns = rec.History, rec.Events
		r.jobsMu.Lock()
		r.jobs[key] = j
		r.jobsMu.Unlock()
		r.start(j, p)
		for _, s := range slots {
			if s.State == scheduler.SlotLeasing || s.State == scheduler.SlotRunning {
				send := func(ev scheduler.Event) {
					select {
					case j.events <- ev:
					case <-j.ended:
					}
				}
				// The offer's unit prices died with the previous
				// process; its total was stored with the slot.
				terms := Terms{JobCID: rec.CID, Total: &pb.Amount{Currency: s.Price.Currency, Nanos: s.Price.Nanos}}
				r.spawn(func() { r.watchLease(r.ctx, j, s.Provider, s.LeaseID, s.Epoch, terms, send) })
			}
		}
		r.log.Info("resumed job", "job", key, "slots", len(slots))
	}
	return nil
}
