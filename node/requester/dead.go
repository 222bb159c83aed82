package requester

import (
	"sync"
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// deadFor is how long a provider that did not answer is left out of the
// candidates of every placement of this requester.
const deadFor = scheduler.DefaultDeadFor

// deadSet is the requester's negative cache of providers: those that did
// not answer an offer request or a lease, shared by all its placements, so
// that a dead provider costs at most one failed dial per deadFor, not one per
// job. A provider that answers anything, even a refusal, is alive again.
type deadSet struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// mark records that p did not answer at now.
func (d *deadSet) mark(p string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.until == nil || len(d.until) > 10_000 {
		d.until = map[string]time.Time{} // crude bound: start afresh
	}
	d.until[p] = now.Add(deadFor)
}

// alive records that p answered.
func (d *deadSet) alive(p string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.until, p)
}

// filter returns peers less those that did not answer within deadFor of now.
func (d *deadSet) filter(peers []string, now time.Time) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.until) == 0 {
		return peers
	}
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		if t, ok := d.until[p]; ok {
			if now.Before(t) {
				continue
			}
			delete(d.until, p)
		}
		out = append(out, p)
	}
	return out
}
