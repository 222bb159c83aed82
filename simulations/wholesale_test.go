package simulations

import (
	"math"
	"strings"
	"testing"

	"github.com/cuivre/cuivre/scheduler"
)

// wholesaleDoc is a site of 16 CPUs that slices half of its capacity to two
// retailers (4 CPUs each) and retails the rest itself, under a demand of
// about four times its capacity: every slice and the site's own retail
// fill up. Retailer b prices above every job's ceiling, so it runs nothing.
func wholesaleDoc(retail string) string {
	return lines(
		"duration: 10m",
		"drain: 10m",
		"network: {regions: [a], rtt_ms: [[2]]}",
		"scheduler: {heartbeat_interval: 1m}",
		"classes:",
		"  - name: site",
		"    count: 1",
		`    capacity: {cpu: "16", memory: 64Gi}`,
		`    pricing: {currency: EUR, cpu_per_hour: "0.04", load_factor_percent: 100}`,
		"    subsidy: 0.5",
		"    wholesale:",
		`      tariff: {currency: EUR, cpu_per_hour: "0.036", memory_gib_per_hour: "0.0036"}`,
		"      share: 0.5",
		"      retail: "+retail,
		"      retailers:",
		`        - {name: a, pricing: {currency: EUR, cpu_per_hour: "0.03"}}`,
		`        - {name: b, pricing: {currency: EUR, cpu_per_hour: "1"}}`,
		"workload:",
		"  arrivals: {rate: 1}",
		`  sizes: [{cpu: "1", memory: 1Gi}]`,
		"  duration: {dist: fixed, mean: 1m}",
		`  ceilings: [{currency: EUR, cpu_per_hour: "0.5"}]`,
	)
}

// wholesaleScenario parses wholesaleDoc.
func wholesaleScenario(t *testing.T, retail string) *Scenario {
	t.Helper()
	sc, err := ParseScenario("w.yaml", []byte(wholesaleDoc(retail)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestParseWholesale(t *testing.T) {
	sc := wholesaleScenario(t, "true")
	w := sc.Classes[0].Wholesale
	if w == nil || w.Share != 0.5 || !w.Retail || len(w.Retailers) != 2 || w.RetailerCount() != 2 || w.Retailers[1].Count != 1 {
		t.Fatalf("wholesale %+v", w)
	}
	if want := (scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 10_000, MemoryNanosPerGiBSecond: 1_000}); w.Tariff != want {
		t.Errorf("tariff %+v, want %+v", w.Tariff, want)
	}
	if got := w.Slice(sc.Classes[0].Capacity); got != (scheduler.Resources{CPUMillis: 4000, MemoryBytes: 16 << 30}) {
		t.Errorf("slice %+v, want 4 CPUs and 16 GiB", got)
	}
}

func TestParseWholesaleErrors(t *testing.T) {
	base := wholesaleDoc("false")
	for _, c := range []struct{ name, from, to, want string }{
		{"no retailers", "      retailers:\n        - {name: a, pricing: {currency: EUR, cpu_per_hour: \"0.03\"}}\n        - {name: b, pricing: {currency: EUR, cpu_per_hour: \"1\"}}",
			"      retailers: []", "classes[0].wholesale.retailers: empty: give at least one retailer"},
		{"no retailer key", "      retailers:\n        - {name: a, pricing: {currency: EUR, cpu_per_hour: \"0.03\"}}\n        - {name: b, pricing: {currency: EUR, cpu_per_hour: \"1\"}}",
			"", "classes[0].wholesale.retailers: missing: give at least one retailer"},
		{"share past capacity", "share: 0.5", "share: 1.25", "w.yaml:13:7: classes[0].wholesale.share: 1.25: the slices would sum to 125% of the site's capacity"},
		{"zero share", "share: 0.5", "share: 0", "classes[0].wholesale.share: 0: use a number above 0"},
		{"tariff without currency", `tariff: {currency: EUR, `, `tariff: {`, "classes[0].wholesale.tariff.currency: missing: give the currency"},
		{"tariff in another currency", `tariff: {currency: EUR`, `tariff: {currency: USD`, "classes[0].wholesale.tariff.currency: USD, the site prices in EUR"},
		{"tariff with a load factor", `memory_gib_per_hour: "0.0036"}`, `memory_gib_per_hour: "0.0036", load_factor_percent: 50}`, "classes[0].wholesale.tariff.load_factor_percent: a tariff is one price for every retailer"},
		{"no tariff", `      tariff: {currency: EUR, cpu_per_hour: "0.036", memory_gib_per_hour: "0.0036"}` + "\n", "", "classes[0].wholesale.tariff: missing: give the price of a slice"},
		{"retailer in another currency", `{name: b, pricing: {currency: EUR`, `{name: b, pricing: {currency: USD`, "classes[0].wholesale.retailers[1].pricing.currency: USD, the tariff is in EUR"},
		{"retailer named as a class", "{name: b,", "{name: site,", `classes[0].wholesale.retailers[1].name: "site" is a class's name too`},
		{"retailers named alike", "{name: b,", "{name: a,", `classes[0].wholesale.retailers[1].name: duplicate retailer "a"`},
		{"retailer without prices", `{name: b, pricing: {currency: EUR, cpu_per_hour: "1"}}`, `{name: b}`, "classes[0].wholesale.retailers[1].pricing: missing"},
		{"retailer count 0", "{name: b,", "{name: b, count: 0,", "classes[0].wholesale.retailers[1].count: 0 is out of range"},
		{"retail not a bool", "retail: false", "retail: 1", "classes[0].wholesale.retail: want true or false"},
		{"unknown key", "share: 0.5", "shares: 0.5", "classes[0].wholesale.shares: unknown"},
		{"slices of nothing", "share: 0.5", "share: 0.0001", "classes[0].wholesale: 2 retailers share 0% of cpu 16000m, memory 64Gi, scratch 0: each slice would hold cpu 0m"},
		{"site with churn", "    subsidy: 0.5", "    subsidy: 0.5\n    churn: {session: 1h}", "classes[0].churn: a site that sells slices does not churn in this model"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.from) {
				t.Fatalf("%q is not in the document", c.from)
			}
			s, err := ParseScenario("w.yaml", []byte(strings.Replace(base, c.from, c.to, 1)), nil)
			if err == nil {
				t.Fatalf("no error, parsed %+v", s)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n%v\nwant it to contain\n%s", err, c.want)
			}
		})
	}
}

// TestWholesaleSlices runs a site that retails half its capacity and
// slices the other half to two retailers, checking after every event, from
// the simulator's runs and the site's own market: each retailer's leases
// hold no more than its slice, the site's own retail never more than what
// it has not sliced, and the site's market holds exactly the runs on its
// hardware. Under a demand past its capacity, retailer a fills its slice
// while the site fills the rest: the hardware holds more than the unsliced
// part, which it could not if a retailer's leases were not made as the
// grantee's (the site's market would then count them as its own retail,
// kept off the slices).
func TestWholesaleSlices(t *testing.T) {
	sc := wholesaleScenario(t, "true")
	s, err := newSim(sc, nil, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	const site, a, b = 0, 1, 2
	if s.sc.Classes[s.providers[a].class].Name != "a" || s.retail[a] == nil || s.retail[b] == nil || s.retail[site] != nil {
		t.Fatalf("providers %+v, retailers %v", s.providers, s.retail)
	}
	if len(s.providers[site].market.Slices()) != 2 {
		t.Fatalf("site's slices %+v, want 2", s.providers[site].market.Slices())
	}
	held := func(p int) uint64 {
		var cpu uint64
		for _, r := range s.providers[p].runs {
			cpu += r.cpu
		}
		return cpu
	}
	const slice, unsliced = 4000, 8000
	var peakOwn, peakA, peakHW uint64
	end := int64(s.sliceEnd())
	for s.q.len() > 0 && !s.stopped {
		s.next()
		own, ra, rb := held(site), held(a), held(b)
		if hw := s.providers[site].market.State().Committed.CPUMillis; hw != own+ra+rb {
			t.Fatalf("at %v: the site's market holds %dm, its runs and its retailers' %dm", s.now, hw, own+ra+rb)
		}
		if ra > slice || rb > slice {
			t.Fatalf("at %v: retailers hold %dm and %dm, past their slices of %dm", s.now, ra, rb, slice)
		}
		if s.now < end && own > unsliced {
			t.Fatalf("at %v: the site's own retail holds %dm, past the %dm it has not sliced", s.now, own, unsliced)
		}
		peakOwn, peakA, peakHW = max(peakOwn, own), max(peakA, ra), max(peakHW, own+ra+rb)
	}
	if peakA != slice || peakOwn != unsliced || peakHW <= unsliced {
		t.Errorf("peaks: retailer a %dm, the site's own retail %dm, its hardware %dm: want a's slice, the unsliced part, more than it", peakA, peakOwn, peakHW)
	}
	if s.providers[b].leases != 0 {
		t.Errorf("retailer b, above every ceiling, took %d leases", s.providers[b].leases)
	}
}

// TestWholesaleTariff: each retailer pays the tariff for its whole slice,
// over the slice's period, whether it ran anything or not; the site earns
// it, public funds paying the subsidy's share; the site's utilisation
// counts the work on its slices.
func TestWholesaleTariff(t *testing.T) {
	sc := wholesaleScenario(t, "false")
	r, err := Run(sc, nil, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 4 vCPUs at 0.036 and 16 GiB at 0.0036 an hour, over the 10 minutes
	// of arrivals and a placement's deadline.
	hours := (sc.Duration + scheduler.Config{}.WithDefaults().PlacementTimeout).Hours()
	tariff := (4*0.036 + 16*0.0036) * hours
	const sub = 0.5
	site, a, b := r.Providers[0], r.Providers[1], r.Providers[2]
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-6 }
	if !a.Retailer || !b.Retailer || a.Site != 0 || site.Retailer {
		t.Fatalf("providers %+v", r.Providers)
	}
	if !near(a.Wholesale, tariff*(1-sub)) || !near(b.Wholesale, tariff*(1-sub)) || !near(site.Wholesale, 2*tariff*(1-sub)) {
		t.Errorf("tariff paid by a %g, b %g, to the site %g: want %g each", a.Wholesale, b.Wholesale, site.Wholesale, tariff*(1-sub))
	}
	if b.Leases != 0 || b.Revenue != 0 || site.Leases != 0 || site.Revenue != 0 {
		t.Errorf("b %d leases, %g revenue; the site, not retailing, %d leases, %g revenue: want none", b.Leases, b.Revenue, site.Leases, site.Revenue)
	}
	if !near(site.Subsidy, 2*tariff*sub) {
		t.Errorf("subsidy %g, want the public's share of both tariffs, %g", site.Subsidy, 2*tariff*sub)
	}
	f := PublicOf(r)
	if !near(f.Subsidy, 2*tariff*sub) || !near(f.Wholesale, 2*tariff*(1-sub)) || !near(f.WorkShare, 1) || f.CapacityShare != 1 {
		t.Errorf("public figures %+v", f)
	}
	if want := a.BusyCPUSecs / (16 * site.UpSecs); a.BusyCPUSecs == 0 || !near(f.Utilisation, want) {
		t.Errorf("the site's utilisation %g, want retailer a's work over its hardware, %g", f.Utilisation, want)
	}
	rf := RetailersOf(r)
	if len(rf) != 2 || rf[1].Name != "b" || !near(rf[1].Margin, -tariff*(1-sub)) || !near(rf[0].Margin, a.Revenue-a.Wholesale) || !near(rf[0].WorkShare, 1) {
		t.Errorf("retailers %+v", rf)
	}
}

// TestWholesaleScenario runs each variant of the shipped wholesale.yaml
// for two minutes of arrivals: every variant places its jobs, and in those
// that sell slices every retailer sells, the site's work is its retailers',
// and the site earns its tariff.
func TestWholesaleScenario(t *testing.T) {
	var sets []SweepParam
	for _, s := range []string{"duration=2m", "drain=10m"} {
		p, err := ParseSet(s)
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, p)
	}
	sc, err := LoadScenarioSet("scenarios/wholesale.yaml", sets)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := RunAll(sc, RunOptions{Seed: 1, Runs: 1, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		st, f := summarise(r), PublicOf(r)
		if st.placedPct < 90 || !(f.UtilArrivals > 0) {
			t.Errorf("%s: %.1f%% placed, the site's utilisation while jobs arrive %g", r.Variant, st.placedPct, f.UtilArrivals)
		}
		rf := RetailersOf(r)
		if !strings.HasPrefix(r.Variant, "wholesale") {
			if len(rf) != 0 || f.Wholesale != 0 {
				t.Errorf("%s: retailers %+v, wholesale income %g", r.Variant, rf, f.Wholesale)
			}
			continue
		}
		if len(rf) != 4 || f.Wholesale <= 0 {
			t.Fatalf("%s: retailers %+v, wholesale income %g", r.Variant, rf, f.Wholesale)
		}
		for _, x := range rf {
			if x.WorkShare <= 0 || x.Tariff <= 0 {
				t.Errorf("%s: retailer %+v sold nothing or paid nothing", r.Variant, x)
			}
		}
		if r.Providers[0].Class != "site" || r.Providers[0].Leases != 0 {
			t.Errorf("%s: the site, not retailing, took %d leases itself", r.Variant, r.Providers[0].Leases)
		}
	}
}

// TestWholesaleOmniscient: the omniscient baseline, which commits on the
// providers' markets directly, is refused for a scenario with slices.
func TestWholesaleOmniscient(t *testing.T) {
	sc := wholesaleScenario(t, "false")
	sc.Scheduler.Placement = PlacementOmniscient
	if _, err := Run(sc, nil, 1, nil); err == nil || !strings.Contains(err.Error(), "omniscient") {
		t.Errorf("error %v, want the omniscient baseline refused", err)
	}
}
