package scheduler

import (
	"cmp"
	"fmt"
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
// range of totals among the offers being ranked.
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

// PriceScorer prefers the cheapest offer: 1000 for the lowest total, 0 for the
// highest, linear between.
type PriceScorer struct{}

func (PriceScorer) Name() string { return "price" }
func (PriceScorer) Score(o *Offer, c *RankContext) int64 {
	if c.MaxTotal == c.MinTotal {
		return 1000
	}
	return int64((c.MaxTotal - o.Total.Nanos) * 1000 / (c.MaxTotal - c.MinTotal))
}

// LoadScorer prefers the least loaded provider (spreads load).
type LoadScorer struct{}

func (LoadScorer) Name() string { return "load" }
func (LoadScorer) Score(o *Offer, _ *RankContext) int64 {
	return 1000 - int64(min(o.LoadPermille, 1000))
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

// ranked is an offer with its static score; spread is added at assignment.
type ranked struct {
	offer *Offer
	score int64
}

// rank scores offers under a policy and sorts them best first, ties in an
// order shuffled from rng. The result points into offers.
func rank(offers []Offer, j *Job, p Policy, rng *rand.Rand, buf []ranked) []ranked {
	out := buf[:0]
	if len(offers) == 0 {
		return out
	}
	c := RankContext{Job: j, MinTotal: offers[0].Total.Nanos, MaxTotal: offers[0].Total.Nanos}
	for i := range offers {
		c.MinTotal = min(c.MinTotal, offers[i].Total.Nanos)
		c.MaxTotal = max(c.MaxTotal, offers[i].Total.Nanos)
	}
	for i := range offers {
		o := &offers[i]
		var s int64
		for _, t := range p.Terms {
			s += t.Weight * t.Scorer.Score(o, &c)
		}
		if len(j.Affinities) > 0 {
			s += AffinityScorer{}.Score(o, &c)
		}
		out = append(out, ranked{o, s})
	}
	rng.Shuffle(len(out), func(i, k int) { out[i], out[k] = out[k], out[i] })
	slices.SortStableFunc(out, func(a, b ranked) int { return cmp.Compare(b.score, a.score) })
	return out
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
