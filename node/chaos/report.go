package chaos

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Report is what a run found: the figures of docs/RELIABILITY.md.
type Report struct {
	Seed       uint64    `json:"seed"`
	Started    time.Time `json:"started"`
	Duration   string    `json:"duration"` // of the job stream and its faults
	Providers  int       `json:"providers"`
	Requesters int       `json:"requesters"`
	Rate       float64   `json:"rate_per_s"`
	// Partitions says whether partitions were made; PartitionsSkipped why
	// not, when they were not.
	Partitions        bool    `json:"partitions"`
	PartitionsSkipped string  `json:"partitions_skipped,omitempty"`
	Plan              []Fault `json:"plan"`

	Jobs Jobs `json:"jobs"`
	// Lost lists every job that ended for a reason not its own, or had not
	// ended when the run drained.
	Lost []LostJob `json:"lost,omitempty"`

	// Faults counts the faults injected, by kind; Missed those of the plan
	// that found their target not running (a restart that failed).
	Faults map[Kind]int `json:"faults"`
	Missed int          `json:"faults_missed"`

	// RunTwice counts lease epochs (lease ID, epoch) that more than one
	// provider's store holds as committed: a lease starts as soon as it is
	// committed, so each of them ran, or could have, twice.
	RunTwice       int      `json:"run_twice"`
	RunTwiceLeases []string `json:"run_twice_leases,omitempty"`
	// BilledTwice counts lease epochs with more than one distinct
	// countersigned receipt across every store.
	BilledTwice       int      `json:"billed_twice"`
	BilledTwiceLeases []string `json:"billed_twice_leases,omitempty"`
	// SlotsBilledEpochs counts the slots (lease IDs) countersigned for
	// more than one epoch: a run lost with its provider, billed for the
	// time it ran, and its replacement. Not an error; shown for the
	// operator.
	SlotsBilledEpochs int `json:"slots_billed_several_epochs"`
	Leases            int `json:"leases"`        // lease epochs in the providers' stores
	Countersigned     int `json:"countersigned"` // countersigned receipts in the providers' stores

	// Detection is from a provider's kill or partition to the requester
	// declaring each lease it had live lost; Replacement from that
	// declaration to the slot's next lease acknowledged.
	Detection   Quantiles `json:"detection"`
	Replacement Quantiles `json:"replacement"`
	// DetectionRequesterDown are the detections, kept apart, of leases
	// whose requester was itself killed between the fault and the
	// declaration: it could declare them lost only once restarted.
	DetectionRequesterDown Quantiles `json:"detection_requester_down"`
	// LeasesHit counts the leases live on a provider when it was killed or
	// cut off; Undeclared those of them that no "lost" event followed
	// (their job ended otherwise, or the run drained first).
	LeasesHit  int `json:"leases_hit"`
	Undeclared int `json:"undeclared"`
	// Slowest are the five slowest re-placements, to look up in the
	// requester's job views (keep the data dirs with --dir).
	Slowest []Sample `json:"slowest_replacements,omitempty"`
	// EventsSeen says whether the requester's job views carried events at
	// all: without them there is no detection or re-placement figure.
	EventsSeen bool `json:"events_seen"`

	// AfterMassKill is the placement of jobs submitted in the 30 s after
	// each mass kill.
	AfterMassKill Placement `json:"after_mass_kill"`
}

// Jobs counts the jobs by how they ended.
type Jobs struct {
	Submitted int `json:"submitted"` // acknowledged by a requester
	Succeeded int `json:"succeeded"`
	FailedOwn int `json:"failed_own_fault"` // non-zero exit or its own timeout
	Lost      int `json:"lost"`
	// Unsent counts the ticks of the stream when no requester was up, and
	// Refused the submissions a requester did not acknowledge (it was
	// killed under them): neither is the federation's to keep.
	Unsent  int `json:"unsent"`
	Refused int `json:"refused"`
}

// LostJob is one lost job, with the requester's own words.
type LostJob struct {
	CID    string `json:"cid"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// Quantiles of a set of durations, in milliseconds.
type Quantiles struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

func quantiles(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := min(len(ds)-1, int(q*float64(len(ds))))
		return ms(ds[i])
	}
	return Quantiles{N: len(ds), P50Ms: at(0.5), P99Ms: at(0.99), MaxMs: at(1)}
}

// Sample is one lease taken out by a fault, detected and placed again.
type Sample struct {
	Job         string  `json:"job"`
	Slot        int     `json:"slot"`
	Epoch       uint64  `json:"epoch"` // the epoch lost
	Provider    string  `json:"provider"`
	DetectMs    float64 `json:"detect_ms"`
	ReplaceMs   float64 `json:"replace_ms"`
	NewProvider string  `json:"new_provider"`
}

// Placement is how many of some jobs were placed.
type Placement struct {
	Submitted int     `json:"submitted"`
	Placed    int     `json:"placed"`
	Rate      float64 `json:"rate"`
}

// OK says the run kept every job: none lost, run twice or billed twice.
func (r *Report) OK() bool {
	return r.Jobs.Lost == 0 && r.RunTwice == 0 && r.BilledTwice == 0
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteText writes the report as a table.
func (r *Report) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "chaos run\tseed %d, %s, %d providers, %d requester(s), %.2g jobs/s\n", r.Seed, r.Duration, r.Providers, r.Requesters, r.Rate)
	if r.PartitionsSkipped != "" {
		fmt.Fprintf(tw, "partitions\tskipped: %s\n", r.PartitionsSkipped)
	}
	fmt.Fprintf(tw, "jobs submitted\t%d\n", r.Jobs.Submitted)
	fmt.Fprintf(tw, "  succeeded\t%d\n", r.Jobs.Succeeded)
	fmt.Fprintf(tw, "  failed, own fault\t%d\n", r.Jobs.FailedOwn)
	fmt.Fprintf(tw, "  LOST\t%d\n", r.Jobs.Lost)
	if r.Jobs.Unsent+r.Jobs.Refused > 0 {
		fmt.Fprintf(tw, "  not submitted\t%d (no requester up), %d (requester killed under the submission)\n", r.Jobs.Unsent, r.Jobs.Refused)
	}
	fmt.Fprintf(tw, "run twice (one epoch)\t%d\n", r.RunTwice)
	fmt.Fprintf(tw, "billed twice\t%d\n", r.BilledTwice)
	fmt.Fprintf(tw, "leases, countersigned\t%d lease epochs, %d countersigned receipts; %d slots billed for more than one epoch\n", r.Leases, r.Countersigned, r.SlotsBilledEpochs)
	total := 0
	for _, k := range Kinds {
		total += r.Faults[k]
	}
	fmt.Fprintf(tw, "faults injected\t%d", total)
	for _, k := range Kinds {
		fmt.Fprintf(tw, ", %s %d", k, r.Faults[k])
	}
	if r.Missed > 0 {
		fmt.Fprintf(tw, " (%d missed: target not running)", r.Missed)
	}
	fmt.Fprintln(tw)
	switch {
	case r.EventsSeen && r.LeasesHit == 0:
		fmt.Fprintf(tw, "detection\tno lease was live on a provider when it was killed or cut off\n")
	case r.EventsSeen:
		fmt.Fprintf(tw, "detection\tp50 %.0f ms, p99 %.0f ms, max %.0f ms (%d leases; %d hit, %d not declared lost)\n", r.Detection.P50Ms, r.Detection.P99Ms, r.Detection.MaxMs, r.Detection.N, r.LeasesHit, r.Undeclared)
		if d := r.DetectionRequesterDown; d.N > 0 {
			fmt.Fprintf(tw, "  requester down too\tp50 %.0f ms, max %.0f ms (%d leases whose requester was killed before it could declare them lost; not in the figure above)\n", d.P50Ms, d.MaxMs, d.N)
		}
		fmt.Fprintf(tw, "re-placement\tp50 %.0f ms, p99 %.0f ms, max %.0f ms (%d slots)\n", r.Replacement.P50Ms, r.Replacement.P99Ms, r.Replacement.MaxMs, r.Replacement.N)
	default:
		fmt.Fprintf(tw, "detection\tunknown: the requester's job views carry no events\n")
	}
	fmt.Fprintf(tw, "placed after 20%% died\t%d of %d (%.1f%%), jobs submitted in the %v after each mass kill\n", r.AfterMassKill.Placed, r.AfterMassKill.Submitted, 100*r.AfterMassKill.Rate, massWindow)
	tw.Flush()
	for _, l := range r.Lost {
		fmt.Fprintf(w, "  lost %s (%s): %s\n", l.CID, l.State, l.Reason)
	}
}

// auditStores opens every store once the daemons are stopped and counts
// the lease epochs held by two providers and the receipts countersigned
// twice. Providers are named by index in dirs; the requesters' stores are
// read for receipts only.
func auditStores(r *Report, providerDirs, requesterDirs []string) error {
	type key struct {
		id    string
		epoch uint64
	}
	holders := map[key][]int{}
	cs := map[key]map[string]bool{} // distinct countersigned receipt envelopes
	for i, dir := range append(slices.Clone(providerDirs), requesterDirs...) {
		st, err := store.Open(filepath.Join(dir, node.StateFile), store.Options{LockTimeout: 10 * time.Second})
		if err != nil {
			return fmt.Errorf("audit %s: %w", dir, err)
		}
		if i < len(providerDirs) {
			leases, err := st.Leases(nil)
			if err != nil {
				st.Close()
				return fmt.Errorf("audit %s: %w", dir, err)
			}
			for _, l := range leases {
				r.Leases++
				if l.State == pb.LeaseState_LEASE_STATE_EXPIRED {
					continue // never started
				}
				k := key{l.ID, l.Epoch}
				holders[k] = append(holders[k], i)
			}
		}
		receipts, err := st.Receipts()
		st.Close()
		if err != nil {
			return fmt.Errorf("audit %s: %w", dir, err)
		}
		for _, rc := range receipts {
			if len(rc.Countersignature) == 0 {
				continue
			}
			if i < len(providerDirs) {
				r.Countersigned++
			}
			k := key{rc.LeaseID, rc.Epoch}
			if cs[k] == nil {
				cs[k] = map[string]bool{}
			}
			cs[k][string(rc.Envelope)] = true
		}
	}
	for k, h := range holders {
		if len(h) > 1 {
			r.RunTwice++
			r.RunTwiceLeases = append(r.RunTwiceLeases, fmt.Sprintf("%x epoch %d on providers %v", k.id, k.epoch, h))
		}
	}
	epochs := map[string]int{}
	for k, envs := range cs {
		epochs[k.id]++
		if len(envs) > 1 {
			r.BilledTwice++
			r.BilledTwiceLeases = append(r.BilledTwiceLeases, fmt.Sprintf("%x epoch %d: %d receipts", k.id, k.epoch, len(envs)))
		}
	}
	for _, n := range epochs {
		if n > 1 {
			r.SlotsBilledEpochs++
		}
	}
	sort.Strings(r.RunTwiceLeases)
	sort.Strings(r.BilledTwiceLeases)
	return nil
}

// hit is a provider taken out by a fault: killed or cut off at At.
type hit struct {
	Provider string // peer ID
	At       time.Time
}

// outage is a requester down: killed at from, back and ready at to.
type outage struct {
	requester int
	from, to  time.Time
}

// measure reads detection and re-placement times off the jobs' events: for
// each provider taken out, each lease it had live (acknowledged, neither
// ended nor lost yet), the time to its "lost" event, and from there to the
// slot's next "leased" one. A detection during which the job's requester
// was down is counted apart: it measures the requester's restart.
func measure(r *Report, jobs []*job, hits []hit, down []outage) {
	var detect, detectDown, replace []time.Duration
	var samples []Sample
	for _, j := range jobs {
		ev := j.view.Events
		if len(ev) > 0 {
			r.EventsSeen = true
		}
		for _, h := range hits {
			for _, l := range ev {
				if l.Kind != "leased" || l.Provider != h.Provider || l.At.After(h.At) {
					continue
				}
				var end *eventView
				for i := range ev {
					e := &ev[i]
					if e.Slot == l.Slot && e.Epoch == l.Epoch && (e.Kind == "lost" || e.Kind == "ended") && (end == nil || e.At.Before(end.At)) {
						end = e
					}
				}
				if end != nil && !end.At.After(h.At) {
					continue // over before the fault
				}
				r.LeasesHit++
				if end == nil || end.Kind != "lost" {
					r.Undeclared++
					continue
				}
				if requesterDown(down, j.requester, h.At, end.At) {
					detectDown = append(detectDown, end.At.Sub(h.At))
				} else {
					detect = append(detect, end.At.Sub(h.At))
				}
				var next *eventView
				for i := range ev {
					e := &ev[i]
					if e.Slot == l.Slot && e.Kind == "leased" && e.Epoch > l.Epoch && (next == nil || e.Epoch < next.Epoch) {
						next = e
					}
				}
				if next != nil {
					replace = append(replace, next.At.Sub(end.At))
					samples = append(samples, Sample{Job: j.cid, Slot: l.Slot, Epoch: l.Epoch, Provider: l.Provider,
						DetectMs: ms(end.At.Sub(h.At)), ReplaceMs: ms(next.At.Sub(end.At)), NewProvider: next.Provider})
				}
			}
		}
	}
	r.Detection, r.Replacement = quantiles(detect), quantiles(replace)
	r.DetectionRequesterDown = quantiles(detectDown)
	slices.SortFunc(samples, func(a, b Sample) int { return cmp.Compare(b.ReplaceMs, a.ReplaceMs) })
	r.Slowest = samples[:min(5, len(samples))]
}

// requesterDown says whether requester k was down at some time between
// from and to.
func requesterDown(down []outage, k int, from, to time.Time) bool {
	for _, o := range down {
		if o.requester == k && o.from.Before(to) && from.Before(o.to) {
			return true
		}
	}
	return false
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
