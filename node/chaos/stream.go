package chaos

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/clock"
)

// stream runs the job stream and the fault plan for the run's duration,
// then waits for every fault to be healed.
func (r *run) stream(ctx context.Context) error {
	r.t0 = time.Now()
	r.report.Started = r.t0
	end := r.t0.Add(r.o.Duration)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg, faults sync.WaitGroup
	wg.Go(func() { r.submitLoop(sctx, end) })
	wg.Go(func() { r.pollLoop(sctx) })
	faults.Go(func() { r.faultLoop(sctx) })
	clock.Sleep(ctx, time.Until(end)) // the stream's length, not a synchronisation
	faults.Wait()                     // the plan ends by the end of the stream
	r.restores.Wait()                 // every fault healed: restarts done, links up
	stop()
	wg.Wait()
	r.inflight.Wait() // a job acknowledged after this would go unread
	return ctx.Err()
}

// submitLoop submits a job every 1/rate, to the requesters in turn,
// skipping those down.
func (r *run) submitLoop(ctx context.Context, end time.Time) {
	every := time.Duration(float64(time.Second) / r.o.Rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	next := 0
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		k := -1
		r.mu.Lock()
		for i := range r.requesters {
			if c := (next + i) % len(r.requesters); r.reqUp[c] {
				k = c
				break
			}
		}
		r.mu.Unlock()
		next++
		if k < 0 {
			r.jobs.mu.Lock()
			r.jobs.skipped++
			r.jobs.mu.Unlock()
			continue
		}
		// Each submission in its own goroutine: a requester being killed
		// under one must not hold the stream back.
		r.inflight.Go(func() { r.submitOne(k) })
	}
}

func (r *run) submitOne(k int) {
	p := r.requesters[k]
	signed, err := r.spec.seal(r.keys[k])
	if err != nil {
		r.refuse(fmt.Sprintf("seal: %v", err))
		return
	}
	r.mu.Lock()
	var module []byte
	if !r.sentMod[k] {
		module = r.spec.module
	}
	r.mu.Unlock()
	c, err := api.Dial(p.dir)
	var cid string
	if err == nil {
		at := time.Now()
		cid, err = submit(c, signed.Envelope, module)
		if err == nil {
			r.jobs.add(&job{cid: cid, requester: k, submitted: at})
			r.mu.Lock()
			r.sentMod[k] = true
			r.mu.Unlock()
			return
		}
	}
	r.refuse(fmt.Sprintf("%s: %v", p.name, err))
}

func (r *run) refuse(why string) {
	r.jobs.mu.Lock()
	r.jobs.refused = append(r.jobs.refused, why)
	r.jobs.mu.Unlock()
}

// pollLoop reads every requester's job list every 2 s and prints progress
// every 10 s.
func (r *run) pollLoop(ctx context.Context) {
	last := time.Now()
	for clock.Sleep(ctx, 2*time.Second) == nil {
		r.pollOnce()
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			r.progress()
		}
	}
}

// pollOnce reads the view of every job not yet ended from its requester,
// one by one: a handful are open at a time, while the whole list grows
// with the run. After a requester's restart this re-reads its jobs, which
// must have resumed.
func (r *run) pollOnce() {
	clients := map[int]*api.Client{}
	for _, j := range r.jobs.all() {
		r.jobs.mu.Lock()
		ended := j.view.ended()
		r.jobs.mu.Unlock()
		r.mu.Lock()
		up := r.reqUp[j.requester]
		r.mu.Unlock()
		if ended || !up {
			continue
		}
		c := clients[j.requester]
		if c == nil {
			var err error
			if c, err = api.Dial(r.requesters[j.requester].dir); err != nil {
				continue
			}
			clients[j.requester] = c
		}
		var v jobView
		if c.Get("/v1/jobs/"+j.cid, &v) == nil {
			r.jobs.mu.Lock()
			j.view, j.seen = v, true
			r.jobs.mu.Unlock()
		}
	}
}

func (r *run) progress() {
	open, done := r.jobs.open()
	up := 0
	for _, p := range r.providers {
		if p.running() {
			up++
		}
	}
	r.mu.Lock()
	faults := 0
	for _, n := range r.report.Faults {
		faults += n
	}
	r.mu.Unlock()
	fmt.Fprintf(r.o.Log, "%6.0fs  jobs %d ended, %d open; providers running %d/%d; faults %d\n",
		time.Since(r.t0).Seconds(), done, open, up, len(r.providers), faults)
}

// faultLoop injects the plan's faults at their times; each one's healing
// runs on its own.
func (r *run) faultLoop(ctx context.Context) {
	for _, f := range r.report.Plan {
		if clock.Sleep(ctx, time.Until(r.t0.Add(f.At))) != nil {
			return
		}
		r.inject(ctx, f)
	}
}

func (r *run) inject(ctx context.Context, f Fault) {
	count := func(ok bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if ok {
			r.report.Faults[f.Kind]++
		} else {
			r.report.Missed++
		}
	}
	switch f.Kind {
	case KillRequester:
		p := r.requesters[f.Targets[0]]
		r.setReqUp(f.Targets[0], false)
		at := time.Now()
		ok := p.kill(syscall.SIGKILL, 10*time.Second)
		count(ok)
		r.later(ctx, f.Down, func() {
			r.restart(ctx, p)
			r.mu.Lock()
			r.reqDown = append(r.reqDown, outage{requester: f.Targets[0], from: at, to: time.Now()})
			r.mu.Unlock()
			// Its jobs must have resumed: the next poll re-reads every
			// view, and the final audit every job.
			r.setReqUp(f.Targets[0], true)
		})
	case Partition:
		k := f.Targets[0]
		at := time.Now()
		if err := r.ns.Cut(ctx, k, true); err != nil {
			fmt.Fprintf(r.o.Log, "partition of p%d: %v\n", k, err)
			count(false)
			return
		}
		r.addHit(r.providers[k], at)
		count(true)
		r.later(ctx, f.Down, func() {
			if err := r.ns.Cut(context.Background(), k, false); err != nil {
				fmt.Fprintf(r.o.Log, "healing p%d: %v\n", k, err)
			}
		})
	default: // provider kills
		// All at once: one goroutine per target.
		var (
			mu     sync.Mutex
			killed []*proc
			wg     sync.WaitGroup
		)
		for _, k := range f.Targets {
			p := r.providers[k]
			wg.Go(func() {
				at := time.Now()
				if p.kill(syscall.SIGKILL, 10*time.Second) {
					r.addHit(p, at)
					mu.Lock()
					killed = append(killed, p)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		count(len(killed) > 0)
		if len(killed) == 0 {
			return
		}
		r.later(ctx, f.Down, func() {
			for _, p := range killed {
				r.restart(ctx, p)
			}
		})
	}
}

// later runs heal after d, or at once if the run is cancelled, so that
// nothing stays down or cut off.
func (r *run) later(ctx context.Context, d time.Duration, heal func()) {
	r.restores.Add(1)
	go func() {
		defer r.restores.Done()
		clock.Sleep(ctx, d)
		heal()
	}()
}

// restart starts a daemon again and waits for it to listen, trying twice
// more if it fails to come up.
func (r *run) restart(ctx context.Context, p *proc) {
	if ctx.Err() != nil {
		return
	}
	var err error
	for range 3 {
		if err = p.start(); err == nil {
			if err = p.waitReady(ctx, 2*time.Minute); err == nil {
				return
			}
			p.kill(syscall.SIGKILL, 10*time.Second)
		}
	}
	fmt.Fprintf(r.o.Log, "restart of %s failed: %v\n", p.name, err)
}

func (r *run) setReqUp(k int, up bool) {
	r.mu.Lock()
	r.reqUp[k] = up
	r.mu.Unlock()
}

func (r *run) addHit(p *proc, at time.Time) {
	r.mu.Lock()
	r.hits = append(r.hits, hit{Provider: p.peerID, At: at})
	r.mu.Unlock()
}

// finish makes sure every daemon runs, then lets the jobs end: up to the
// placement timeout and a job's timeout past the stream, plus a minute.
func (r *run) finish(ctx context.Context) {
	for k, p := range r.requesters {
		if !p.running() {
			r.restart(ctx, p)
		}
		r.setReqUp(k, true)
	}
	for _, p := range r.providers {
		if !p.running() {
			r.restart(ctx, p)
		}
	}
	deadline := time.Now().Add(r.o.PlacementTimeout + r.spec.timeout + time.Minute)
	fmt.Fprintf(r.o.Log, "stream over: waiting for the jobs to end (until %s)\n", deadline.Format(time.TimeOnly))
	for time.Now().Before(deadline) {
		r.pollOnce()
		if open, _ := r.jobs.open(); open == 0 && r.allSeen() {
			break
		}
		if clock.Sleep(ctx, time.Second) != nil {
			return
		}
	}
	// The final word on each job: its own view, from its requester.
	for _, j := range r.jobs.all() {
		c, err := api.Dial(r.requesters[j.requester].dir)
		if err == nil {
			var v jobView
			if err = c.Get("/v1/jobs/"+j.cid, &v); err == nil {
				r.jobs.mu.Lock()
				j.view, j.seen = v, true
				r.jobs.mu.Unlock()
				continue
			}
		}
		r.jobs.mu.Lock()
		j.err = err.Error()
		r.jobs.mu.Unlock()
	}
}

func (r *run) allSeen() bool {
	for _, j := range r.jobs.all() {
		r.jobs.mu.Lock()
		seen := j.seen
		r.jobs.mu.Unlock()
		if !seen {
			return false
		}
	}
	return true
}

// tally counts the jobs by their end and reads the figures off their
// events.
func (r *run) tally() {
	rep := r.report
	jobs := r.jobs.all()
	rep.Jobs.Unsent, rep.Jobs.Refused = r.jobs.skipped, len(r.jobs.refused)
	for _, j := range jobs {
		rep.Jobs.Submitted++
		v := j.view
		switch {
		case j.err != "":
			rep.Jobs.Lost++
			rep.Lost = append(rep.Lost, LostJob{CID: j.cid, State: "unknown", Reason: "its requester does not show it: " + j.err})
		case v.State == "succeeded":
			rep.Jobs.Succeeded++
		case v.ownFault():
			rep.Jobs.FailedOwn++
		case !v.ended():
			rep.Jobs.Lost++
			rep.Lost = append(rep.Lost, LostJob{CID: j.cid, State: v.State, Reason: "not ended when the run drained"})
		default:
			rep.Jobs.Lost++
			rep.Lost = append(rep.Lost, LostJob{CID: j.cid, State: v.State, Reason: v.Reason})
		}
	}
	measure(rep, jobs, r.hits, r.reqDown)
	for _, f := range rep.Plan {
		if f.Kind != KillMass {
			continue
		}
		from := r.t0.Add(f.At)
		for _, j := range jobs {
			if j.submitted.Before(from) || !j.submitted.Before(from.Add(massWindow)) {
				continue
			}
			rep.AfterMassKill.Submitted++
			if j.view.placed() {
				rep.AfterMassKill.Placed++
			}
		}
	}
	if n := rep.AfterMassKill.Submitted; n > 0 {
		rep.AfterMassKill.Rate = float64(rep.AfterMassKill.Placed) / float64(n)
	}
}
