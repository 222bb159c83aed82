package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol"
)

// leasesSent drives one placement of job under cfg, at a standing now, over
// providers of distinct operators that all offer at once, and returns it and
// the leases it sends.
func leasesSent(t *testing.T, cfg Config, job Job, now time.Time) (*Placement, []SendLease) {
	t.Helper()
	p := NewPlacement(cfg, job, [32]byte{1})
	peers := make([]string, 8*job.Count*job.Replicas)
	for i := range peers {
		peers[i] = fmt.Sprintf("provider-%03d", i)
	}
	var sent []SendLease
	var reqs []RequestOffer
	collect := func(acts []Action) {
		for _, a := range acts {
			switch a := a.(type) {
			case RequestOffer:
				reqs = append(reqs, a)
			case SendLease:
				sent = append(sent, a)
			}
		}
	}
	acts := p.Step(now, Start{})
	for _, a := range acts {
		if l, ok := a.(Lookup); ok {
			for _, k := range l.Keys {
				collect(p.Step(now, CandidatesFound{Key: k, Peers: peers, Done: true}))
			}
		}
	}
	for i := 0; i < len(reqs); i++ { // reqs grows as rounds ask more
		r := reqs[i]
		o := benchOffer(r, now, i)
		o.Labels = NewLabels(Label{"jurisdiction", "fr"}, Label{"operator", r.Provider}, Label{"region", "fr-par"})
		collect(p.Step(now, OfferReceived{o}))
	}
	if len(sent) != job.Count*job.Replicas {
		t.Fatalf("%d leases sent, want one per slot, %d", len(sent), job.Count*job.Replicas)
	}
	return p, sent
}

// TestLeaseExpiry: a lease gives its provider the start timeout, a minute by
// default, to be running: time to fetch and compile a large module, which
// SPEC 6.2 (Lease.expires_at_ms) and the reference defaults of SPEC 7 now
// say too (they said 2 s, less than a cold compile takes); and never more
// than a lease may live (SPEC 3.3).
func TestLeaseExpiry(t *testing.T) {
	job, err := testJob("j", frenchJob, "requester")
	if err != nil {
		t.Fatal(err)
	}
	now := epoch0
	for _, tc := range []struct {
		cfg  Config
		want time.Duration
	}{
		{Config{}, time.Minute},
		{Config{StartTimeout: 3 * time.Minute}, 3 * time.Minute},
	} {
		_, sent := leasesSent(t, tc.cfg, job, now)
		for _, l := range sent {
			if got := l.Lease.ExpiresAt.Sub(now); got != tc.want || got > protocol.MaxLeaseTTL {
				t.Errorf("start timeout %v: the lease expires %v after it is sent, want %v", tc.cfg.StartTimeout, got, tc.want)
			}
		}
	}
}

// TestLeaseInstance: each lease names the instance its slot runs, slot /
// replicas, so that the replicas of one instance, and only they, derive the
// same random stream (SPEC 11).
func TestLeaseInstance(t *testing.T) {
	job, err := testJob("j", frenchJob+"count: 3\nreplicas: 2\n", "requester")
	if err != nil {
		t.Fatal(err)
	}
	p, sent := leasesSent(t, Config{}, job, epoch0)
	byID := map[string]Lease{}
	for _, l := range sent {
		byID[l.Lease.ID] = l.Lease
	}
	for k, s := range p.Status().Slots {
		l, ok := byID[s.LeaseID]
		if !ok {
			t.Fatalf("slot %d: no lease sent", k)
		}
		if want := uint32(k / job.Replicas); l.Instance != want {
			t.Errorf("slot %d: lease names instance %d, want %d", k, l.Instance, want)
		}
	}
}
