package requester

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/scheduler"
)

// waitQueue serves a requester's jobs that wait for capacity in the order
// they were submitted: a waiting job whose back-off ends tries again only if
// no older waiting job holds it back (scheduler.Blocks: one asking no more,
// under no more constraints, could not find room, so neither would it);
// its back-off is held until none does. A full federation is then asked by
// one waiting job of each shape at a time, not by all of them at every
// back-off, and capacity that frees goes to the job that has waited
// longest; a job that asks less, or may go elsewhere, tries meanwhile (a
// backfill), as in the simulator.
type waitQueue struct {
	clock  clock.Clock
	mu     sync.Mutex
	jobs   []*job          // waiting, oldest first
	parked map[*job]parked // the held back-off of each waiting job but the oldest
}

type parked struct {
	at   time.Time
	fire func()
}

func older(a, b *job) int {
	return cmp.Or(a.submitted.Compare(b.submitted), strings.Compare(a.cid, b.cid))
}

// backoff carries out a waiting job's back-off timer: at once if the job is
// the oldest waiting, else when it becomes so.
func (q *waitQueue) backoff(j *job, a scheduler.SetTimer, fire func()) {
	q.mu.Lock()
	i, found := slices.BinarySearchFunc(q.jobs, j, older)
	if !found {
		q.jobs = slices.Insert(q.jobs, i, j)
	}
	if q.heldBack(j) {
		if q.parked == nil {
			q.parked = map[*job]parked{}
		}
		q.parked[j] = parked{a.At, fire}
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	q.clock.AfterFunc(max(0, a.At.Sub(q.clock.Now())), fire)
}

// done takes j out of the queue: it is placed, or ended, or no longer waits
// for capacity. The later jobs it held back, and no other older one does,
// go, each at the end of its back-off.
func (q *waitQueue) done(j *job) {
	q.mu.Lock()
	i, found := slices.BinarySearchFunc(q.jobs, j, older)
	if !found {
		q.mu.Unlock()
		return
	}
	q.jobs = slices.Delete(q.jobs, i, i+1)
	delete(q.parked, j)
	var next []parked
	for _, later := range q.jobs[i:] {
		p, ok := q.parked[later]
		if !ok || !scheduler.Blocks(j.need, later.need) || q.heldBack(later) {
			continue
		}
		delete(q.parked, later)
		next = append(next, p)
	}
	q.mu.Unlock()
	for _, p := range next {
		q.clock.AfterFunc(max(0, p.at.Sub(q.clock.Now())), p.fire)
	}
}

// heldBack reports whether an older waiting job holds j back. The caller
// holds q.mu.
func (q *waitQueue) heldBack(j *job) bool {
	for _, w := range q.jobs {
		if older(w, j) >= 0 {
			return false
		}
		if scheduler.Blocks(w.need, j.need) {
			return true
		}
	}
	return false
}
