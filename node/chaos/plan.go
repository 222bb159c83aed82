package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults the harness injects.
const (
	// KillFast is kill -9 of one provider, restarted within a second.
	KillFast Kind = "kill-fast"
	// KillSlow is kill -9 of one provider, restarted 5 to 30 s later.
	KillSlow Kind = "kill-slow"
	// KillMass is kill -9 of a fifth of the providers at once, restarted
	// together a while later.
	KillMass Kind = "kill-20pct"
	// KillRequester is kill -9 of a requester daemon, restarted within 3 s:
	// its jobs must resume.
	KillRequester Kind = "kill-requester"
	// Partition cuts one provider off the network (its link down) and
	// heals it after the partition time; the process keeps running.
	Partition Kind = "partition"
)

// Kinds lists the kinds in the order reports show them.
var Kinds = []Kind{KillFast, KillSlow, KillMass, KillRequester, Partition}

// Fault is one fault of a plan: what happens at At (from the start of the
// job stream) to which daemons, and for how long they stay down or cut off.
type Fault struct {
	At      time.Duration `json:"at_ms"`
	Kind    Kind          `json:"kind"`
	Targets []int         `json:"targets"` // provider indexes; the requester's for KillRequester
	Down    time.Duration `json:"down_ms"`
}

func (f Fault) String() string {
	who := make([]string, len(f.Targets))
	for i, t := range f.Targets {
		who[i] = fmt.Sprintf("p%d", t)
		if f.Kind == KillRequester {
			who[i] = fmt.Sprintf("r%d", t)
		}
	}
	return fmt.Sprintf("%8.1fs  %-14s %-12s back after %.1fs", f.At.Seconds(), f.Kind, strings.Join(who, ","), f.Down.Seconds())
}

// massWindow is how long after a mass kill no other provider fault is
// planned: the window whose placements the report measures.
const massWindow = 30 * time.Second

// planConfig is what a plan is drawn from.
type planConfig struct {
	Seed         uint64
	Duration     time.Duration
	Providers    int
	Requesters   int
	Faults       int // total wanted; 0: one every 2.5 s
	Partitions   bool
	PartitionFor time.Duration
}

// makePlan draws the faults of a run from its seed: the same config gives
// the same plan, so a run can be replayed. Special faults (mass kills,
// requester kills, partitions) are spread evenly with some jitter; the rest
// are single provider kills at random times, 70% restarted fast (and
// the first two one of each). A target
// is always a provider the plan has up at that time, and at least half of
// the providers are kept up apart from the mass kills; a fault with no such
// target is left out, so a plan may hold fewer faults than asked.
func makePlan(c planConfig) []Fault {
	rng := rand.New(rand.NewPCG(c.Seed, 0xc4a05))
	d := c.Duration
	total := c.Faults
	if total <= 0 {
		total = max(1, int(d/(2500*time.Millisecond)))
	}
	// Restarts and outages scale down for short runs, so that a smoke of a
	// minute still sees each kind end.
	slowMax := min(30*time.Second, max(5*time.Second, d/6))
	massDown := min(20*time.Second, max(5*time.Second, d/6))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	spread := func(n int, k int) time.Duration { // the k-th of n evenly spread times, jittered
		slot := d / time.Duration(n+1)
		return slot*time.Duration(k+1) + between(-slot/4, slot/4)
	}

	var special []Fault
	nMass := max(1, int(d/(5*time.Minute)))
	for k := range nMass {
		special = append(special, Fault{At: spread(nMass, k), Kind: KillMass, Down: massDown})
	}
	nReq := max(1, int(d/(3*time.Minute)))
	for k := range nReq {
		special = append(special, Fault{At: spread(nReq, k) + 3*time.Second, Kind: KillRequester, Targets: []int{k % c.Requesters}, Down: between(200*time.Millisecond, 3*time.Second)})
	}
	if c.Partitions {
		nPart := max(1, int(d/(3*time.Minute)))
		for k := range nPart {
			special = append(special, Fault{At: spread(nPart, k) - 4*time.Second, Kind: Partition, Down: c.PartitionFor})
		}
	}
	var plan []Fault
	for _, f := range special {
		f.At = max(5*time.Second, f.At)
		plan = append(plan, f)
	}
	for i := range max(0, total-len(special)) {
		at := between(5*time.Second, d)
		if inMassWindow(plan, at) {
			continue
		}
		f := Fault{At: at, Kind: KillFast, Down: between(0, 800*time.Millisecond)}
		// The first two are one of each, so that a short run sees both.
		if i == 0 || i > 1 && rng.IntN(10) < 3 {
			f.Kind, f.Down = KillSlow, between(5*time.Second, slowMax)
		}
		plan = append(plan, f)
	}
	slices.SortStableFunc(plan, func(a, b Fault) int { return int(a.At - b.At) })

	// Targets, walking the plan in time with each provider's planned
	// return.
	back := make([]time.Duration, c.Providers)
	upAt := func(t time.Duration) []int {
		var up []int
		for i, b := range back {
			if b <= t {
				up = append(up, i)
			}
		}
		return up
	}
	var out []Fault
	for _, f := range plan {
		if f.Kind == KillRequester {
			out = append(out, f)
			continue
		}
		up := upAt(f.At)
		n := 1
		if f.Kind == KillMass {
			n = max(1, (c.Providers+4)/5)
		} else if c.Providers-len(up)+1 > c.Providers/2 {
			continue // half are down already
		}
		if len(up) < n || len(up) < 2 {
			continue
		}
		rng.Shuffle(len(up), func(i, k int) { up[i], up[k] = up[k], up[i] })
		f.Targets = slices.Sorted(slices.Values(up[:n]))
		for _, t := range f.Targets {
			// A restart takes a moment on a loaded machine: a target is
			// not drawn again until well after its planned return.
			back[t] = f.At + f.Down + 3*time.Second
		}
		out = append(out, f)
	}
	return out
}

func inMassWindow(plan []Fault, at time.Duration) bool {
	for _, f := range plan {
		if f.Kind == KillMass && at >= f.At-2*time.Second && at < f.At+massWindow {
			return true
		}
	}
	return false
}
