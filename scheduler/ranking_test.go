package scheduler

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cuivre/cuivre/protocol/pb"
)

func TestPolicies(t *testing.T) {
	offers := []Offer{
		{Provider: "cheap-busy", Total: Amount{"EUR", 100}, LoadPermille: 900, Labels: NewLabels(Label{"region", "de-fra"})},
		{Provider: "dear-idle", Total: Amount{"EUR", 900}, LoadPermille: 100, Labels: NewLabels(Label{"region", "de-fra"})},
		{Provider: "mid-mid", Total: Amount{"EUR", 500}, LoadPermille: 500, Labels: NewLabels(Label{"region", "fr-par"})},
	}
	job := &Job{Count: 1, Replicas: 1}
	affine := &Job{Count: 1, Replicas: 1, Affinities: []Selector{{Key: "region", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"fr-par"}, Weight: 100}}}
	tests := []struct {
		policy Policy
		job    *Job
		want   string
	}{
		{Cheapest, job, "cheap-busy"},
		{LeastLoaded, job, "dear-idle"},
		{BestFit, job, "cheap-busy"},
		{Cheapest, affine, "mid-mid"}, // affinity (+1000) outweighs price (+500)
	}
	for _, tt := range tests {
		var r ranking
		r.rank(offers, tt.job, tt.policy, nil, rand.New(rand.NewChaCha8([32]byte{})))
		if got := offers[r.order[0].at].Provider; got != tt.want {
			t.Errorf("%s (affinities %d): best is %s, want %s", tt.policy.Name, len(tt.job.Affinities), got, tt.want)
		}
		for _, x := range r.order {
			if sc := r.of(x.at); sc.Total() != x.score || len(sc) != len(tt.policy.Terms)+len(tt.job.Affinities) {
				t.Errorf("%s: %s ranked %d, its scores %v", tt.policy.Name, offers[x.at].Provider, x.score, sc)
			}
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
		{nil, "size:5"},
		{[]Selector{sel("jurisdiction", pb.Operator_OPERATOR_EQUAL, "fr")}, "jurisdiction:1 size:5"},
		{[]Selector{sel("jurisdiction", pb.Operator_OPERATOR_EQUAL, "fr"), sel("region", pb.Operator_OPERATOR_IN, "fr-lyo", "fr-par")}, "region:2 jurisdiction:1 size:5"},
		{[]Selector{sel("region", pb.Operator_OPERATOR_NOT_IN, "fr-par"), sel("certification", pb.Operator_OPERATOR_EQUAL, "hds")}, "cert:1 size:5"},
		{[]Selector{sel("region", pb.Operator_OPERATOR_NOT_IN, "fr-par")}, "size:5"},
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
