package scheduler

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cuivre/cuivre/protocol/pb"
)

// TestPolicies: on the same offers the policies must rank differently, and
// Balanced must weigh price against load, so that either can win.
func TestPolicies(t *testing.T) {
	offer := func(name string, total uint64, load uint32, region string) Offer {
		return Offer{Provider: name, Total: Amount{"EUR", total}, LoadPermille: load, Labels: NewLabels(Label{"region", region})}
	}
	// Each policy has its own winner: price, load, fit and both.
	fourWays := []Offer{
		offer("cheap-busy", 100, 900, "de-fra"), // price 1000, load 100, fit 900
		offer("dear-idle", 300, 50, "de-fra"),   // price 333, load 950, fit 50
		offer("fair-light", 110, 300, "de-fra"), // price 909, load 700, fit 300
		offer("mid-full", 200, 950, "fr-par"),   // price 500, load 50, fit 950
	}
	// 5% dearer, 600 permille less loaded.
	slightlyDearer := []Offer{
		offer("cheap-busy", 100, 800, "de-fra"),
		offer("dearer-idle", 105, 200, "de-fra"),
	}
	// Three times the price, 500 permille less loaded.
	muchDearer := []Offer{
		offer("cheap-busy", 100, 600, "de-fra"),
		offer("dear-idle", 300, 100, "de-fra"),
	}
	job := &Job{Count: 1, Replicas: 1}
	affine := &Job{Count: 1, Replicas: 1, Affinities: []Selector{{Key: "region", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"fr-par"}, Weight: 100}}}
	tests := []struct {
		name   string
		offers []Offer
		policy Policy
		job    *Job
		want   string // the winner, and its scores
	}{
		{"four ways", fourWays, Cheapest, job, "cheap-busy 1000 (price 1000)"},
		{"four ways", fourWays, LeastLoaded, job, "dear-idle 950 (load 950)"},
		{"four ways", fourWays, BestFit, job, "mid-full 950 (fit 950)"},
		{"four ways", fourWays, Balanced, job, "fair-light 1609 (price 909, load 700)"},
		// Affinity (1000) outweighs being half the price (1000 against 500).
		{"four ways", fourWays, Cheapest, affine, "mid-full 1500 (price 500, affinity 1000)"},
		// Balanced against cheap-busy's 1200 (price 1000, load 200).
		{"slightly dearer", slightlyDearer, Balanced, job, "dearer-idle 1752 (price 952, load 800)"},
		{"slightly dearer", slightlyDearer, Cheapest, job, "cheap-busy 1000 (price 1000)"},
		// Balanced against dear-idle's 1233 (price 333, load 900).
		{"much dearer", muchDearer, Balanced, job, "cheap-busy 1400 (price 1000, load 400)"},
		{"much dearer", muchDearer, LeastLoaded, job, "dear-idle 900 (load 900)"},
	}
	for _, tt := range tests {
		var r ranking
		r.rank(tt.offers, tt.job, tt.policy, nil, rand.New(rand.NewChaCha8([32]byte{})))
		best := r.order[0]
		if got := tt.offers[best.at].Provider + " " + r.of(best.at).String(); got != tt.want {
			t.Errorf("%s, %s (affinities %d): best is %s, want %s", tt.name, tt.policy.Name, len(tt.job.Affinities), got, tt.want)
		}
		if len(r.order) > 1 && r.order[1].score == best.score {
			t.Errorf("%s, %s: the best ties with %s: a shuffle decided", tt.name, tt.policy.Name, tt.offers[r.order[1].at].Provider)
		}
		for _, x := range r.order {
			if sc := r.of(x.at); sc.Total() != x.score || len(sc) != len(tt.policy.Terms)+len(tt.job.Affinities) {
				t.Errorf("%s, %s: %s ranked %d, its scores %v", tt.name, tt.policy.Name, tt.offers[x.at].Provider, x.score, sc)
			}
		}
	}
}

// TestPriceScore: price scores the ratio of the cheapest total to the offer's,
// whatever the scale of the totals.
func TestPriceScore(t *testing.T) {
	tests := []struct {
		min, total uint64
		want       int64
	}{
		{100, 100, 1000},
		{1000, 1010, 990}, // 1% dearer
		{100, 200, 500},   // twice as dear
		{100, 1000, 100},
		{100, 101, 990},
		{0, 0, 1000},
		{0, 100, 0}, // against a free offer
		{1 << 62, 1 << 63, 500},
		{1<<64 - 2, 1<<64 - 1, 999}, // 1000 x min takes more than 64 bits
	}
	for _, tt := range tests {
		c := &RankContext{Job: &Job{}, MinTotal: tt.min, MaxTotal: tt.total}
		if got := (PriceScorer{}).Score(&Offer{Total: Amount{"EUR", tt.total}}, c); got != tt.want {
			t.Errorf("min %d, total %d: scored %d, want %d", tt.min, tt.total, got, tt.want)
		}
	}
}

// TestTiesFollowTheSeed: equal offers are ordered by the seeded shuffle, the
// same for the same seed, and not always in arrival order.
func TestTiesFollowTheSeed(t *testing.T) {
	offers := make([]Offer, 8)
	for i := range offers {
		offers[i] = Offer{Provider: string(rune('a' + i)), Total: Amount{"EUR", 1}}
	}
	order := func(seed byte) string {
		var s [32]byte
		s[0] = seed
		var b []byte
		var r ranking
		r.rank(offers, &Job{Count: 1, Replicas: 1}, Cheapest, nil, rand.New(rand.NewChaCha8(s)))
		for _, x := range r.order {
			b = append(b, offers[x.at].Provider...)
		}
		return string(b)
	}
	if order(1) != order(1) {
		t.Fatal("the same seed ordered ties differently")
	}
	differ := false
	for seed := byte(2); seed < 10; seed++ {
		differ = differ || order(seed) != order(1)
	}
	if !differ {
		t.Fatal("ties ignore the seed")
	}
}

func TestPolicyByName(t *testing.T) {
	for _, p := range Policies() {
		if got, err := PolicyByName(p.Name); err != nil || got.Name != p.Name {
			t.Errorf("PolicyByName(%q) = %v, %v", p.Name, got.Name, err)
		}
	}
	if _, err := PolicyByName("fastest"); err == nil {
		t.Error("unknown policy accepted")
	}
}

func TestLookupFacet(t *testing.T) {
	sel := func(key string, op pb.Operator, v ...string) Selector { return Selector{Key: key, Op: op, Values: v} }
	tests := []struct {
		constraints []Selector
		want        string // facet:values, in the order tried
	}{
		{nil, "size:1 size:4"},
		{[]Selector{sel("jurisdiction", pb.Operator_OPERATOR_EQUAL, "fr")}, "jurisdiction:1 size:1 size:4"},
		{[]Selector{sel("jurisdiction", pb.Operator_OPERATOR_EQUAL, "fr"), sel("region", pb.Operator_OPERATOR_IN, "fr-lyo", "fr-par")}, "region:2 jurisdiction:1 size:1 size:4"},
		{[]Selector{sel("region", pb.Operator_OPERATOR_NOT_IN, "fr-par"), sel("certification", pb.Operator_OPERATOR_EQUAL, "hds")}, "cert:1 size:1 size:4"},
		{[]Selector{sel("region", pb.Operator_OPERATOR_NOT_IN, "fr-par")}, "size:1 size:4"},
	}
	for _, tt := range tests {
		var got []string
		for _, f := range lookupFacets(&Job{Constraints: tt.constraints, Resources: Resources{MemoryBytes: 1}}) {
			got = append(got, fmt.Sprintf("%s:%d", f.facet, len(f.values)))
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%v: got %s, want %s", tt.constraints, g, tt.want)
		}
	}
}
