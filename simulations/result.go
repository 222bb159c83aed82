package simulations

import (
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// Result is what one run of one variant of a scenario measured. Times are
// virtual, since the start of the run.
type Result struct {
	Scenario string
	Variant  string
	// Placement is the placement mechanism of the run: "cuivre" or a
	// baseline (Scheduler.Placement).
	Placement string
	Seed      uint64
	// TraceHash is a SHA-256 of every event the run processed, in order:
	// two runs with the same scenario and seed have the same hash.
	TraceHash string
	Events    uint64        // events processed
	SimTime   time.Duration // virtual time at the end
	Wall      time.Duration // real time the run took
	// BytesPerProvider is the heap in use after the providers were built,
	// less before, per provider: the index and the markets included. It is
	// measured only when the run had the heap to itself (0 otherwise).
	BytesPerProvider float64

	Jobs       []JobRecord
	Placements []PlacementRecord
	Providers  []ProviderRecord
	Classes    []ClassRecord
	Series     []Sample
	// Losses are the leases that died with their provider, one per lease
	// live at a crash.
	Losses []LossRecord
	// DeadAsks counts the offer requests and leases that reached a
	// provider down: what stale discovery records cost.
	DeadAsks uint64
}

// JobRecord is one job.
type JobRecord struct {
	ID          int
	Requester   int
	Submitted   time.Duration
	Deadline    time.Duration // Submitted plus its placement timeout: a job never placed waited until then (CensoredWait)
	Placed      time.Duration // first lease accepted; -1 if never
	Ended       time.Duration // -1 if it had not ended when the run stopped
	State       string        // succeeded, failed, cancelled, or placing/running when cut off
	CPUMillis   uint64
	MemoryBytes uint64
	Run         time.Duration // the run time drawn for it
	Constrained bool          // it had a hard constraint
	Epochs      uint64        // leases its slot took: 1 + reschedules
	Class       string        // class of the provider of its last lease; "" if none
	CPUSeconds  float64       // CPU-seconds billed, over every lease it held
	Paid        float64       // what the customer paid, in currency units
	Subsidy     float64       // what public funds paid on top
	Currency    string
	Reason      string // why it failed
	// Code is the reason's code, as scheduler.Reason names it ("run
	// failed", "leases lost", "not placed"), for a job that ended other
	// than succeeded; empty otherwise.
	Code string
	// CapacityWait is how long the job waited for capacity, over all its
	// placements: from a status saying it waits (a round failed, a fitting
	// provider being full) to the next status that does not.
	CapacityWait time.Duration
}

// Wait is the placement latency: submission to first lease accepted.
func (j *JobRecord) Wait() time.Duration { return j.Placed - j.Submitted }

// CensoredWait is the job's wait whether it was placed or not: Wait for a
// job placed; for one never placed, the time from its submission to its
// deadline, or to end (the run's end) if that came first, with censored
// true. A customer whose job was never placed waited at least that long: a
// right-censored observation, which percentiles over every job count
// rather than leave out (leaving them out makes a scheduler that drops
// jobs look fast). A Deadline of 0 means unknown: end is used.
func (j *JobRecord) CensoredWait(end time.Duration) (wait time.Duration, censored bool) {
	if j.Placed >= 0 {
		return j.Wait(), false
	}
	at := end
	if j.Deadline > 0 && j.Deadline < at {
		at = j.Deadline
	}
	return max(0, at-j.Submitted), true
}

// Lost says whether the job did not succeed for a reason other than its own
// run's failure: not placed in time, too many leases lost, or still placing
// or running when the run stopped. It is what a fault may cost a customer.
func (j *JobRecord) Lost() bool {
	return j.State != scheduler.JobSucceeded.String() && j.Code != scheduler.ReasonRunFailed.String()
}

// LossRecord is one lease that died with its provider. Times are since the
// start of the run; -1 means it never came.
type LossRecord struct {
	Job      int
	Epoch    uint64
	Provider int
	Crashed  time.Duration // the provider crashed
	Detected time.Duration // the requester declared the lease lost
	Replaced time.Duration // the job's next lease was accepted
	// ByRestart says the requester learnt of it from the provider back up
	// (CODE_RUN_LOST on a watch), not from missed heartbeats.
	ByRestart bool
}

// Detection is how long the requester took to declare the lease lost.
func (l *LossRecord) Detection() time.Duration { return l.Detected - l.Crashed }

// Replacement is the time from the loss declared to the next lease
// accepted.
func (l *LossRecord) Replacement() time.Duration { return l.Replaced - l.Detected }

// PlacementRecord is one lease accepted.
type PlacementRecord struct {
	Job      int
	Epoch    uint64
	Provider int
	Class    string
	Region   string
	At       time.Duration // lease accepted
	Latency  time.Duration // since the job was submitted or its slot requeued
	Quoted   float64       // the offer's total, in currency units
	Currency string
}

// ProviderRecord is one provider at the end of the run.
type ProviderRecord struct {
	ID          int
	Class       string
	Region      string
	Operator    string
	CPUMillis   uint64 // capacity
	Leases      int    // leases committed
	Crashes     int
	DeadAsks    int     // offer requests and leases that reached it while it was down
	BusyCPUSecs float64 // CPU-seconds committed to leases
	// Utilisation is BusyCPUSecs over capacity times the time it was up.
	Utilisation float64
	Revenue     float64 // paid by customers
	Subsidy     float64 // paid by public funds, on its prices and its tariff
	Currency    string
	// UpSecs is the time it was up, in seconds.
	UpSecs float64
	// Wholesale is, for a site (Class.Wholesale), what its retailers paid
	// it for their slices, public funds' share of the tariff being in
	// Subsidy; for a retailer, what it paid for its slice.
	Wholesale float64
	// Retailer says it sells a slice of site Site (a provider's ID): its
	// leases run on the site's hardware, and its capacity is its slice.
	Retailer bool
	Site     int
}

// ClassRecord sums a class of providers.
type ClassRecord struct {
	Class       string
	Providers   int
	Leases      int
	Utilisation float64 // busy CPU-seconds over capacity-seconds up
	Revenue     float64
	Subsidy     float64
	Currency    string
	// SubsidyRate is the class's subsidy: the share of its price public
	// funds pay (Class.Subsidy); above 0, its providers are public sites.
	SubsidyRate float64
	Wholesale   float64 // the sum of its providers' Wholesale
	// Site is, for a class of retailers, the class of the sites whose
	// slices they sell; empty for others.
	Site string
}

// Sample is one point of the time series.
type Sample struct {
	At          time.Duration
	Placing     int     // jobs waiting for a lease
	Running     int     // jobs with every slot leased
	Done        int     // jobs ended so far
	Up          int     // providers up
	Utilisation float64 // committed CPU over the CPU of providers up
	// ByClass is the utilisation of each class, in the order of
	// Result.Classes.
	ByClass []float64
	// Public is the utilisation of the public sites' hardware (subsidised
	// classes), their retailers' slices included; NaN if there is none.
	Public float64
}
