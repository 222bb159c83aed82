package scheduler

import (
	"cmp"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
)

// Ranking follows Nomad's iterator stack, flattened: feasible -> score -> limit.
// Feasibility is checked when an offer arrives (Placement.feasible); scoring is a
// weighted sum of small scorers; the limit is the number of slots to fill. Ties
// are broken by a shuffle seeded from the placement's source, never by map or
// arrival order, so a post-mortem can replay a decision from its seed.

// Scorer scores one offer among others, from -1000 (worst) to 1000 (best).
type Scorer interface {
	Name() string
	Score(o *Offer, c *RankContext) int64
}

// RankContext is what a scorer may know besides the offer: the job, and the
// range of totals among the offers being ranked (PriceScorer uses the lowest).
type RankContext struct {
	Job                *Job
	MinTotal, MaxTotal uint64
}

// Term is a scorer with its weight in a policy.
type Term struct {
	Scorer Scorer
	Weight int64
}

// Policy ranks offers by the weighted sum of its terms. The job's affinities
// always count too, with weight 1, when it has any.
type Policy struct {
	Name  string
	Terms []Term
}

// The ranking policies.
var (
	Cheapest    = Policy{Name: "cheapest", Terms: []Term{{PriceScorer{}, 1}}}
	LeastLoaded = Policy{Name: "least-loaded", Terms: []Term{{LoadScorer{}, 1}}}
	BestFit     = Policy{Name: "best-fit", Terms: []Term{{FitScorer{}, 1}}}
	Balanced    = Policy{Name: "balanced", Terms: []Term{{PriceScorer{}, 1}, {LoadScorer{}, 1}}}
)

// Policies lists the named policies.
func Policies() []Policy { return []Policy{Balanced, Cheapest, LeastLoaded, BestFit} }

// PolicyByName returns a named policy.
func PolicyByName(name string) (Policy, error) {
	var names []string
	for _, p := range Policies() {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Policy{}, fmt.Errorf("unknown ranking policy %q: use one of %s", name, strings.Join(names, ", "))
}

// PriceScorer prefers the cheapest offer. It scores an offer by the ratio of
// the lowest total among the offers being ranked to its own, 1000 x min /
// total, rounded down: the cheapest scores 1000, an offer 1% dearer 990, one
// twice as dear 500, ten times as dear 100, and none less than 0 (a free
// offer scores priced ones 0).
//
// The ratio is scale-free: the score says how much dearer an offer is than the
// cheapest, whatever the currency, the job's size, or how far apart the other
// offers are. That makes it a share, as load is, and the two can be weighed
// against each other: near the cheapest, 1% dearer costs what 1 percentage
// point of load (10 permille) does, and under Balanced an offer twice as dear
// wins only if its provider is more than 500 permille less loaded. Rescaling
// price between the cheapest and the dearest offer ranked (min-max), as this
// scorer once did, put any two offers 1000 apart, a cent's difference as much
// as a tenfold one, so that with d = 2 price always outweighed load
// (docs/RATIONALE.md). Offers within a point of each other tie, and the
// seeded shuffle orders them.
type PriceScorer struct{}

func (PriceScorer) Name() string { return "price" }
func (PriceScorer) Score(o *Offer, c *RankContext) int64 {
	if o.Total.Nanos <= c.MinTotal {
		return 1000
	}
	// 1000 x min overflows a uint64 past 18 million of a currency, so the
	// product takes 128 bits; min < total keeps the quotient below 1000.
	hi, lo := bits.Mul64(c.MinTotal, 1000)
	q, _ := bits.Div64(hi, lo, o.Total.Nanos)
	return int64(q)
}

// LoadScorer prefers the least loaded provider (spreads load): 1000 minus
// its load before the job (loadBefore), in permille.
type LoadScorer struct{}

func (LoadScorer) Name() string { return "load" }
func (LoadScorer) Score(o *Offer, _ *RankContext) int64 {
	return 1000 - loadBefore(o)
}

// loadBefore is the share of a provider's capacity (the scarcer of CPU and
// memory) taken before the job, in permille: the offer's load, which counts
// the job, less the job's own share of the capacity the offer says it sells
// (exact when the same resource is the scarcer before and after). Ranked by
// the load after the job, a large provider always looks emptier, since a
// job weighs less on it whatever it already runs: the least loaded would be
// the largest, and work would flow to large providers beyond their share of
// capacity. An offer that does not say its capacity is ranked by its load.
func loadBefore(o *Offer) int64 {
	load := int64(min(o.LoadPermille, 1000))
	c := o.Capacity
	if c.CPUMillis == 0 || c.MemoryBytes == 0 {
		return load
	}
	share := func(used, total uint64) int64 {
		hi, lo := bits.Mul64(min(used, total), 1000)
		q, _ := bits.Div64(hi, lo, total)
		return int64(q)
	}
	return max(0, load-max(share(o.Resources.CPUMillis, c.CPUMillis), share(o.Resources.MemoryBytes, c.MemoryBytes)))
}

// FitScorer prefers the most loaded provider that still fits (packs bins, so
// others stay free for large jobs).
type FitScorer struct{}

func (FitScorer) Name() string { return "fit" }
func (FitScorer) Score(o *Offer, _ *RankContext) int64 {
	return int64(min(o.LoadPermille, 1000))
}

// AffinityScorer adds the weights of the job's affinities the offer's labels
// satisfy, scaled to -1000..1000.
type AffinityScorer struct{}

func (AffinityScorer) Name() string { return "affinity" }
func (AffinityScorer) Score(o *Offer, c *RankContext) int64 {
	var s int64
	for _, a := range c.Job.Affinities {
		if a.Matches(o.Labels) {
			s += int64(a.Weight) * 10
		}
	}
	return max(-1000, min(1000, s))
}

// Score is one scorer's part in how an offer ranked, kept as Nomad keeps its
// per-scorer allocation metrics, so that an inspection can say why the winner
// won and not only why the others lost. Value counts Weight times in the
// offer's total.
type Score struct {
	Scorer string // "price", "load", "fit", "affinity", "reschedule", "spread", or a custom scorer's name
	Weight int64  // the term's weight in the policy; 1 for affinity, reschedule and spread
	Value  int64  // -1000 (worst) to 1000 (best); spread: the bonus of its Spreads, up to 10 x their weights
}

// Scores are the parts of one offer's rank: the policy's terms in order, then
// affinity when the job has affinities, reschedule once a provider lost a
// lease of the job, and spread when the job spreads.
type Scores []Score

// Total is the score the offer was ranked by: the sum of each Weight x Value.
func (s Scores) Total() int64 {
	var t int64
	for _, x := range s {
		t += x.Weight * x.Value
	}
	return t
}

// String reads "1500 (price 1000, load 500)", a weight other than 1 after its
// value ("price 1000x2"); "" for no scores.
func (s Scores) String() string {
	if len(s) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d (", s.Total())
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", x.Scorer, x.Value)
		if x.Weight != 1 {
			fmt.Fprintf(&b, "x%d", x.Weight)
		}
	}
	b.WriteByte(')')
	return b.String()
}

// LostLeasePenalty is what a provider that lost a lease of a job loses on
// every later ranking for that job, like Nomad's node-reschedule penalty: it
// scores -LostLeasePenalty on the reschedule term (weight 1), the others 0.
// 1000 is the whole range of one scorer at weight 1: such a provider is still
// asked, and still leased when it is the only fit, or when it beats the other
// offers by more than that (under Balanced, being half their price and 500
// permille less loaded only ties); against an equal offer it loses.
const LostLeasePenalty = 1000

// rescheduleScorer is the name of the lost-lease penalty's term.
const rescheduleScorer = "reschedule"

// ranked is an offer, by its index, with its static score; spread is added at
// assignment.
type ranked struct {
	score int64
	at    int
}

// ranking is offers ranked best first, with each scorer's score of each. Its
// buffers serve again for the next ranking, but for the scores once kept.
type ranking struct {
	ctx    RankContext
	order  []ranked // best first
	scores Scores   // offer i's are scores[i*stride:][:stride]
	stride int
	spread bool // the last score of each offer is spread's, 0 until assignment
}

// of returns the scores of offer i.
func (r *ranking) of(i int) Scores {
	return r.scores[i*r.stride : (i+1)*r.stride : (i+1)*r.stride]
}

// keep hands the scores of this ranking over for good: the next ranking
// writes its own elsewhere.
func (r *ranking) keep() { r.scores = nil }

// rank scores offers under a policy, less LostLeasePenalty for the providers
// penalised (sorted), and orders them best first, ties in an order shuffled
// from rng.
func (r *ranking) rank(offers []Offer, j *Job, p Policy, penalised []string, rng *rand.Rand) {
	r.order = r.order[:0]
	if len(offers) == 0 {
		return
	}
	r.ctx = RankContext{Job: j, MinTotal: offers[0].Total.Nanos, MaxTotal: offers[0].Total.Nanos}
	c := &r.ctx
	for i := range offers {
		c.MinTotal = min(c.MinTotal, offers[i].Total.Nanos)
		c.MaxTotal = max(c.MaxTotal, offers[i].Total.Nanos)
	}
	affinity, reschedule := len(j.Affinities) > 0, len(penalised) > 0
	r.spread = len(j.Spread) > 0
	r.stride = len(p.Terms) + b2i(affinity) + b2i(reschedule) + b2i(r.spread)
	if n := len(offers) * r.stride; cap(r.scores) < n {
		r.scores = make(Scores, n)
	} else {
		r.scores = r.scores[:n]
	}
	r.order = slices.Grow(r.order, len(offers))
	for k, t := range p.Terms {
		r.scores[k].Scorer = t.Scorer.Name() // the names every offer's scores copy
	}
	for i := range offers {
		o := &offers[i]
		sc := r.scores[i*r.stride : (i+1)*r.stride]
		var s int64
		for k, t := range p.Terms {
			v := t.Scorer.Score(o, c)
			sc[k] = Score{r.scores[k].Scorer, t.Weight, v}
			s += t.Weight * v
		}
		k := len(p.Terms)
		if affinity {
			v := AffinityScorer{}.Score(o, c)
			sc[k] = Score{AffinityScorer{}.Name(), 1, v}
			s += v
			k++
		}
		if reschedule {
			var v int64
			if _, lost := slices.BinarySearch(penalised, o.Provider); lost {
				v = -LostLeasePenalty
			}
			sc[k] = Score{rescheduleScorer, 1, v}
			s += v
			k++
		}
		if r.spread {
			sc[k] = Score{"spread", 1, 0}
		}
		r.order = append(r.order, ranked{s, i})
	}
	rng.Shuffle(len(r.order), func(i, k int) { r.order[i], r.order[k] = r.order[k], r.order[i] })
	slices.SortStableFunc(r.order, func(a, b ranked) int { return cmp.Compare(b.score, a.score) })
}

// setSpread records the spread bonus an offer was last weighed with.
func (r *ranking) setSpread(i int, v int64) {
	if r.spread {
		r.scores[(i+1)*r.stride-1].Value = v
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// spreadScore is the bonus an offer gets for a value of a spread attribute that
// the job's placed instances use little: weight x 10 x (1 - used/slots).
func spreadScore(o *Offer, j *Job, used []valueCount) int64 {
	var s int64
	slots := int64(j.Slots())
	for _, sp := range j.Spread {
		v := attribute(o, sp.Attribute)
		n := int64(0)
		for _, u := range used {
			if u.attr == sp.Attribute && u.value == v {
				n = int64(u.n)
			}
		}
		s += int64(sp.Weight) * 10 * (slots - n) / slots
	}
	return s
}

type valueCount struct {
	attr, value string
	n           int
}

// attribute returns the value of a label of an offer's provider; the operator
// of a provider without an operator label is the provider itself.
func attribute(o *Offer, key string) string {
	if v, ok := o.Labels.Get(key); ok {
		return v
	}
	if key == LabelOperator {
		return "peer:" + o.Provider
	}
	return ""
}
