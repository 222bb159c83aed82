package simulations

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/specyaml"
	"github.com/cuivre/cuivre/scheduler"
)

// exampleScenario uses every key of a scenario file.
const exampleScenario = `name: small
description: A thousand providers in four regions, one requester.
seed: 7
runs: 3
duration: 10m          # Go durations everywhere ("500ms", "1h30m")
drain: 1h
sample_every: 5s
network:
  regions: [fr-par, de-fra, es-mad, pl-waw]
  rtt_ms:              # milliseconds, floats allowed, square symmetric matrix
    - [1, 10, 30, 25]
    - [10, 1, 25, 15.5]
    - [30, 25, 1, 40]
    - [25, 15.5, 40, 1]
  jitter: 0.1
  loss: 0.001
discovery: {k: 16, alpha: 3, beta: 2, requesters: server, hop_service: 100us, dial: {mean: 1ms, sigma: 0.5}, dial_round_trips: 1, record_ttl: 10m, cache_ttl: 5s}
scheduler:
  policy: balanced
  placement: cuivre
  d: 2
  offer_timeout: 500ms
  lease_timeout: 2s
  start_timeout: 1m
  heartbeat_interval: 5s
  missed_heartbeats: 3
  max_attempts: 5
  backoff: 100ms
  max_backoff: 5s
  max_reschedules: 3
  shards: 2
  dead_for: 30s
requesters: {count: 4, regions: {fr-par: 1, de-fra: 1}}
classes:
  - name: sme
    count: 1000
    regions: {fr-par: 2, de-fra: 1}
    operators: 0
    labels: {jurisdiction: eu, certification: iso27001}
    capacity: {cpu: "8", memory: 32Gi, scratch: 100Gi}
    pricing: {currency: EUR, cpu_per_hour: "0.04", memory_gib_per_hour: "0.005", egress_per_gib: "0.01", load_factor_percent: 100}
    subsidy: 0.5
    service_time: 300us
    start_delay: 20ms
    churn: {session: 6h, downtime: 10m}
  - name: cloud
    count: 2
    operators: 1
    capacity: {cpu: 500m, memory: 2Gi}
    pricing: {currency: EUR, cpu_per_hour: 0.1}
    churn: {session: 1h, fast: 0.25}
workload:
  jobs: 10000
  arrivals: {process: bursty, load: 0.8, burst_factor: 3, burst_on: 30s, burst_off: 5m}
  sizes:
    - {weight: 3, cpu: "1", memory: 512Mi}
    - {weight: 1, cpu: "4", memory: 4Gi, scratch: 1Gi}
  duration: {dist: lognormal, mean: 60s, sigma: 1.5}
  constraints:
    - {weight: 9}
    - {weight: 1, jurisdiction: [fr, de, fr]}
    - {weight: 1, not: {certification: [none]}, region: fr-par}
  ceilings:
    - {weight: 1}
    - {weight: 1, currency: EUR, cpu_per_hour: "0.06"}
  timeout_factor: 2
  failure_rate: 0.01
variants:
  - {name: closed, exclude: [sme]}
  - {name: open}
  - {name: cheapest, policy: cheapest, d: 3, load: 0.9}
  - {name: omniscient, placement: omniscient}
  - {name: sparrow, placement: sparrow, d: 3}
  - {name: bigger, set: {classes.sme.count: 20}}
`

func TestParseScenarioExample(t *testing.T) {
	s, err := ParseScenario("small.yaml", []byte(exampleScenario), nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"name", s.Name, "small"},
		{"seed", s.Seed, uint64(7)},
		{"runs", s.Runs, 3},
		{"duration", s.Duration, 10 * time.Minute},
		{"sample every", s.SampleEvery, 5 * time.Second},
		{"rtt row 1", s.Network.RTT[1], []time.Duration{10 * ms, 1 * ms, 25 * ms, 15500 * time.Microsecond}},
		{"loss", s.Network.Loss, 0.001},
		{"discovery", s.Discovery, Discovery{K: 16, Alpha: 3, Beta: 2, Requesters: ModeServer, HopService: Cost{Mean: 100 * time.Microsecond}, Dial: Cost{Mean: ms, Sigma: 0.5},
			DialRoundTrips: 1, RecordTTL: 10 * time.Minute, CacheTTL: 5 * time.Second}},
		{"policy", s.Scheduler.PolicyName, "balanced"},
		{"config policy", s.Scheduler.Config.Policy.Name, "balanced"},
		{"heartbeat", s.Scheduler.Config.HeartbeatInterval, 5 * time.Second},
		{"shards", s.Scheduler.Config.Shards, 2},
		{"requesters", s.Requesters, Requesters{Count: 4, Regions: Weights{{"fr-par", 1}, {"de-fra", 1}}, BatchDelay: DefaultBatchDelay}},
		{"class regions", s.Classes[0].Regions, Weights{{"fr-par", 2}, {"de-fra", 1}}},
		{"class labels", s.Classes[0].Labels, scheduler.Labels{{Key: "certification", Value: "iso27001"}, {Key: "jurisdiction", Value: "eu"}}},
		{"capacity", s.Classes[0].Capacity, scheduler.Resources{CPUMillis: 8000, MemoryBytes: 32 << 30, ScratchBytes: 100 << 30}},
		// 0.04 a CPU-hour is 40_000_000 nano-units / 3600 s = 11111.1;
		// 0.005 a GiB-hour is 1388.9: rounded down, as the daemon's, to 1388.
		{"pricing", s.Classes[0].Pricing, scheduler.PricePolicy{
			Base:               scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 11111, MemoryNanosPerGiBSecond: 1388, EgressNanosPerGiB: 10_000_000},
			LoadFactorPermille: 1000,
		}},
		{"subsidy", s.Classes[0].Subsidy, 0.5},
		{"service time", s.Classes[0].ServiceTime, Cost{Mean: 300 * time.Microsecond}},
		{"churn", s.Classes[0].Churn, Churn{Session: 6 * time.Hour, Downtime: 10 * time.Minute}},
		{"cloud cpu", s.Classes[1].Capacity.CPUMillis, uint64(500)},
		{"cloud price", s.Classes[1].Pricing.Base.CPUNanosPerSecond, uint64(27777)}, // 0.1 an hour is 27777.8 a second
		{"cloud regions (uniform)", s.Classes[1].Regions, Weights{{"fr-par", 1}, {"de-fra", 1}, {"es-mad", 1}, {"pl-waw", 1}}},
		{"cloud churn (downtime session/10, fast 500ms)", s.Classes[1].Churn, Churn{Session: time.Hour, Downtime: 6 * time.Minute, Fast: 0.25, FastDowntime: 500 * ms}},
		{"dead for", s.Scheduler.DeadFor, 30 * time.Second},
		{"arrivals", s.Workload.Arrivals, Arrivals{Process: "bursty", Load: 0.8, BurstFactor: 3, BurstOn: 30 * time.Second, BurstOff: 5 * time.Minute}},
		{"sizes", s.Workload.Sizes, []Size{
			{Weight: 3, Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 512 << 20}},
			{Weight: 1, Resources: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30, ScratchBytes: 1 << 30}},
		}},
		{"run time", s.Workload.Duration, Dist{Kind: "lognormal", Mean: time.Minute, Sigma: 1.5}},
		{"constraints", s.Workload.Constraints, []ConstraintMix{
			{Weight: 9},
			{Weight: 1, Selectors: []scheduler.Selector{{Key: "jurisdiction", Op: pb.Operator_OPERATOR_IN, Values: []string{"de", "fr"}}}},
			{Weight: 1, Selectors: []scheduler.Selector{
				{Key: "certification", Op: pb.Operator_OPERATOR_NOT_IN, Values: []string{"none"}},
				{Key: "region", Op: pb.Operator_OPERATOR_IN, Values: []string{"fr-par"}},
			}},
		}},
		{"ceilings", s.Workload.Ceilings, []Ceiling{{Weight: 1}, {Weight: 1, PerCPUHour: scheduler.Amount{Currency: "EUR", Nanos: 60_000_000}}}},
		{"failure rate", s.Workload.FailureRate, 0.01},
		{"placement", s.Scheduler.Placement, PlacementCuivre},
		{"variants", s.Variants, []Variant{{Name: "closed", Exclude: []string{"sme"}}, {Name: "open"}, {Name: "cheapest", Policy: "cheapest", D: 3, Load: 0.9},
			{Name: "omniscient", Placement: PlacementOmniscient}, {Name: "sparrow", D: 3, Placement: PlacementSparrow},
			{Name: "bigger", Set: []VariantSet{{Path: "classes.sme.count", Value: "20"}}}}},
	} {
		if diff := cmp.Diff(c.want, c.got, cmpopts.IgnoreUnexported(Variant{}, VariantSet{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

// lines joins document lines, so that a test can count them: the n-th
// argument is line n.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

// minimal is the smallest valid scenario.
var minimal = []string{
	"duration: 10m",                         // 1
	"network:",                              // 2
	"  regions: [a, b]",                     // 3
	"  rtt_ms: [[1, 2], [2, 1]]",            // 4
	"classes:",                              // 5
	"  - name: c",                           // 6
	"    count: 10",                         // 7
	`    capacity: {cpu: "4", memory: 8Gi}`, // 8
	`    pricing: {currency: EUR, cpu_per_hour: "0.04"}`, // 9
	"workload:",                          // 10
	"  arrivals: {rate: 1}",              // 11
	`  sizes: [{cpu: "1", memory: 1Gi}]`, // 12
	"  duration: {mean: 1m}",             // 13
}

// doc is minimal with some lines replaced (by line number, from 1) and
// others appended.
func doc(replace map[int]string, more ...string) string {
	l := append([]string(nil), minimal...)
	for n, s := range replace {
		l[n-1] = s
	}
	return lines(append(l, more...)...)
}

func TestParseScenarioDefaults(t *testing.T) {
	s, err := ParseScenario("dir/tiny.yaml", []byte(doc(nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	uniform := Weights{{"a", 1}, {"b", 1}}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"name from the file", s.Name, "tiny"},
		{"seed", s.Seed, uint64(1)},
		{"runs: the command's", s.Runs, 0},
		{"drain", s.Drain, time.Hour},
		{"sample every: at least 1s", s.SampleEvery, 3 * time.Second},
		// The daemon's defaults, from the same constants: 10m and 10s.
		{"discovery", s.Discovery, Discovery{K: DefaultK, Alpha: DefaultAlpha, Beta: DefaultBeta, Requesters: ModeClient, DialRoundTrips: DefaultDialRoundTrips,
			RecordTTL: scheduler.DefaultProvideValidity, CacheTTL: scheduler.DefaultCandidateTTL}},
		{"heartbeat", s.Scheduler.Config.WithDefaults().HeartbeatInterval, scheduler.DefaultHeartbeatInterval},
		{"policy", s.Scheduler.PolicyName, "balanced"},
		{"config policy", s.Scheduler.Config.Policy.Name, "balanced"},
		{"placement", s.Scheduler.Placement, PlacementCuivre},
		// Without max_attempts, a job is tried until its placement timeout.
		{"max attempts: none", s.Scheduler.Config.WithDefaults().MaxAttempts, 0},
		{"requesters", s.Requesters, Requesters{Count: 1, Regions: uniform, BatchDelay: DefaultBatchDelay}},
		{"class regions", s.Classes[0].Regions, uniform},
		{"churn", s.Classes[0].Churn, Churn{}},
		{"dead for: the daemon's", s.Scheduler.DeadFor, 10 * time.Second},
		{"arrivals", s.Workload.Arrivals, Arrivals{Process: "poisson", Rate: 1, BurstFactor: 5, BurstOn: time.Minute, BurstOff: 10 * time.Minute}},
		{"size weight", s.Workload.Sizes[0].Weight, 1.0},
		{"run time", s.Workload.Duration, Dist{Kind: "exponential", Mean: time.Minute}},
		{"timeout factor", s.Workload.TimeoutFactor, 2.0},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}

	s, err = ParseScenario("x.yaml", []byte(doc(map[int]string{1: "duration: 10s", 13: "  duration: {dist: lognormal, mean: 1m}"})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.SampleEvery != time.Second || s.Workload.Duration.Sigma != 1 {
		t.Errorf("sample every %v, sigma %v: want 1s and 1", s.SampleEvery, s.Workload.Duration.Sigma)
	}
}

func TestParseScenarioErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  string
		want []string // each in the error
	}{
		{"syntax", "duration: [10m\n", []string{"s.yaml:"}},
		{"empty", "", []string{"s.yaml: empty scenario"}},
		{"not a mapping", "- 1\n", []string{"s.yaml:1:1: want a mapping"}},
		{"alias", doc(map[int]string{1: "duration: &d 10m"}, "drain: *d"), []string{"s.yaml:14:8: alias *d"}},
		{"unknown field", doc(nil, "sampel_every: 5s"), []string{"s.yaml:14:1: sampel_every: unknown field: did you mean sample_every?"}},
		{"unknown nested field", doc(map[int]string{11: "  arrivals: {rate: 1, proces: poisson}"}),
			[]string{"s.yaml:11:23: workload.arrivals.proces: unknown field: did you mean process?"}},
		{"duplicate field", doc(nil, "duration: 5m"), []string{"s.yaml:14:1: duration: duplicate field, first set at line 1"}},
		{"wrong type", doc(map[int]string{7: "    count: ten"}), []string{"s.yaml:7:5: classes[0].count: want a whole number, got the string \"ten\""}},
		{"zero count", doc(map[int]string{7: "    count: 0"}), []string{"s.yaml:7:5: classes[0].count: 0 is out of range"}},
		{"negative duration", doc(nil, "drain: -1h"), []string{"s.yaml:14:1: drain: -1h is negative"}},
		{"zero duration", doc(map[int]string{1: "duration: 0s"}), []string{"s.yaml:1:1: duration: 0s: use a positive duration"}},
		{"bad duration", doc(map[int]string{1: "duration: 600"}), []string{`s.yaml:1:1: duration: bad duration "600"`}},
		{"duration missing", lines(minimal[1:]...), []string{"s.yaml:1:1: duration: missing"}},
		{"no classes key", lines(append(minimal[:4:4], minimal[9:]...)...), []string{"s.yaml:1:1: classes: missing"}},
		{"empty classes", doc(map[int]string{5: "classes: []", 6: "#", 7: "#", 8: "#", 9: "#"}), []string{"s.yaml:5:1: classes: empty"}},
		{"rtt rows", doc(map[int]string{4: "  rtt_ms: [[1, 2]]"}), []string{"s.yaml:4:3: network.rtt_ms: 1 rows, want 2 (one per region)"}},
		{"rtt row length", doc(map[int]string{4: "  rtt_ms: [[1, 2], [2]]"}), []string{"s.yaml:4:20: network.rtt_ms[1]: row has 1 entries, want 2 (one per region)"}},
		{"rtt symmetric", doc(map[int]string{4: "  rtt_ms: [[1, 2], [3, 1]]"}), []string{"s.yaml:4:21: network.rtt_ms[1][0]: 3ms here but 2ms at network.rtt_ms[0][1] (line 4): the matrix must be symmetric"}},
		{"rtt negative", doc(map[int]string{4: "  rtt_ms: [[1, -2], [-2, 1]]"}), []string{"s.yaml:4:16: network.rtt_ms[0][1]: -2 ms is out of range"}},
		{"rtt type", doc(map[int]string{4: "  rtt_ms: [[1, 2ms], [2, 1]]"}), []string{`s.yaml:4:16: network.rtt_ms[0][1]: want a number, got the string "2ms"`}},
		{"duplicate region", doc(map[int]string{3: "  regions: [a, a]"}), []string{`s.yaml:3:16: network.regions[1]: duplicate region "a"`}},
		{"upper-case region", doc(map[int]string{3: "  regions: [a, B]"}), []string{`s.yaml:3:16: network.regions[1]: region "B": use lower case`}},
		{"unknown region in weights", doc(nil, "requesters: {regions: {a: 1, c: 2}}"), []string{`s.yaml:14:30: requesters.regions.c: unknown region "c": the regions are a, b`}},
		{"weight not positive", doc(nil, "requesters: {regions: {a: 0}}"), []string{"s.yaml:14:24: requesters.regions.a: weight 0: use a weight above 0"}},
		{"loss", doc(map[int]string{4: "  rtt_ms: [[1, 2], [2, 1]]\n  loss: 1"}), []string{"s.yaml:5:3: network.loss: 1 is out of range: use a fraction from 0 up to, not including, 1"}},
		{"jitter", doc(map[int]string{4: "  rtt_ms: [[1, 2], [2, 1]]\n  jitter: -0.1"}), []string{"s.yaml:5:3: network.jitter: -0.1 is out of range"}},
		{"subsidy of a class", doc(map[int]string{9: `    pricing: {currency: EUR, cpu_per_hour: "0.04"}` + "\n    subsidy: 1.0"}), []string{"s.yaml:10:5: classes[0].subsidy: 1 is out of range"}},
		{"failure rate", doc(nil, "  failure_rate: 1.5"), []string{"s.yaml:14:3: workload.failure_rate: 1.5 is out of range"}},
		{"unknown policy", doc(nil, "scheduler: {policy: fastest}"), []string{`s.yaml:14:13: scheduler.policy: unknown ranking policy "fastest": use one of balanced, cheapest, least-loaded, best-fit`}},
		{"unknown dist", doc(map[int]string{13: "  duration: {dist: normal, mean: 1m}"}), []string{`s.yaml:13:14: workload.duration.dist: unknown dist "normal": use one of exponential, fixed, uniform, lognormal`}},
		{"unknown process", doc(map[int]string{11: "  arrivals: {process: poison, rate: 1}"}), []string{`s.yaml:11:14: workload.arrivals.process: unknown process "poison": did you mean poisson?`}},
		{"burst on poisson", doc(map[int]string{11: "  arrivals: {rate: 1, burst_factor: 2}"}), []string{"s.yaml:11:23: workload.arrivals.burst_factor: only for process: bursty"}},
		{"rate of a sequential workload", doc(map[int]string{11: "  arrivals: {process: sequential, rate: 1}"}),
			[]string{"s.yaml:11:3: workload.arrivals: a sequential workload submits each job once the last has ended: remove the rate or load"}},
		{"quantiles decreasing", doc(nil, "requesters: {sync: {quantiles: [2ms, 1ms]}}"), []string{"s.yaml:14:38: requesters.sync.quantiles[1]: 1ms is below the quantile before it"}},
		{"quantiles and a mean", doc(nil, "requesters: {sync: {mean: 1ms, quantiles: [1ms, 2ms]}}"), []string{"requesters.sync.quantiles: a distribution is its quantiles, or a mean and a sigma: not both"}},
		{"one quantile", doc(nil, "requesters: {sync: {quantiles: [1ms]}}"), []string{"requesters.sync.quantiles: want a list of at least two durations"}},
		{"unknown DHT mode", doc(nil, "discovery: {requesters: both}"), []string{`discovery.requesters: unknown requesters "both": use one of client, server`}},
		{"sigma on exponential", doc(map[int]string{13: "  duration: {mean: 1m, sigma: 2}"}), []string{"s.yaml:13:24: workload.duration.sigma: only for dist: lognormal"}},
		{"duplicate class", lines(append(append(minimal[:9:9], `  - {name: c, count: 1, capacity: {cpu: 1, memory: 1Gi}, pricing: {currency: EUR}}`), minimal[9:]...)...),
			[]string{`s.yaml:10:6: classes[1].name: duplicate class "c", first at line 6`}},
		{"class name missing", doc(map[int]string{6: "  - count: 3", 7: "#"}), []string{"s.yaml:6:5: classes[0].name: missing"}},
		{"exclude unknown class", doc(nil, "variants: [{name: v, exclude: [d]}]"), []string{`s.yaml:14:32: variants[0].exclude[0]: unknown class "d": the classes are c`}},
		{"exclude every class", doc(nil, "variants: [{name: v, exclude: [c]}]"), []string{"s.yaml:14:22: variants[0].exclude: excludes every class"}},
		{"duplicate variant", doc(nil, "variants: [{name: v}, {name: v}]"), []string{`s.yaml:14:24: variants[1].name: duplicate variant "v", first at line 14`}},
		{"variant policy", doc(nil, "variants: [{name: v, policy: best}]"), []string{`s.yaml:14:22: variants[0].policy: unknown ranking policy "best"`}},
		{"neither rate nor load", doc(map[int]string{11: "  arrivals: {process: poisson}"}), []string{"s.yaml:11:3: workload.arrivals: neither a rate nor a load"}},
		{"both rate and load", doc(map[int]string{11: "  arrivals: {rate: 1, load: 0.5}"}), []string{"s.yaml:11:3: workload.arrivals: both a rate and a load"}},
		{"no arrivals", doc(map[int]string{11: "#"}), []string{"s.yaml:10:1: workload.arrivals: missing"}},
		{"no sizes", doc(map[int]string{12: "#"}), []string{"s.yaml:10:1: workload.sizes: missing"}},
		{"zero load", doc(map[int]string{11: "  arrivals: {load: 0}"}), []string{"s.yaml:11:14: workload.arrivals.load: 0: use a number above 0"}},
		{"size too big", doc(map[int]string{12: `  sizes: [{cpu: "1", memory: 1Gi}, {cpu: "8", memory: 1Gi}]`}),
			[]string{"s.yaml:12:36: workload.sizes[1]: cpu 8000m, memory 1Gi, scratch 0 fits no class's capacity"}},
		{"bad quantity", doc(map[int]string{8: `    capacity: {cpu: "4", memory: 8GB}`}), []string{`s.yaml:8:26: classes[0].capacity.memory: bad quantity "8GB"`}},
		{"bad cpu", doc(map[int]string{8: `    capacity: {cpu: four, memory: 8Gi}`}), []string{`s.yaml:8:16: classes[0].capacity.cpu: bad cpu "four"`}},
		{"no capacity memory", doc(map[int]string{8: `    capacity: {cpu: "4"}`}), []string{"s.yaml:8:5: classes[0].capacity.memory: missing"}},
		{"bad price", doc(map[int]string{9: `    pricing: {currency: EUR, cpu_per_hour: "-0.04"}`}), []string{`s.yaml:9:30: classes[0].pricing.cpu_per_hour: bad amount "-0.04": the amount must not be negative`}},
		{"price policy", doc(map[int]string{9: `    pricing: {currency: eur, cpu_per_hour: "0.04"}`}), []string{`s.yaml:9:15: classes[0].pricing.currency: base.currency "eur" is not a currency`}},
		{"price overflow", doc(map[int]string{9: `    pricing: {currency: EUR, egress_per_gib: "18446744073", load_factor_percent: 100}`}),
			[]string{"s.yaml:9:5: classes[0].pricing: base.egress_nanos_per_gib: 18446744073000000000 overflows"}},
		{"no currency", doc(map[int]string{9: `    pricing: {cpu_per_hour: "0.04"}`}), []string{"s.yaml:9:5: classes[0].pricing.currency: missing"}},
		{"renamed price", doc(map[int]string{9: `    pricing: {currency: EUR, cpu_hour: "0.04", load_factor: 1.0}`}), []string{
			`s.yaml:9:30: classes[0].pricing.cpu_hour: renamed, as in a node's config.yaml: write cpu_per_hour`,
			`s.yaml:9:48: classes[0].pricing.load_factor: renamed, as in a node's config.yaml: write load_factor_percent (100 for the 1.0 of before)`}},
		{"load factor finer than a permille", doc(map[int]string{9: `    pricing: {currency: EUR, cpu_per_hour: "0.04", load_factor_percent: 12.55}`}), []string{
			`s.yaml:9:52: classes[0].pricing.load_factor_percent: 12.55 is finer than a tenth of a percent: use at most 1 decimal`}},
		{"reserved label key", doc(map[int]string{7: "    count: 10\n    labels: {operator: x}"}), []string{"s.yaml:8:14: classes[0].labels.operator: operator is filled in by the simulator"}},
		{"bad label value", doc(map[int]string{7: "    count: 10\n    labels: {tier: gold plated}"}), []string{`s.yaml:8:20: classes[0].labels.tier: value "gold plated": character ' ' not allowed`}},
		{"bad label key", doc(map[int]string{7: "    count: 10\n    labels: {tier/2: gold, ti!er: gold}"}), []string{`s.yaml:8:28: classes[0].labels.ti!er: label key "ti!er": character '!' not allowed: use a-z, 0-9, '-', '_', '.' and '/'`}},
		// Upper case is refused, as protocol refuses it in a job, not lower-cased.
		{"upper-case label key", doc(map[int]string{7: "    count: 10\n    labels: {Tier: gold}"}), []string{`s.yaml:8:14: classes[0].labels.Tier: label key "Tier": use lower case`}},
		{"upper-case label value", doc(map[int]string{7: "    count: 10\n    labels: {jurisdiction: FR}"}), []string{`s.yaml:8:28: classes[0].labels.jurisdiction: value "FR": use lower case`}},
		{"slash in a label value", doc(map[int]string{7: "    count: 10\n    labels: {rack: b/2}"}), []string{`s.yaml:8:20: classes[0].labels.rack: value "b/2": character '/' not allowed: use a-z, 0-9, '-', '_' and '.'`}},
		{"upper-case constraint value", doc(nil, "  constraints: [{jurisdiction: [fr, DE]}]"), []string{`s.yaml:14:37: workload.constraints[0].jurisdiction[1]: value "DE": use lower case`}},
		{"bad constraint value", doc(nil, "  constraints: [{jurisdiction: [f r]}]"), []string{`s.yaml:14:33: workload.constraints[0].jurisdiction[0]: value "f r"`}},
		{"constraint weight typo", doc(nil, "  constraints: [{wieght: 2}]"), []string{"s.yaml:14:18: workload.constraints[0].wieght: unknown field: did you mean weight?"}},
		{"constraint unknown region", doc(nil, "  constraints: [{region: [c]}]"), []string{`s.yaml:14:27: workload.constraints[0].region[0]: unknown region "c"`}},
		{"ceiling currency unused", doc(nil, `  ceilings: [{currency: USD, cpu_per_hour: "1"}]`), []string{"s.yaml:14:15: workload.ceilings[0].currency: no class prices in USD, so no provider could ever take such a job: use EUR"}},
		{"ceiling without amount", doc(nil, `  ceilings: [{currency: EUR}]`), []string{"s.yaml:14:14: workload.ceilings[0].cpu_per_hour: missing"}},
		{"churn downtime alone", doc(map[int]string{7: "    count: 10\n    churn: {downtime: 1m}"}), []string{"s.yaml:8:13: classes[0].churn.downtime: a downtime without a session"}},
		{"fast restarts alone", doc(map[int]string{7: "    count: 10\n    churn: {fast: 0.5}"}), []string{"s.yaml:8:13: classes[0].churn.fast: a fast without a session"}},
		{"fast downtime without fast", doc(map[int]string{7: "    count: 10\n    churn: {session: 1m, fast_downtime: 1s}"}), []string{"s.yaml:8:26: classes[0].churn.fast_downtime: a fast_downtime without fast"}},
		{"fast share above 1", doc(map[int]string{7: "    count: 10\n    churn: {session: 1m, fast: 1.5}"}), []string{"s.yaml:8:26: classes[0].churn.fast: 1.5 is out of range: use a share from 0 to 1"}},
		{"zero runs", doc(nil, "runs: 0"), []string{"s.yaml:14:1: runs: 0 is out of range"}},
		{"dead_for zero", doc(nil, "scheduler: {dead_for: 0s}"), []string{"s.yaml:14:13: scheduler.dead_for: 0s: use a positive duration"}},
		{"unknown placement", doc(nil, "scheduler: {placement: sparow}"), []string{`s.yaml:14:13: scheduler.placement: unknown placement "sparow": did you mean sparrow?`}},
		{"variant placement", doc(nil, "variants: [{name: v, placement: oracle}]"), []string{`s.yaml:14:22: variants[0].placement: unknown placement "oracle"`}},
		{"sparrow with a policy", doc(nil, "variants: [{name: v, placement: sparrow, policy: cheapest}]"),
			[]string{"s.yaml:14:42: variants[0].policy: sparrow places on the least loaded of its probes: remove the policy"}},
		{"random with d", doc(nil, "variants: [{name: v, placement: random, d: 2}]"), []string{"s.yaml:14:41: variants[0].d: random asks one provider a round: remove d"}},
		{"omniscient with d", doc(nil, "variants: [{name: v, d: 2, placement: omniscient}]"), []string{"s.yaml:14:22: variants[0].d: omniscient sees every provider: remove d"}},
		{"trace and arrivals", doc(nil, "  trace: jobs.csv"), []string{
			"s.yaml:11:3: workload.arrivals: not used with a trace",
			"s.yaml:14:3: workload.trace: cannot read",
		}},
		{"several errors", doc(map[int]string{7: "    count: -1", 13: "  duration: {mean: 0s}"}), []string{
			"s.yaml:7:5: classes[0].count",
			"s.yaml:13:14: workload.duration.mean: 0s: use a positive duration",
		}},
		{"second document", doc(nil, "---", "a: 1"), []string{"s.yaml:14:1: a second YAML document"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseScenario("s.yaml", []byte(c.doc), nil)
			if err == nil {
				t.Fatalf("no error, parsed %+v", s)
			}
			if s != nil {
				t.Errorf("a scenario with the error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain\n%s", err, w)
				}
			}
			var se *specyaml.SpecError
			if !errors.As(err, &se) {
				t.Errorf("error %T is not a *specyaml.SpecError", err)
			}
		})
	}
}

func TestLoadScenarioTrace(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "traces")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	scenario := doc(map[int]string{8: `    capacity: {cpu: "4", memory: 8Gi, scratch: 10Gi}`, 11: "  trace: traces/jobs.csv", 12: "#", 13: "#"})
	trace := lines(
		"at, cpu, memory, run, scratch, max_price, currency, constraints",
		"0, 1, 512Mi, 1.5s, , , ,",
		"# a comment",
		"0.5, 500m, 1Gi, 30, 1Gi, 0.05, EUR, jurisdiction=fr|de;certification!=none",
		"2s, 2, 1Gi, 1m, , 0.1 EUR, , region=a",
	)
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "jobs.csv"), []byte(trace), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadScenario(filepath.Join(dir, "s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in, notIn := pb.Operator_OPERATOR_IN, pb.Operator_OPERATOR_NOT_IN
	want := []TraceJob{
		{At: 0, Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 512 << 20}, Run: 1500 * time.Millisecond},
		{
			At: 500 * time.Millisecond, Resources: scheduler.Resources{CPUMillis: 500, MemoryBytes: 1 << 30, ScratchBytes: 1 << 30}, Run: 30 * time.Second,
			Constraints: []scheduler.Selector{{Key: "certification", Op: notIn, Values: []string{"none"}}, {Key: "jurisdiction", Op: in, Values: []string{"de", "fr"}}},
			MaxPrice:    scheduler.Amount{Currency: "EUR", Nanos: 50_000_000},
		},
		{
			At: 2 * time.Second, Resources: scheduler.Resources{CPUMillis: 2000, MemoryBytes: 1 << 30}, Run: time.Minute,
			Constraints: []scheduler.Selector{{Key: "region", Op: in, Values: []string{"a"}}},
			MaxPrice:    scheduler.Amount{Currency: "EUR", Nanos: 100_000_000},
		},
	}
	if diff := cmp.Diff(want, s.Workload.Trace); diff != "" {
		t.Errorf("trace (-want +got):\n%s", diff)
	}

	if err := os.Remove(filepath.Join(sub, "jobs.csv")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadScenario(filepath.Join(dir, "s.yaml")); err == nil || !strings.Contains(err.Error(), "s.yaml:11:3: workload.trace: open ") {
		t.Errorf("missing trace: got %v", err)
	}
}

func TestParseTraceErrors(t *testing.T) {
	const header = "at,cpu,memory,run,scratch,max_price,currency,constraints"
	for _, c := range []struct {
		name  string
		trace string
		want  []string
	}{
		{"empty", "", []string{"t/jobs.csv: empty trace"}},
		{"no rows", lines(header), []string{"t/jobs.csv:1: no jobs"}},
		{"missing column", lines("at,cpu,run", "0,1,1s"), []string{"t/jobs.csv:1: memory: missing column"}},
		{"unknown column", lines("at,cpu,memroy,run", "0,1,1Gi,1s"), []string{"t/jobs.csv:1:8: memroy: unknown column: did you mean memory?"}},
		{"bad quantity", lines(header, "0,1,1GB,1s,,,,"), []string{`t/jobs.csv:2:5: memory: bad quantity "1GB"`}},
		{"bad time", lines(header, "soon,1,1Gi,1s,,,,"), []string{`t/jobs.csv:2:1: at: bad time "soon"`}},
		{"zero run", lines(header, "0,1,1Gi,0,,,,"), []string{"t/jobs.csv:2:9: run: 0: use a run time above 0"}},
		{"missing cpu", lines(header, "0,,1Gi,1s,,,,"), []string{"t/jobs.csv:2:3: cpu: missing"}},
		{"decreasing at", lines(header, "5,1,1Gi,1s,,,,", "4,1,1Gi,1s,,,,"), []string{"t/jobs.csv:3:1: at: 4 is before the previous row's 5s"}},
		{"price without currency", lines(header, "0,1,1Gi,1s,,0.5,,"), []string{"t/jobs.csv:2:13: max_price: no currency"}},
		{"currency without price", lines(header, "0,1,1Gi,1s,,,EUR,"), []string{"t/jobs.csv:2:14: currency: a currency without a max_price"}},
		{"bad constraint", lines(header, "0,1,1Gi,1s,,,,jurisdiction"), []string{`t/jobs.csv:2:15: constraints: bad constraint "jurisdiction"`}},
		{"field count", lines(header, "0,1,1Gi,1s"), []string{"t/jobs.csv:2:1: wrong number of fields"}},
		{"too big", lines(header, "0,16,1Gi,1s,,,,"), []string{"t/jobs.csv:2: cpu 16000m, memory 1Gi, scratch 0 fits no class's capacity"}},
		{"currency unused", lines(header, "0,1,1Gi,1s,,1 USD,,"), []string{"t/jobs.csv:2:13: max_price: no class prices in USD"}},
		{"unknown region", lines(header, "0,1,1Gi,1s,,,,region=a|c"), []string{`t/jobs.csv:2:15: constraints: unknown region "c"`}},
		{"upper-case constraint value", lines(header, "0,1,1Gi,1s,,,,jurisdiction=fr|DE"), []string{`t/jobs.csv:2:15: constraints: constraint on jurisdiction: value "DE": use lower case`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			scenario := doc(map[int]string{11: "  trace: jobs.csv", 12: "#", 13: "#"})
			_, err := ParseScenario("t/s.yaml", []byte(scenario), func(string) ([]byte, error) { return []byte(c.trace), nil })
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain\n%s", err, w)
				}
			}
		})
	}
}

// FuzzParseScenario checks that no document makes ParseScenario panic, and
// that what it accepts is defaulted.
func FuzzParseScenario(f *testing.F) {
	f.Add([]byte(exampleScenario))
	f.Add([]byte(doc(nil)))
	f.Add([]byte(doc(map[int]string{11: "  trace: jobs.csv", 12: "#", 13: "#"})))
	f.Add([]byte(wholesaleDoc("true")))
	trace := []byte(lines("at,cpu,memory,run,max_price,currency,constraints", "0,1,1Gi,1s,0.5,EUR,region=a|b;tier!=x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Start()()
		s, err := ParseScenario("f.yaml", data, func(string) ([]byte, error) { return trace, nil })
		if err != nil {
			return
		}
		if s.Seed == 0 || s.Drain <= 0 || s.SampleEvery <= 0 || s.Scheduler.Config.Policy.Name == "" || len(s.Classes) == 0 {
			t.Fatalf("accepted but not defaulted: %+v", s)
		}
	})
}

// FuzzParseTrace checks that no trace makes the trace parser panic.
func FuzzParseTrace(f *testing.F) {
	f.Add([]byte(lines("at,cpu,memory,run,scratch,max_price,currency,constraints", "0,1,512Mi,1.5s,,,,", "0.5,500m,1Gi,30,1Gi,0.05,EUR,jurisdiction=fr|de;certification!=none")))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Start()()
		jobs, pos, _ := parseTrace("f.csv", data)
		if len(jobs) != len(pos) {
			t.Fatalf("%d jobs, %d positions", len(jobs), len(pos))
		}
	})
}

// TestVariantSet: a variant that sets scenario keys runs the scenario with
// them set, parsed and checked whole; what it sets that the grammar refuses
// is an error that names the variant and the line of the key.
func TestVariantSet(t *testing.T) {
	sc, err := ParseScenario("s.yaml", []byte(doc(nil,
		"variants:",
		"  - {name: plain}",
		"  - name: big",
		"    set: {classes.c.capacity.cpu: \"64\", workload.arrivals.rate: 3}")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Variants[0].scenario != nil {
		t.Error("a variant that sets nothing has a scenario of its own")
	}
	big := sc.Variants[1].scenario
	if big == nil || big.Classes[0].Capacity.CPUMillis != 64_000 || big.Workload.Arrivals.Rate != 3 || len(big.Variants) != 0 {
		t.Fatalf("variant big: %+v", big)
	}
	if sc.Classes[0].Capacity.CPUMillis != 4000 {
		t.Errorf("the scenario's own class changed: %d", sc.Classes[0].Capacity.CPUMillis)
	}
	for _, c := range []struct{ set, want string }{
		{`{classes.c.count: 0}`, "variant big, with what it sets: s.yaml:7:5: classes[0].count: 0 is out of range"},
		{`{classes.nope.count: 3}`, "variants[1].set.classes.nope.count"},
		{`{variants: []}`, "a variant sets the scenario it runs, not variants"},
	} {
		_, err := ParseScenario("s.yaml", []byte(doc(nil, "variants:", "  - {name: plain}", "  - name: big", "    set: "+c.set)), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("set %s: %v, want %q", c.set, err, c.want)
		}
	}
}
