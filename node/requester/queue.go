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
// they were submitted: only the oldest waiting job tries again when its
// back-off ends; the others' back-offs are held until every older one is
// placed or has ended. A full federation is then asked by one waiting job
// of this requester at a time, not by all of them at every back-off, and
// capacity that frees goes to the job that has waited longest. It is
// strict: a small job waits behind a large one that finds no room (no
// backfill).
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
	if i > 0 {
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
// for capacity. The next oldest waiting job, if its back-off was held, goes.
func (q *waitQueue) done(j *job) {
	q.mu.Lock()
	i, found := slices.BinarySearchFunc(q.jobs, j, older)
	if !found {
		q.mu.Unlock()
		return
	}
	q.jobs = slices.Delete(q.jobs, i, i+1)
	delete(q.parked, j)
	var next parked
	var ok bool
	if i == 0 && len(q.jobs) > 0 {
		next, ok = q.parked[q.jobs[0]]
		delete(q.parked, q.jobs[0])
	}
	q.mu.Unlock()
	if ok {
		q.clock.AfterFunc(max(0, next.at.Sub(q.clock.Now())), next.fire)
	}
}
