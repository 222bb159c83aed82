package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

var propertySeeds = flag.Int("property-seeds", 40, "seeds the property tests run")

// runRandomWorld builds a random federation and random jobs from seed, then
// delivers, drops, reorders and delays messages at random, kills providers and
// cancels jobs, until every job has ended. It returns the world and a hash of
// everything the core did. It checks after every step that no market
// over-commits and (in world.deliver) that no lease is held by two providers in
// the same epoch.
func runRandomWorld(t *testing.T, seed uint64) (*world, string) {
	r := rngFor(seed)
	w := newWorld()
	regions := []string{"fr-par", "fr-lyo", "de-fra", "be-bru"}
	nprov := 4 + r.IntN(16)
	for i := range nprov {
		region := regions[r.IntN(len(regions))]
		labels := []string{"region=" + region, "jurisdiction=" + region[:2], fmt.Sprintf("operator=op%d", r.IntN(5))}
		if r.IntN(3) == 0 {
			labels = append(labels, "certification=hds")
		}
		lab := map[string][]string{"labels": labels, "price": {fmt.Sprint(5_000 + r.IntN(20_000)), fmt.Sprint(500 + r.IntN(2_000))}}
		val := map[string]string{
			"name":        fmt.Sprintf("p%02d", i),
			"cpu":         fmt.Sprint(1 + r.IntN(8)),
			"mem":         fmt.Sprintf("%dMi", 256<<r.IntN(6)),
			"load-factor": fmt.Sprint([]int{0, 0, 500, 2000}[r.IntN(4)]),
		}
		cfg, err := providerConfig(func(k, def string) string {
			if v, ok := val[k]; ok {
				return v
			}
			return def
		}, func(k string) []string { return lab[k] })
		if err != nil {
			t.Fatal(err)
		}
		if err := w.addProvider(cfg); err != nil {
			t.Fatal(err)
		}
	}
	njobs := 3 + r.IntN(10)
	for i := range njobs {
		var extra strings.Builder
		fmt.Fprintf(&extra, "count: %d\nreplicas: %d\n", 1+r.IntN(3), 1+r.IntN(2))
		switch r.IntN(4) {
		case 0:
			fmt.Fprintf(&extra, "constraints:\n  - jurisdiction = %s\n", []string{"fr", "de", "be"}[r.IntN(3)])
		case 1:
			extra.WriteString("constraints:\n  - region in (fr-par, de-fra)\n")
		case 2:
			extra.WriteString("max_price: \"0.0001 EUR\"\n")
		}
		if r.IntN(2) == 0 {
			extra.WriteString("spread:\n  - {attribute: operator, weight: 50}\n")
		}
		spec := fmt.Sprintf("version: 1\nname: j%d\ntask:\n  module: m.wasm\n  resources: {cpu: %dm, memory: %dMi, timeout: 30s}\n%s",
			i, 100*(1+r.IntN(20)), 32<<r.IntN(5), extra.String())
		j, err := testJob(fmt.Sprintf("j%d", i), spec, "requester")
		if err != nil {
			t.Fatalf("seed %d: job: %v\n%s", seed, err, spec)
		}
		policy := Policies()[r.IntN(len(Policies()))]
		w.submit(fmt.Sprintf("j%d", i), Config{D: 1 + r.IntN(3), Policy: policy}, j, r.Uint64())
	}

	loss := []float64{0, 0.05, 0.2}[r.IntN(3)]
	var trace strings.Builder
	keep := func() { trace.WriteString(w.flush()); trace.WriteByte('\n') }
	for step := 0; step < 20_000 && !w.allDone(); step++ {
		calm := step > 3_000 // past here nothing is lost and nobody dies: the federation heals
		// Messages mostly arrive well within the timeouts, as on a real
		// network; loss, reordering and the odd slow stretch do the rest.
		switch x := r.IntN(100); {
		case x < 80 && len(w.queue) > 0:
			i := r.IntN(len(w.queue)) // reordering
			if !calm && r.Float64() < loss {
				w.queue = append(w.queue[:i], w.queue[i+1:]...)
			} else {
				w.deliver(i)
			}
		case x < 86 || len(w.queue) == 0 && x < 90:
			w.advance(time.Duration(1+r.IntN(100)) * time.Millisecond)
		case x < 92:
			w.beat()
		case x < 96:
			if p := w.providers[r.IntN(len(w.providers))]; !p.dead {
				w.finish(p, int32(r.IntN(8)/7), "out") // mostly exit 0
			}
		case x < 97 && !calm && r.IntN(4) == 0:
			w.providers[r.IntN(len(w.providers))].dead = true
		case x < 98 && !calm && r.IntN(4) == 0:
			w.step(w.jobs[r.IntN(len(w.jobs))], Cancel{})
		default:
			if len(w.queue) == 0 {
				w.advance(500 * time.Millisecond)
			}
		}
		if err := w.checkLedgers(); err != nil {
			t.Fatalf("seed %d step %d: %v", seed, step, err)
		}
		keep()
	}
	for _, j := range w.jobs {
		st := j.p.Status()
		switch st.State {
		case JobSucceeded:
			if st.Code != ReasonNone {
				t.Errorf("seed %d: %s succeeded with code %s", seed, j.name, st.Code)
			}
		case JobCancelled:
			if st.Code != ReasonCancelled {
				t.Errorf("seed %d: %s cancelled with code %s", seed, j.name, st.Code)
			}
		case JobFailed:
			if st.Reason == "" || st.Code < ReasonNotPlaced || st.Code > ReasonReplicasDisagree {
				t.Errorf("seed %d: %s failed without a reason: code %s, %q", seed, j.name, st.Code, st.Reason)
			}
		default:
			t.Errorf("seed %d: %s did not end: %s", seed, j.name, describeStatus(st))
		}
	}
	sum := sha256.Sum256([]byte(trace.String()))
	return w, hex.EncodeToString(sum[:])
}

func (w *world) allDone() bool {
	for _, j := range w.jobs {
		if !j.p.State().Final() {
			return false
		}
	}
	return true
}

// TestProperties: over many seeded random federations, with message loss,
// reordering and crashes, the ledgers never over-commit, no lease is held by two
// providers in the same epoch, and every job ends succeeded, failed with a
// reason, or cancelled.
func TestProperties(t *testing.T) {
	ended := map[JobState]int{}
	for seed := uint64(1); seed <= uint64(*propertySeeds); seed++ {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("seed %d: %v", seed, r)
				}
			}()
			w, _ := runRandomWorld(t, seed)
			for _, j := range w.jobs {
				ended[j.p.State()]++
			}
		}()
	}
	t.Logf("jobs ended: %d succeeded, %d failed, %d cancelled", ended[JobSucceeded], ended[JobFailed], ended[JobCancelled])
	if ended[JobSucceeded] == 0 || ended[JobFailed] == 0 {
		t.Errorf("the random worlds are too tame or too harsh: %v", ended)
	}
}

// TestDeterminism: the same seed and inputs give the same trace.
func TestDeterminism(t *testing.T) {
	for _, seed := range []uint64{7, 42, 1234} {
		_, h1 := runRandomWorld(t, seed)
		_, h2 := runRandomWorld(t, seed)
		if h1 != h2 {
			t.Fatalf("seed %d: trace hashes differ: %s vs %s", seed, h1, h2)
		}
	}
	_, a := runRandomWorld(t, 7)
	_, b := runRandomWorld(t, 8)
	if a == b {
		t.Fatal("different seeds gave the same trace: the hash sees nothing")
	}
}
