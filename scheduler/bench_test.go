package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
)

func benchJob(b *testing.B) Job {
	j, err := testJob("bench", "version: 1\nname: bench\ntask:\n  module: m.wasm\n  resources: {cpu: 500m, memory: 128Mi, timeout: 30s}\nconstraints:\n  - jurisdiction = fr\n", "requester")
	if err != nil {
		b.Fatal(err)
	}
	return j
}

// BenchmarkPlacement is one whole placement in the core, d=2 over 50
// candidates: start, candidates found, two offers, lease sent, lease accepted.
// The goal is >= 100,000 placements per second on one core.
func BenchmarkPlacement(b *testing.B) {
	job := benchJob(b)
	peers := make([]string, 50)
	for i := range peers {
		peers[i] = fmt.Sprintf("provider-%02d", i)
	}
	now := epoch0
	var seed [32]byte
	b.ReportAllocs()
	for b.Loop() {
		seed[0]++
		p := NewPlacement(Config{}, job, seed)
		acts := p.Step(now, Start{})
		key := acts[0].(Lookup).Keys[0]
		acts = p.Step(now, CandidatesFound{Key: key, Peers: peers, Done: true})
		var reqs []RequestOffer
		for _, a := range acts {
			if r, ok := a.(RequestOffer); ok {
				reqs = append(reqs, r)
			}
		}
		var lease SendLease
		for i, r := range reqs {
			for _, a := range p.Step(now, OfferReceived{benchOffer(r, now, i)}) {
				if l, ok := a.(SendLease); ok {
					lease = l
				}
			}
		}
		p.Step(now, LeaseAccepted{lease.Provider, lease.Lease.ID, lease.Lease.Epoch})
		if p.State() != JobRunning {
			b.Fatalf("state %s", p.State())
		}
	}
}

var benchLabels = NewLabels(Label{"jurisdiction", "fr"}, Label{"operator", "op"}, Label{"region", "fr-par"})

func benchOffer(r RequestOffer, now time.Time, i int) Offer {
	return Offer{
		Provider: r.Provider, Requester: r.Request.Requester, RequestNonce: r.Request.Nonce,
		Nonce: r.Request.Nonce, JobCID: r.Request.JobCID, Resources: r.Request.Resources,
		Price: Price{Currency: "EUR", CPUNanosPerSecond: 10_000}, Total: Amount{"EUR", uint64(150_000 + i)},
		ExpiresAt: now.Add(10 * time.Second), LoadPermille: uint32(100 * i), Labels: benchLabels,
	}
}

// BenchmarkRank1000 ranks 1,000 offers under the balanced policy.
func BenchmarkRank1000(b *testing.B) {
	job := benchJob(b)
	job.Affinities = []Selector{{Key: "region", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"fr-par"}, Weight: 50}}
	offers := make([]Offer, 1000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range offers {
		offers[i] = Offer{Provider: fmt.Sprint(i), Total: Amount{"EUR", r.Uint64N(1_000_000)}, LoadPermille: uint32(r.IntN(1000)), Labels: benchLabels}
	}
	rng := rand.New(rand.NewChaCha8([32]byte{}))
	var rk ranking
	b.ReportAllocs()
	for b.Loop() {
		rk.rank(offers, &job, Balanced, nil, rng)
	}
}
