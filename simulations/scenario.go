package simulations

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// Scenario is one simulated federation and its workload: the parsed,
// validated form of a scenario file (see ParseScenario and
// docs/SIMULATOR.md). Every model is plain config; a zero optional field means
// the default named in its comment.
type Scenario struct {
	Name        string
	Description string
	// Seed is the default seed of a run (--seed overrides it). Default 1.
	Seed uint64
	// Runs is how many seeds `sim run` and `sim sweep` run by default
	// (--runs overrides it); 0 leaves it to the command (10).
	Runs int
	// Duration is the simulated time during which jobs arrive. The run then
	// goes on until every job has ended, or Drain has passed.
	Duration time.Duration
	// Drain bounds the time after Duration given to jobs still running.
	// Default 1h.
	Drain time.Duration
	// SampleEvery is the step of the time series. Default Duration/200,
	// at least 1s.
	SampleEvery time.Duration

	Network    Network
	Discovery  Discovery
	Scheduler  Scheduler
	Requesters Requesters
	// Classes are the kinds of provider, each with its count, place, size,
	// prices and churn. At least one.
	Classes  []Class
	Workload Workload
	// Variants run the same scenario with overrides, side by side (for
	// example a closed and an open federation, or one policy each). None
	// means one run of the scenario as written, named after it.
	Variants []Variant
}

// Network is the latency model: regions, the round trip between each pair,
// jitter and loss.
type Network struct {
	// Regions are the region names, in the order of the rows of RTT.
	Regions []string
	// RTT[i][j] is the round trip between regions i and j; the matrix is
	// square and symmetric, its diagonal the round trip inside a region.
	RTT [][]time.Duration
	// Jitter adds to each one-way delay a uniform random part of up to this
	// fraction of it. Default 0.
	Jitter float64
	// Loss is the probability that a message is lost. Default 0.
	Loss float64
}

// Discovery is the DHT model: provider records by facet and shard, found by
// lookups walked as go-libp2p-kad-dht walks them (kad.go), cached by each
// requester by the daemon's rules.
type Discovery struct {
	// K, Alpha and Beta are kad-dht's bucket size (and the replication of
	// records), its concurrency and its resiliency. Defaults 20, 10 and 3,
	// kad-dht's.
	K, Alpha, Beta int
	// Requesters says whether the requesters are DHT servers ("server": in
	// the routing tables, holding records as any server) or clients
	// ("client", the default: a node of role requester, SPEC 4.1).
	Requesters string
	// HopService is a DHT server's time to answer one GET_PROVIDERS, beyond
	// the round trip. Default 0.
	HopService Cost
	// Dial is the time a new connection costs before its first exchange
	// (handshake, security, muxer, identify), beyond DialRoundTrips round
	// trips; it is paid by a requester's first exchange with a peer it is
	// not connected to. Defaults 0 and 2 (QUIC's handshake, then identify).
	Dial           Cost
	DialRoundTrips int
	// RecordTTL is how long a departed provider's records stay findable.
	// Default scheduler.DefaultProvideValidity (10m), the daemon's provider
	// record validity.
	RecordTTL time.Duration
	// CacheTTL is how long a requester reuses a lookup's answer. Default
	// scheduler.DefaultCandidateTTL (10s), as the daemon.
	CacheTTL time.Duration
}

// DHT modes of the requesters.
const (
	ModeClient = "client"
	ModeServer = "server"
)

// Scheduler is the requesters' placement config, handed to the scheduler as
// is; PolicyName is resolved with scheduler.PolicyByName.
type Scheduler struct {
	Config     scheduler.Config // Policy is set from PolicyName
	PolicyName string           // default "balanced"
	// Placement is who places the jobs: PlacementCuivre (default), each
	// requester's scheduler.Placement as in the daemon, or a baseline to
	// compare it with: PlacementOmniscient, PlacementRandom or
	// PlacementSparrow (baseline.go, docs/SIMULATOR.md).
	Placement string
	// DeadFor is how long a requester leaves a provider that did not answer
	// an offer request or a lease out of the candidates of all its
	// placements, as the daemon's requester does. Default DefaultDeadFor.
	DeadFor time.Duration
}

// DefaultDeadFor is how long a requester's negative cache keeps a provider
// that did not answer: the daemon's.
const DefaultDeadFor = scheduler.DefaultDeadFor

// Requesters are the nodes customers submit jobs through; each job goes to
// one of them at random.
type Requesters struct {
	Count   int // default 1
	Regions Weights
	// Sync is the time a commit of the requester's store takes (its fsync),
	// and BatchDelay how long a write waits for others to share its commit
	// (bbolt's batches; the daemon's store.MaxBatchDelay, 2 ms). A requester
	// writes each job's record at its submission, and again before each of
	// its leases leaves (the daemon's order): a lease waits for that write.
	// Defaults 0 and 2 ms.
	Sync       Cost
	BatchDelay time.Duration
	// Overhead is the requester's own work on a placement's path that no
	// exchange measures (its placement's steps, the lease's signature, its
	// goroutines' hand-offs), paid before each lease leaves. Default 0.
	Overhead Cost
}

// Cost is the time a piece of work takes: Mean; or with Sigma a lognormal
// draw of that mean and shape; or, with Quantiles, a draw from the
// distribution they cut into equal shares (deciles of measured times, say,
// interpolated between), as measured times with their tails are.
type Cost struct {
	Mean      time.Duration
	Sigma     float64
	Quantiles []time.Duration
}

// QuantileCost is the Cost drawn from quantiles that cut a distribution
// into equal shares, lowest first; its Mean is theirs, interpolated.
func QuantileCost(q []time.Duration) Cost {
	c := Cost{Quantiles: q}
	if len(q) == 1 {
		c.Mean = q[0]
	}
	if len(q) > 1 {
		var sum time.Duration
		for i := 1; i < len(q); i++ {
			sum += (q[i-1] + q[i]) / 2
		}
		c.Mean = sum / time.Duration(len(q)-1)
	}
	return c
}

// isZero says whether the cost is nothing at all.
func (c Cost) isZero() bool { return c.Mean == 0 && len(c.Quantiles) == 0 }

// Weight is a name with a relative weight.
type Weight struct {
	Name   string
	Weight float64
}

// Weights is a discrete distribution over names. Empty means uniform over
// every region (for regions).
type Weights []Weight

// Class is a kind of provider.
type Class struct {
	Name  string
	Count int
	// Regions places the class's providers. Default: uniform over every
	// region.
	Regions Weights
	// Operators is how many operators share the class's providers (round
	// robin); 0 means one operator per provider. The operator is the label
	// that replicas and spread count on.
	Operators int
	// Labels are set on every provider of the class, besides region and
	// operator, which are filled in.
	Labels scheduler.Labels
	// Capacity is what each provider of the class sells.
	Capacity scheduler.Resources
	// Pricing is what each provider charges before subsidy.
	Pricing scheduler.PricePolicy
	// Subsidy is the part of the price paid by public funds, in [0, 1):
	// customers are quoted Pricing times 1-Subsidy, and the provider earns
	// the rest from the subsidy. Default 0.
	Subsidy float64
	// ServiceTime is how long the provider takes to answer an offer request
	// (its quote signed, the stream's work), and LeaseTime a lease (checked,
	// committed and synced). A provider answers them one at a time, in the
	// order they were sent. Default 0, and ServiceTime for LeaseTime.
	ServiceTime Cost
	LeaseTime   Cost
	// StartDelay is the time from a lease accepted to the run started
	// (module fetch and compile). Default 0.
	StartDelay time.Duration
	// Churn makes providers leave and come back. Zero means they stay.
	Churn Churn
	// Wholesale, if not nil, makes each provider of the class a site that
	// rents slices of its hardware to retailers at a tariff (SPEC 4.5,
	// 6.7). Nil: the class sells only its own retail.
	Wholesale *Wholesale
}

// Wholesale is a site's wholesale offer: its tariff, the share of its
// capacity it grants in slices, and the retailers that hold them. Each
// provider of the class grants, at the start of the run and until the end
// of the arrivals (Scenario.Duration), one slice to each of its retailers
// through its own scheduler.Market (Grant): every retailer's leases are
// then made on the site's market as the grantee's, and bounded by its
// slice; the site's own retail never uses a slice.
type Wholesale struct {
	// Tariff is what a slice costs per second of its resources, before
	// subsidy: the class's Subsidy is paid by public funds on it as on the
	// site's retail prices. A slice costs its resources at the tariff for
	// its whole period, whether its retailer runs anything on it or not
	// (SPEC 4.5).
	Tariff scheduler.Price
	// Share is the share of the site's capacity (each dimension) granted
	// in slices, split equally among its retailers. Default 1.
	Share float64
	// Retail says whether the site keeps selling, as a provider of its
	// own, the capacity it has not sliced. Default false: it sells only
	// slices, and announces no capacity of its own.
	Retail bool
	// Retailers are the kinds of retailer; each site has Count of each,
	// each its own operator, holding one slice. At least one.
	Retailers []Retailer
}

// Retailer is a kind of retailer of a site's slices: a node of its own
// operator in the site's region, with the site's labels, that sells its
// slice under its own prices. Its jobs run on the site's hardware.
type Retailer struct {
	Name    string
	Count   int                   // retailers of this kind per site; default 1
	Pricing scheduler.PricePolicy // what it charges its customers
}

// RetailerCount is how many retailers each site of w has.
func (w *Wholesale) RetailerCount() int {
	n := 0
	for _, r := range w.Retailers {
		n += r.Count
	}
	return n
}

// Slice is the slice each retailer of a site of capacity c holds: the
// Share of c split equally among the retailers, rounded down.
func (w *Wholesale) Slice(c scheduler.Resources) scheduler.Resources {
	n := float64(max(1, w.RetailerCount()))
	part := func(x uint64) uint64 { return uint64(math.Floor(float64(x) * w.Share / n)) }
	return scheduler.Resources{CPUMillis: part(c.CPUMillis), MemoryBytes: part(c.MemoryBytes), ScratchBytes: part(c.ScratchBytes)}
}

// Churn is a provider's sessions: it runs for an exponential time of mean
// Session, crashes (its leases die with it), and comes back empty after a
// downtime: a share Fast of the restarts are fast, uniform on
// [0, 2*FastDowntime] (a process restarted at once by its supervisor), the
// rest exponential of mean Downtime.
type Churn struct {
	Session      time.Duration
	Downtime     time.Duration // default Session/10
	Fast         float64       // share of fast restarts, in [0, 1]; default 0
	FastDowntime time.Duration // mean downtime of a fast restart; default 500ms
}

// DefaultFastDowntime is the mean downtime of a fast restart: uniform on
// [0, 1s], the time a supervisor takes to start a killed daemon again.
const DefaultFastDowntime = 500 * time.Millisecond

// DefaultBatchDelay is how long a requester's write waits for others to
// share its commit: the daemon's store.MaxBatchDelay.
const DefaultBatchDelay = 2 * time.Millisecond

// Workload is the jobs customers submit.
type Workload struct {
	// Jobs is how many jobs arrive at most. 0 means as many as Duration
	// lets arrive.
	Jobs int
	// Arrivals is the arrival process; ignored when Trace is set.
	Arrivals Arrivals
	// Trace replays jobs from a CSV file instead of drawing them.
	Trace []TraceJob
	// Sizes is the mix of job sizes. At least one unless Trace is set.
	Sizes []Size
	// Duration is how long a run lasts.
	Duration Dist
	// Constraints is the mix of hard constraints; a job draws one entry
	// (whose Selectors may be empty). Default: no constraint.
	Constraints []ConstraintMix
	// Ceilings is the mix of price ceilings; a job draws one entry. Default:
	// no ceiling.
	Ceilings []Ceiling
	// TimeoutFactor sets a job's timeout to its run time times this, rounded
	// up to a second: what a customer asks for, and is quoted on. Default 2.
	TimeoutFactor float64
	// FailureRate is the probability that a run exits non-zero. Default 0.
	FailureRate float64
}

// Arrivals is the arrival process of jobs.
type Arrivals struct {
	// Process is "poisson" (default); "bursty": Poisson at Rate, times
	// BurstFactor during bursts of mean length BurstOn every mean BurstOff;
	// or "steady": one arrival every 1/Rate exactly, as a load generator
	// submits.
	Process string
	// Rate is the mean number of arrivals per second. Either Rate or Load
	// is set.
	Rate float64
	// Load sets Rate so that the mean demand is this fraction of the
	// federation's CPU: load * capacity / (mean CPU * mean run time).
	Load        float64
	BurstFactor float64       // default 5
	BurstOn     time.Duration // default 1m
	BurstOff    time.Duration // default 10m
}

// TraceJob is one job of a trace.
type TraceJob struct {
	At          time.Duration // since the start
	Resources   scheduler.Resources
	Run         time.Duration
	Constraints []scheduler.Selector
	MaxPrice    scheduler.Amount // empty currency: no ceiling
}

// Size is one entry of the mix of job sizes.
type Size struct {
	Weight    float64
	Resources scheduler.Resources
}

// Dist is a distribution of durations: "fixed" at Mean, "exponential" of mean
// Mean, "uniform" on [0, 2*Mean], or "lognormal" of mean Mean and shape Sigma.
type Dist struct {
	Kind  string // default "exponential"
	Mean  time.Duration
	Sigma float64 // lognormal only; default 1
}

// ConstraintMix is one entry of the mix of constraints.
type ConstraintMix struct {
	Weight    float64
	Selectors []scheduler.Selector
}

// Ceiling is one entry of the mix of price ceilings: a job may pay at most
// PerCPUHour for each CPU for each hour of its timeout. A zero Nanos with an
// empty currency means no ceiling.
type Ceiling struct {
	Weight     float64
	PerCPUHour scheduler.Amount
}

// Variant is one side of a comparison: the scenario with some classes
// left out, another policy, another d, another load or another placement
// mechanism (a baseline).
type Variant struct {
	Name      string
	Exclude   []string // classes left out
	Policy    string   // default: the scenario's
	D         int      // default: the scenario's
	Placement string   // default: the scenario's (Scheduler.Placement)
	// Load replaces Workload.Arrivals.Load (and the rate it sets); 0 keeps
	// the scenario's.
	Load float64
	// Set are the scenario keys the variant sets (a path as `sim run --set`
	// takes it, and its value as YAML), and scenario the scenario with them
	// set, parsed and checked as a whole, that the variant runs instead.
	Set      []VariantSet
	scenario *Scenario
}

// VariantSet is one key a variant sets: a path, as `sim run --set` and `sim
// sweep --param` take it (classes.sovereign.capacity.cpu), and a value.
type VariantSet struct {
	Path, Value string
	keys        []pathKey
	line        int
}

// KeepVariants leaves in sc only the variants named, in the scenario's
// order; none named keeps them all. A name that is not a variant of the
// scenario is an error that lists those there are.
func (sc *Scenario) KeepVariants(names []string) error {
	if len(names) == 0 {
		return nil
	}
	var have []string
	for _, v := range sc.Variants {
		have = append(have, v.Name)
	}
	for _, n := range names {
		if !slices.Contains(have, n) {
			if len(have) == 0 {
				return fmt.Errorf("variant %q: scenario %s has no variants", n, sc.Name)
			}
			return fmt.Errorf("variant %q: scenario %s has %s", n, sc.Name, strings.Join(have, ", "))
		}
	}
	sc.Variants = slices.DeleteFunc(sc.Variants, func(v Variant) bool { return !slices.Contains(names, v.Name) })
	return nil
}
