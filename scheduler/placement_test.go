package scheduler

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// frenchWorld is a world of providers in France, given as name=operator.
func frenchWorld(t *testing.T, providers ...string) *world {
	t.Helper()
	w := newWorld()
	for _, p := range providers {
		name, operator, _ := strings.Cut(p, "=")
		addProvider(t, w, name, []string{"jurisdiction=fr", "operator=" + operator})
	}
	return w
}

// fourFrench is a world of four providers in France, each of its own operator.
func fourFrench(t *testing.T) *world { return frenchWorld(t, "p1=p1", "p2=p2", "p3=p3", "p4=p4") }

const frenchJob = "version: 1\nname: j\ntask:\n  module: m.wasm\n  resources: {cpu: 500m, memory: 128Mi, timeout: 30s}\nconstraints:\n  - jurisdiction = fr\n"

// settle delivers what is in flight and lets round deadlines pass until every
// slot of the job runs or the job ends.
func settle(t *testing.T, w *world, j *simJob) {
	t.Helper()
	for range 50 {
		w.deliverAll()
		if j.p.State().Final() || j.p.State() == JobRunning {
			return
		}
		w.advance(200 * time.Millisecond)
	}
	t.Fatalf("the job neither runs nor ends: %s", describeStatus(j.p.Status()))
}

// TestLastLostLeaseFails: when a slot loses the last lease it may lose, the
// job fails, and its last report says so; it does not announce a reschedule
// that will never come.
func TestLastLostLeaseFails(t *testing.T) {
	w := fourFrench(t)
	job, err := testJob("j", frenchJob, "requester")
	if err != nil {
		t.Fatal(err)
	}
	j := w.submit("j", Config{MaxReschedules: 1}, job, 1)
	for lost := 0; !j.p.State().Final(); lost++ {
		if lost > 2 {
			t.Fatalf("still %s after %d lost leases", j.p.State(), lost)
		}
		settle(t, w, j)
		if j.p.State().Final() {
			break
		}
		// The provider running the slot is cut off: its heartbeats stop.
		w.provider(j.p.Status().Slots[0].Provider).cut = true
		w.advance(4 * time.Second)
	}
	if j.p.State() != JobFailed {
		t.Fatalf("state %s, want failed", j.p.State())
	}
	if last := j.last; last.State != JobFailed || strings.Contains(last.Message, "rescheduling") {
		t.Fatalf("the last report is %q with message %q, want failed without a reschedule", last.State, last.Message)
	}
	if j.last.Code != ReasonLeasesLost || !strings.Contains(j.last.Reason, "lost 2 leases") {
		t.Fatalf("reason %s: %q, want the leases lost", j.last.Code, j.last.Reason)
	}
}

// TestResumeKeepsOperators: a placement resumed after a requester restart
// knows the operator of its running slots from the labels their status kept,
// so the slot it places next avoids that operator: as a rule for replicas, as
// a preference for a spread.
func TestResumeKeepsOperators(t *testing.T) {
	for _, tt := range []struct{ name, spec string }{
		{"replicas", "replicas: 2\n"},
		{"spread", "count: 2\nspread:\n  - {attribute: operator, weight: 100}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(8) {
				w := frenchWorld(t, "a1=alpha", "a2=alpha", "b1=beta")
				job, err := testJob("j", frenchJob+tt.spec, "requester")
				if err != nil {
					t.Fatal(err)
				}
				var s [32]byte
				s[0] = byte(seed)
				j := &simJob{name: "j", p: NewPlacement(Config{D: 3}, job, s)}
				w.jobs = append(w.jobs, j)
				a1 := NewLabels(Label{LabelJurisdiction, "fr"}, Label{LabelOperator, "alpha"})
				if !j.p.Resume([]SlotStatus{
					{LeaseID: "lease-0123456789", Epoch: 1, Provider: "a1", State: SlotRunning, Price: Amount{"EUR", 7}, Labels: a1},
					{State: SlotPending},
				}) {
					t.Fatal("Resume refused")
				}
				w.step(j, Start{})
				settle(t, w, j)
				st := j.p.Status()
				if got := st.Slots[1].Provider; got != "b1" {
					t.Fatalf("seed %d: the second slot went to %s, want b1 of the other operator: %s", seed, got, describeStatus(st))
				}
				if v, _ := st.Slots[0].Labels.Get(LabelOperator); v != "alpha" {
					t.Fatalf("seed %d: the resumed slot reports operator %q, want alpha", seed, v)
				}
			}
		})
	}
}

// addProvider adds a provider to a world, with labels and options of the
// script's provider command as key=value: "cpu=1", "price=20000,2000".
func addProvider(t *testing.T, w *world, name string, labels []string, opts ...string) {
	t.Helper()
	opt := map[string]string{"name": name}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		opt[k] = v
	}
	cfg, err := providerConfig(func(k, def string) string {
		if v, ok := opt[k]; ok {
			return v
		}
		return def
	}, func(k string) []string {
		switch k {
		case "labels":
			return labels
		case "price":
			if v, ok := opt[k]; ok {
				return strings.Split(v, ",")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.addProvider(cfg); err != nil {
		t.Fatal(err)
	}
}

// TestScoresExplainTheWinner: the status keeps each scorer's score of every
// offer ranked, for the winner (its slot and its outcome) as for the others,
// and what a report showed does not change under later rounds.
func TestScoresExplainTheWinner(t *testing.T) {
	w := newWorld()
	addProvider(t, w, "cheap", []string{"jurisdiction=fr", "region=fr-par", "operator=alpha"})
	addProvider(t, w, "dear", []string{"jurisdiction=fr", "region=fr-lyo", "operator=beta"}, "price=20000,2000")
	job, err := testJob("j", frenchJob+"affinities:\n  - {key: region, op: \"=\", values: [fr-lyo], weight: 20}\nspread:\n  - {attribute: operator, weight: 50}\n", "requester")
	if err != nil {
		t.Fatal(err)
	}
	j := w.submit("j", Config{D: 2}, job, 1)
	settle(t, w, j)
	st := j.p.Status()
	names := func(s Scores) string {
		var n []string
		for _, x := range s {
			n = append(n, x.Scorer)
		}
		return strings.Join(n, " ")
	}
	win := st.Slots[0].Scores
	if st.Slots[0].Provider != "cheap" || names(win) != "price load affinity spread" {
		t.Fatalf("slot on %s scored %v, want cheap with price, load, affinity and spread", st.Slots[0].Provider, win)
	}
	byProvider := map[string]Outcome{}
	for _, o := range st.Asked {
		byProvider[o.Provider] = o
	}
	if got := byProvider["cheap"]; got.Reason != ReasonLeased || got.Scores.String() != win.String() {
		t.Fatalf("the winner's outcome %s %v, want leased %v", got.Reason, got.Scores, win)
	}
	lose := byProvider["dear"].Scores
	if byProvider["dear"].Reason != ReasonNotChosen || len(lose) != 4 {
		t.Fatalf("the loser's outcome %s %v, want not chosen with its scores", byProvider["dear"].Reason, lose)
	}
	// cheap: price 1000 + load + spread 500; dear, twice the price: price 500 + load + affinity 200 + spread 500.
	if win[0].Value != 1000 || lose[0].Value != 500 || win[2].Value != 0 || lose[2].Value != 200 || win[3].Value != 500 || lose[3].Value != 500 {
		t.Fatalf("scores: winner %v, loser %v", win, lose)
	}
	if win.Total() <= lose.Total() {
		t.Fatalf("the winner scored %d, the loser %d", win.Total(), lose.Total())
	}
	shown := win.String()

	// The winner dies: its lease is lost, and the job is placed again.
	w.provider("cheap").dead = true
	w.advance(4 * time.Second)
	settle(t, w, j)
	if got := j.p.Status().Slots[0]; got.Provider != "dear" || got.Epoch != 2 || len(got.Scores) == 0 {
		t.Fatalf("slot after the loss: %+v, want dear under epoch 2, scored", got)
	}
	if win.String() != shown {
		t.Fatalf("scores already reported changed: %s, then %s", shown, win)
	}
}

// settleRunning settles a job that must run, and returns its provider.
func settleRunning(t *testing.T, w *world, j *simJob) string {
	t.Helper()
	settle(t, w, j)
	p := j.p.Status().Slots[0].Provider
	if p == "" || j.p.State() != JobRunning {
		t.Fatalf("not placed: %s", describeStatus(j.p.Status()))
	}
	return p
}

// TestLostLeasePenalised: a provider that lost a lease of a job is not barred
// from it, only ranked down: it is leased again when it is the only fit or
// clearly the best, and loses to an equal offer.
func TestLostLeasePenalised(t *testing.T) {
	for _, tt := range []struct {
		name      string
		providers func(*testing.T, *world)
		want      string
	}{
		{"only fit", func(t *testing.T, w *world) {
			addProvider(t, w, "p1", []string{"jurisdiction=fr"})
		}, "p1"},
		{"equal", func(t *testing.T, w *world) {
			addProvider(t, w, "p1", []string{"jurisdiction=fr"})
			addProvider(t, w, "p2", []string{"jurisdiction=fr"})
		}, "the other"},
		{"clearly best", func(t *testing.T, w *world) {
			// p2 is five times dearer, and three quarters full with another
			// job: p1 scores 1000 (2000 less the penalty), p2 450.
			addProvider(t, w, "p1", []string{"jurisdiction=fr"})
			addProvider(t, w, "p2", []string{"jurisdiction=fr", "tier=small"}, "cpu=1", "mem=2Gi", "price=50000,5000")
			busy, err := testJob("busy", "version: 1\nname: busy\ntask:\n  module: m.wasm\n  resources: {cpu: 750m, memory: 128Mi, timeout: 1h}\nconstraints:\n  - tier = small\n", "other")
			if err != nil {
				t.Fatal(err)
			}
			if j := w.submit("busy", Config{D: 2}, busy, 7); settleRunning(t, w, j) != "p2" {
				t.Fatalf("the busy job is not on p2: %s", describeStatus(j.p.Status()))
			}
		}, "p1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			tt.providers(t, w)
			job, err := testJob("j", frenchJob, "requester")
			if err != nil {
				t.Fatal(err)
			}
			j := w.submit("j", Config{D: 2}, job, 1)
			first := settleRunning(t, w, j)
			// Its provider is cut off long enough to lose the lease, then
			// heals; the others' leases (p2's busy job) heartbeat on.
			w.provider(first).cut = true
			for range 8 {
				w.advance(500 * time.Millisecond)
				w.beat()
				w.deliverAll()
			}
			w.provider(first).cut = false
			settle(t, w, j)
			st := j.p.Status()
			want := tt.want
			if want == "the other" {
				want = map[string]string{"p1": "p2", "p2": "p1"}[first]
			}
			if st.State != JobRunning || st.Slots[0].Epoch != 2 || st.Slots[0].Provider != want {
				t.Fatalf("after %s lost the lease: %s, want running on %s under epoch 2", first, describeStatus(st), want)
			}
			for _, o := range st.Asked {
				var penalty int64
				for _, sc := range o.Scores {
					if sc.Scorer == "reschedule" {
						penalty = sc.Value
					}
				}
				if o.Provider == first && len(o.Scores) > 0 && penalty != -LostLeasePenalty {
					t.Errorf("%s, which lost the lease, scored %v", o.Provider, o.Scores)
				}
				if o.Provider != first && penalty != 0 {
					t.Errorf("%s scored %v", o.Provider, o.Scores)
				}
			}
		})
	}
}

// TestProviderFaultReschedules: a run that ends for a reason of its
// provider's (the run died with the provider's process, the provider failed
// on its side, the run never started) is placed again under a new epoch, as
// a lost lease is; a run that fails by its own exit code or timeout fails
// the job.
func TestProviderFaultReschedules(t *testing.T) {
	for _, tt := range []struct {
		name       string
		state      pb.LeaseState
		code       pb.Code
		exit       int32
		reschedule bool
	}{
		{"run lost", pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_RUN_LOST, -1, true},
		{"provider failed", pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_INTERNAL, -1, true},
		{"never started", pb.LeaseState_LEASE_STATE_EXPIRED, pb.Code_CODE_UNSPECIFIED, 0, true},
		{"cancelled by its provider", pb.LeaseState_LEASE_STATE_CANCELLED, pb.Code_CODE_UNSPECIFIED, -1, true},
		{"exit code", pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_UNSPECIFIED, 3, false},
		{"timeout", pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_TIMEOUT, -1, false},
		{"memory", pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_INSUFFICIENT_MEMORY, -1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := fourFrench(t)
			job, err := testJob("j", frenchJob, "requester")
			if err != nil {
				t.Fatal(err)
			}
			j := w.submit("j", Config{}, job, 1)
			settle(t, w, j)
			sl := j.p.Status().Slots[0]
			p := w.provider(sl.Provider)
			l := p.leases[0]
			w.endLease(p, l.ID, l.Epoch)
			w.step(j, ResultReceived{Provider: p.name, LeaseID: l.ID, Epoch: l.Epoch, State: tt.state, ExitCode: tt.exit, Code: tt.code, Detail: "why"})
			if !tt.reschedule {
				if st := j.p.Status(); st.State != JobFailed || j.last.Code != ReasonRunFailed {
					t.Fatalf("after the job's own failure: %s, want failed (run failed)", describeStatus(st))
				}
				return
			}
			if !strings.Contains(j.last.Message, "rescheduling under epoch 2") {
				t.Fatalf("report %q, want a reschedule", j.last.Message)
			}
			settle(t, w, j)
			if st := j.p.Status(); st.State != JobRunning || st.Slots[0].Epoch != 2 {
				t.Fatalf("after a fault of its provider: %s, want running under epoch 2", describeStatus(st))
			}
		})
	}
}

// TestWidensToAnotherFacet: when the shards of the job's facet give no
// candidate at all (the records under jurisdiction=fr were lost with the
// DHT nodes that held them), a round looks up the next facet, the size
// classes, once, and places the job on a provider found there whose offer
// meets its constraints; one that does not is asked once and excluded.
func TestWidensToAnotherFacet(t *testing.T) {
	w := newWorld()
	addProvider(t, w, "fr1", []string{"jurisdiction=fr"})
	addProvider(t, w, "de1", []string{"jurisdiction=de"})
	for _, v := range []string{"fr", "de"} {
		for shard := range protocol.FacetJurisdiction.Shards() {
			k, err := protocol.NewFacetKey(protocol.FacetJurisdiction, v, shard)
			if err != nil {
				t.Fatal(err)
			}
			delete(w.index, k.String())
		}
	}
	job, err := testJob("j", frenchJob, "requester")
	if err != nil {
		t.Fatal(err)
	}
	j := w.submit("j", Config{}, job, 1)
	settle(t, w, j)
	if st := j.p.Status(); st.State != JobRunning || st.Slots[0].Provider != "fr1" {
		t.Fatalf("%s, want running on fr1\n%s", describeStatus(st), w.flush())
	}
	log := w.flush()
	if !strings.Contains(log, "lookup size=") {
		t.Fatalf("no lookup of the size facet:\n%s", log)
	}
	if strings.Count(log, "request-offer de1") > 1 {
		t.Fatalf("de1, which the job's constraints refuse, asked more than once:\n%s", log)
	}
}

// TestWaitsOnSlowLookups: a round that has found nobody by its
// OfferTimeout, with lookups still running (a DHT walk past dead peers),
// waits on for them instead of ending and starting others, and asks the
// first provider they bring; with nothing past LookupTimeout more, it ends
// and says for how long it waited.
func TestWaitsOnSlowLookups(t *testing.T) {
	job, err := testJob("j", frenchJob, "requester")
	if err != nil {
		t.Fatal(err)
	}
	w := fourFrench(t)
	j := w.submit("j", Config{}, job, 1)
	lookups := strings.Count(w.flush(), "lookup ")
	w.advance(time.Second) // past the 500 ms OfferTimeout, the lookups unanswered
	if log := w.flush(); strings.Contains(log, "lookup ") || strings.Contains(log, "timed out") {
		t.Fatalf("after %d lookups unanswered for 1s, the round ended or looked up again:\n%s", lookups, log)
	}
	settle(t, w, j)
	if st := j.p.Status(); st.State != JobRunning {
		t.Fatalf("%s, want running\n%s", describeStatus(st), w.flush())
	}

	w = fourFrench(t)
	j = w.submit("j", Config{}, job, 1)
	w.advance(2600 * time.Millisecond)
	if st := j.p.Status(); !strings.Contains(st.Reason, "discovery timed out after 2.5s") {
		t.Fatalf("%s: want the round ended, discovery timed out after 2.5s\n%s", describeStatus(st), w.flush())
	}
}

// TestWidensToLargerSizeClasses: a provider of SPEC revisions before 1.4
// announces its own size class only. A job of a smaller class finds nobody
// under its own class, and widens to the larger ones, where it finds it.
func TestWidensToLargerSizeClasses(t *testing.T) {
	job, err := testJob("j", "version: 1\nname: j\ntask:\n  module: m.wasm\n  resources: {cpu: 500m, memory: 128Mi, timeout: 30s}\n", "requester")
	if err != nil {
		t.Fatal(err)
	}
	now := epoch0
	p := NewPlacement(Config{}, job, [32]byte{5})
	// Every shard of its own class is looked up, and found empty, first.
	pending := p.Step(now, Start{})[0].(Lookup).Keys
	var wider Lookup
	own := 0
	for len(pending) > 0 && wider.Keys == nil {
		k := pending[0]
		pending = pending[1:]
		if k.Facet != protocol.FacetSize || k.Value != "xs" {
			t.Fatalf("lookup %s, want the job's class, xs", k)
		}
		own++
		for _, a := range p.Step(now, CandidatesFound{Key: k, Done: true}) {
			if l, ok := a.(Lookup); ok {
				if l.Keys[0].Value != "xs" {
					wider = l
				} else {
					pending = append(pending, l.Keys...)
				}
			}
		}
	}
	if own != int(protocol.FacetSize.Shards()) {
		t.Fatalf("%d shards of its own class looked up before widening, want all %d", own, protocol.FacetSize.Shards())
	}
	var old protocol.FacetKey
	for _, k := range wider.Keys {
		if k.Value == "m" {
			old = k
		}
	}
	if old.Value == "" {
		t.Fatalf("no lookup of the larger classes after an empty own class: %+v", wider)
	}
	var asked []string
	for _, k := range wider.Keys {
		var peers []string
		if k == old {
			peers = []string{"old-provider"}
		}
		for _, a := range p.Step(now, CandidatesFound{Key: k, Peers: peers, Done: true}) {
			if r, ok := a.(RequestOffer); ok {
				asked = append(asked, r.Provider)
			}
		}
	}
	if !slices.Equal(asked, []string{"old-provider"}) {
		t.Fatalf("asked %v, want the provider found under a larger class", asked)
	}
}

// TestRetryAfterRests: a provider's retry-after hint binds asking it again,
// not asking others. Two providers refuse for lack of room, one hinting
// 200 ms, the other 3 s, then 5 s: neither is asked before its hint, the
// first is asked again once its ends, a round that finds no one else waits
// for the soonest rest, and at the placement deadline (1 s) the job fails
// for lack of capacity, not for want of a provider.
func TestRetryAfterRests(t *testing.T) {
	job, err := testJob("j", "version: 1\nname: j\nplacement_timeout: 1s\ntask:\n  module: m.wasm\n  resources: {cpu: 500m, memory: 128Mi, timeout: 30s}\n", "requester")
	if err != nil {
		t.Fatal(err)
	}
	now := epoch0
	p := NewPlacement(Config{}, job, [32]byte{5})
	hints := map[string]time.Duration{"soon": 200 * time.Millisecond, "late": 3 * time.Second}
	restsUntil := map[string]time.Time{}
	var timer SetTimer
	asks := map[string]int{}
	queue := slices.Clone(p.Step(now, Start{})) // Step reuses what it returns
	for steps := 0; !p.State().Final(); steps++ {
		if steps > 1000 {
			t.Fatal("the placement does not end")
		}
		if len(queue) == 0 {
			if timer.ID == 0 {
				t.Fatalf("no timer set at %s: %s", now.Sub(epoch0), describeStatus(p.Status()))
			}
			// A round that asked no one waits for the soonest rest.
			fire := timer
			now, timer = fire.At, SetTimer{}
			queue = slices.Clone(p.Step(now, TimerFired{ID: fire.ID}))
			continue
		}
		a := queue[0]
		queue = queue[1:]
		switch a := a.(type) {
		case Lookup:
			for _, k := range a.Keys {
				queue = append(queue, p.Step(now, CandidatesFound{Key: k, Peers: []string{"late", "soon"}, Done: true})...)
			}
		case RequestOffer:
			if now.Before(restsUntil[a.Provider]) {
				t.Fatalf("%s asked at %s, before its rest ends at %s", a.Provider, now.Sub(epoch0), restsUntil[a.Provider].Sub(epoch0))
			}
			asks[a.Provider]++
			restsUntil[a.Provider] = now.Add(hints[a.Provider])
			if a.Provider == "soon" {
				hints["soon"] = 5 * time.Second
			}
			queue = append(queue, p.Step(now, OfferRefused{Provider: a.Provider, RequestNonce: a.Request.Nonce,
				Code: pb.Code_CODE_INSUFFICIENT_CPU, Reason: "full", RetryAfter: restsUntil[a.Provider].Sub(now)})...)
		case SetTimer:
			if a.Wait {
				timer = a
			}
		}
	}
	if asks["late"] != 1 || asks["soon"] != 2 {
		t.Errorf("asked late %d times, soon %d; want once and twice", asks["late"], asks["soon"])
	}
	st := p.Status()
	if st.State != JobFailed || !WaitsForCapacity(st.Asked) || strings.Contains(st.Reason, "no provider found") {
		t.Fatalf("status %s, want failed for lack of capacity", describeStatus(st))
	}
}

// hedgedRound places a job on two providers with the given OfferTimeout:
// dear, whose offer comes first after the asks, and cheap, half its price,
// whose offer comes second after them (never if negative). It returns how
// long after the asks the round decided, who got the slot, and what the
// status says of the other.
func hedgedRound(t *testing.T, timeout, first, second time.Duration) (time.Duration, string, Outcome) {
	t.Helper()
	w := newWorld()
	addProvider(t, w, "dear", []string{"jurisdiction=fr"}, "price=20000,2000")
	addProvider(t, w, "cheap", []string{"jurisdiction=fr"})
	job, err := testJob("j", frenchJob, "requester")
	if err != nil {
		t.Fatal(err)
	}
	j := w.submit("j", Config{OfferTimeout: timeout}, job, 1)
	w.deliverTo("dht", -1)
	if log := w.flush(); strings.Count(log, "request-offer") != 2 {
		t.Fatalf("both providers not asked:\n%s", log)
	}
	asked := w.now
	for el := time.Duration(0); el <= timeout; el += time.Millisecond {
		if el == first {
			w.deliverTo("dear", -1)
		}
		if el == second {
			w.deliverTo("cheap", -1)
		}
		if log := w.flush(); strings.Contains(log, "send-lease") {
			st := j.p.Status()
			other := "cheap"
			if st.Slots[0].Provider == "cheap" {
				other = "dear"
			}
			for _, o := range st.Asked {
				if o.Provider == other {
					return w.now.Sub(asked), st.Slots[0].Provider, o
				}
			}
			t.Fatalf("no outcome for %s: %+v", other, st.Asked)
		}
		w.advance(time.Millisecond)
	}
	t.Fatalf("no decision within the offer timeout: %s", describeStatus(j.p.Status()))
	return 0, "", Outcome{}
}

// TestHedgedRound: a round with an offer for its slot waits for the other
// candidate only a grace, as long again as it has taken since it asked, at
// least a quarter of the OfferTimeout, never past the deadline; an offer
// within the grace still counts, and the cheaper wins though it came
// second; one at the end of the grace is too late. The one that did not
// answer reads "no answer", and its detail says whether the round cut it
// off or waited to the deadline.
func TestHedgedRound(t *testing.T) {
	const never = -1
	ms := time.Millisecond
	for _, tt := range []struct {
		timeout, first, second time.Duration
		decided                time.Duration
		winner                 string
	}{
		// The first offer at once: the grace is its floor, a quarter of the timeout.
		{500 * ms, 0, never, 125 * ms, "dear"},
		{500 * ms, 0, 124 * ms, 124 * ms, "cheap"},
		{500 * ms, 0, 125 * ms, 125 * ms, "dear"},
		{2000 * ms, 0, never, 500 * ms, "dear"},
		{2000 * ms, 0, 499 * ms, 499 * ms, "cheap"},
		// The first offer after 150 ms: as long again.
		{500 * ms, 150 * ms, never, 300 * ms, "dear"},
		{500 * ms, 150 * ms, 299 * ms, 299 * ms, "cheap"},
		{500 * ms, 150 * ms, 300 * ms, 300 * ms, "dear"},
		// The first offer after 300 ms: the deadline comes first.
		{500 * ms, 300 * ms, never, 500 * ms, "dear"},
		{500 * ms, 300 * ms, 499 * ms, 499 * ms, "cheap"},
		// Both at once: no wait at all.
		{500 * ms, 0, 0, 0, "cheap"},
	} {
		decided, winner, other := hedgedRound(t, tt.timeout, tt.first, tt.second)
		if decided != tt.decided || winner != tt.winner {
			t.Errorf("timeout %s, dear's offer after %s, cheap's after %s: decided after %s for %s, want after %s for %s",
				tt.timeout, tt.first, tt.second, decided, winner, tt.decided, tt.winner)
			continue
		}
		want := ReasonNotChosen
		if tt.second == never || tt.second >= tt.decided && tt.winner == "dear" {
			want = ReasonNoAnswer
		}
		detail := ""
		switch {
		case want == ReasonNoAnswer && tt.decided < tt.timeout:
			detail = "no offer while the others' were in hand"
		case want == ReasonNoAnswer:
			detail = "no offer before the deadline"
		}
		if other.Reason != want || other.Detail != detail {
			t.Errorf("timeout %s, dear's offer after %s, cheap's after %s: the other reads %s (%q), want %s (%q)",
				tt.timeout, tt.first, tt.second, other.Reason, other.Detail, want, detail)
		}
	}
}

// TestUnansweredRoundWaitsToDeadline: a round with no offer in hand waits
// for the candidates yet to answer to the offer deadline, however soon the
// others answered: a refusal, for lack of room or for a price above the
// job's ceiling, fills no slot.
func TestUnansweredRoundWaitsToDeadline(t *testing.T) {
	for _, tt := range []struct {
		name     string
		provider []string // the one that answers at once
		spec     string
	}{
		{"refused", []string{"cpu=250m"}, frenchJob},
		{"price above the ceiling", []string{"price=9000000,0"}, frenchJob + "max_price: \"0.01 EUR\"\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			addProvider(t, w, "quick", []string{"jurisdiction=fr"}, tt.provider...)
			addProvider(t, w, "slow", []string{"jurisdiction=fr"})
			job, err := testJob("j", tt.spec, "requester")
			if err != nil {
				t.Fatal(err)
			}
			j := w.submit("j", Config{}, job, 1)
			w.deliverTo("dht", -1)
			asked := w.now
			w.deliverTo("quick", -1)
			w.flush()
			w.advance(499 * time.Millisecond)
			if log := w.flush(); log != "" {
				t.Fatalf("before the deadline, with no offer in hand:\n%s", log)
			}
			w.advance(time.Millisecond)
			st := j.p.Status()
			if w.now.Sub(asked) != 500*time.Millisecond || j.p.round != nil || st.Code != ReasonNotPlaced {
				t.Fatalf("at the deadline: %s (round under way: %t)", describeStatus(st), j.p.round != nil)
			}
			for _, o := range st.Asked {
				if o.Provider == "slow" && (o.Reason != ReasonNoAnswer || o.Detail != "no offer before the deadline") {
					t.Errorf("slow reads %s (%q), want no answer before the deadline", o.Reason, o.Detail)
				}
			}
		})
	}
}

// TestHedgeUndoneWhenASlotReturns: a round hedging for the one slot it
// places waits to its deadline again when another slot loses its lease
// meanwhile and is pending again: its one offer no longer fills the slots
// pending, and both are placed by the offers that come after the grace.
func TestHedgeUndoneWhenASlotReturns(t *testing.T) {
	w := fourFrench(t)
	job, err := testJob("j", frenchJob+"count: 2\n", "requester")
	if err != nil {
		t.Fatal(err)
	}
	j := w.submit("j", Config{D: 2}, job, 1)
	settle(t, w, j)
	lose := func(i int) {
		sl := j.p.Status().Slots[i]
		p := w.provider(sl.Provider)
		if !w.endLease(p, sl.LeaseID, sl.Epoch) {
			t.Fatalf("slot %d: no lease on %s", i, sl.Provider)
		}
		w.step(j, ResultReceived{Provider: p.name, LeaseID: sl.LeaseID, Epoch: sl.Epoch,
			State: pb.LeaseState_LEASE_STATE_FAILED, ExitCode: -1, Code: pb.Code_CODE_RUN_LOST})
	}
	// Slot 1's run dies with its provider: a round places it again.
	lose(1)
	w.deliverTo("dht", -1)
	var asked []string
	for _, m := range w.queue {
		if _, ok := m.action.(RequestOffer); ok {
			asked = append(asked, m.to)
		}
	}
	if len(asked) != 2 {
		t.Fatalf("asked %v, want two candidates", asked)
	}
	start := w.now
	w.flush()
	// The first offer after 100 ms: a grace to 200 ms.
	w.advance(100 * time.Millisecond)
	w.deliverTo(asked[0], -1)
	// At 150 ms slot 0's run dies too: two slots pending, one offer.
	w.advance(50 * time.Millisecond)
	lose(0)
	w.advance(150 * time.Millisecond)
	if log := w.flush(); strings.Contains(log, "send-lease") {
		t.Fatalf("decided within %s, with one offer for two slots:\n%s", w.now.Sub(start), log)
	}
	// At 300 ms, past the grace, the second offer comes: both are placed.
	w.deliverTo(asked[1], -1)
	w.deliverAll()
	st := j.p.Status()
	if st.State != JobRunning || st.Slots[0].Epoch != 2 || st.Slots[1].Epoch != 2 {
		t.Fatalf("after both offers: %s, want both slots running under epoch 2\n%s", describeStatus(st), w.flush())
	}
}

// TestFillable: a round's offers fill its pending slots when there are as
// many, and the replicas of each instance can have distinct operators, none
// that runs one of its replicas already.
func TestFillable(t *testing.T) {
	offers := func(ops ...string) []Offer {
		var os []Offer
		for i, op := range ops {
			os = append(os, Offer{Provider: fmt.Sprintf("p%d", i), Labels: NewLabels(Label{LabelOperator, op})})
		}
		return os
	}
	for _, tt := range []struct {
		name    string
		spec    string
		running []string // the operator of each slot running, from the first
		ops     []string
		want    bool
	}{
		{"one slot", "", nil, []string{"alpha"}, true},
		{"one slot, no offer", "", nil, nil, false},
		{"count, one operator", "count: 2\n", nil, []string{"alpha", "alpha"}, true},
		{"count, too few", "count: 3\n", nil, []string{"alpha", "beta"}, false},
		{"replicas, one operator", "replicas: 2\n", nil, []string{"alpha", "alpha"}, false},
		{"replicas, two operators", "replicas: 2\n", nil, []string{"alpha", "alpha", "beta"}, true},
		{"replica lost, its operator's sibling", "replicas: 2\n", []string{"alpha"}, []string{"alpha", "alpha"}, false},
		{"replica lost, another operator", "replicas: 2\n", []string{"alpha"}, []string{"alpha", "beta"}, true},
		{"instances, one operator short", "count: 2\nreplicas: 2\n", nil, []string{"alpha", "alpha", "alpha", "beta"}, false},
		{"instances, two by two", "count: 2\nreplicas: 2\n", nil, []string{"alpha", "beta", "alpha", "beta"}, true},
		// The first instance takes beta and gamma, the second alpha, and
		// needs beta: the first gives it up for the other alpha.
		{"instances, an exchange", "count: 2\nreplicas: 2\n", nil, []string{"beta", "gamma", "alpha", "alpha"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			job, err := testJob("j", frenchJob+tt.spec, "requester")
			if err != nil {
				t.Fatal(err)
			}
			p := NewPlacement(Config{}, job, [32]byte{})
			for i, op := range tt.running {
				p.slots[i].state = SlotRunning
				p.slots[i].offer = Offer{Provider: "r" + op, Labels: NewLabels(Label{LabelOperator, op})}
			}
			if got := p.fillable(offers(tt.ops...)); got != tt.want {
				t.Fatalf("offers of %v fill the slots pending: %t, want %t", tt.ops, got, tt.want)
			}
		})
	}
}
