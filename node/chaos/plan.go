package chaos

import (
	"encoding/json"
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
	At      time.Duration
	Kind    Kind
	Targets []int // provider indexes; the requester's for KillRequester
	Down    time.Duration
}

// MarshalJSON writes the times in milliseconds.
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AtMs    int64 `json:"at_ms"`
		Kind    Kind  `json:"kind"`
		Targets []int `json:"targets"`
		DownMs  int64 `json:"down_ms"`
	}{f.At.Milliseconds(), f.Kind, f.Targets, f.Down.Milliseconds()})
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
	// Targets: specials first, so that none is crowded out, then the
	// single kills, each drawn again (up to 20 times) until its time is
	// outside the mass kills' windows and a provider is free for its whole
	// outage.
	busy := make([][]span, c.Providers)
	var plan []Fault
	for _, f := range special {
		f.At = max(5*time.Second, f.At)
		if f.Kind == KillRequester {
			f.At = clearOfMassKills(plan, f, d)
		} else {
			n := 1
			if f.Kind == KillMass {
				n = max(1, (c.Providers+4)/5)
			}
			f.Targets = pick(rng, busy, f, n, c.Providers)
			if len(f.Targets) == 0 {
				continue
			}
		}
		plan = append(plan, f)
	}
	for i := range max(0, total-len(special)) {
		f := Fault{Kind: KillFast}
		// The first two are one of each, so that a short run sees both.
		if i == 0 || i > 1 && rng.IntN(10) < 3 {
			f.Kind = KillSlow
		}
		for range 20 {
			f.At = between(5*time.Second, d)
			f.Down = between(0, 800*time.Millisecond)
			if f.Kind == KillSlow {
				f.Down = between(5*time.Second, slowMax)
			}
			if inMassWindow(plan, f.At) {
				continue
			}
			if f.Targets = pick(rng, busy, f, 1, c.Providers); len(f.Targets) > 0 {
				plan = append(plan, f)
				break
			}
		}
	}
	slices.SortStableFunc(plan, func(a, b Fault) int { return int(a.At - b.At) })
	return plan
}

// span is a time a provider is planned down or cut off, with a margin for
// its restart on a loaded machine.
type span struct{ from, to time.Duration }

// pick draws n providers free for f's whole outage, keeping (but for a
// mass kill) more than half of them up meanwhile, and marks them busy; it
// returns fewer, or none, if there are not enough.
func pick(rng *rand.Rand, busy [][]span, f Fault, n, providers int) []int {
	s := span{f.At, f.At + f.Down + 3*time.Second}
	overlaps := func(p int) bool {
		for _, b := range busy[p] {
			if b.from < s.to && s.from < b.to {
				return true
			}
		}
		return false
	}
	var free []int
	for p := range providers {
		if !overlaps(p) {
			free = append(free, p)
		}
	}
	if f.Kind != KillMass && providers-len(free)+1 > providers/2 {
		return nil
	}
	if f.Kind == KillMass {
		n = min(n, len(free)-1) // never every provider
	}
	if n < 1 || len(free) < n {
		return nil
	}
	rng.Shuffle(len(free), func(i, k int) { free[i], free[k] = free[k], free[i] })
	out := slices.Sorted(slices.Values(free[:n]))
	for _, p := range out {
		busy[p] = append(busy[p], s)
	}
	return out
}

// clearOfMassKills moves a requester kill, with its restart, out of the
// mass kills' windows, after them or else before them: a requester down
// there would delay the detections and placements that the window
// measures. In a run too short for either it keeps its time.
func clearOfMassKills(plan []Fault, f Fault, d time.Duration) time.Duration {
	out := func(at time.Duration) bool {
		to := at + f.Down + 3*time.Second // with its restart
		for _, m := range plan {
			if m.Kind == KillMass && at < m.At+massWindow && m.At-2*time.Second < to {
				return false
			}
		}
		return at >= 5*time.Second && at < d
	}
	if out(f.At) {
		return f.At
	}
	for _, m := range plan {
		if m.Kind != KillMass {
			continue
		}
		for _, at := range []time.Duration{m.At + massWindow, m.At - 2*time.Second - f.Down - 3*time.Second - time.Millisecond} {
			if out(at) {
				return at
			}
		}
	}
	return f.At
}

func inMassWindow(plan []Fault, at time.Duration) bool {
	for _, f := range plan {
		if f.Kind == KillMass && at >= f.At-2*time.Second && at < f.At+massWindow {
			return true
		}
	}
	return false
}
