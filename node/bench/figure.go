package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Def defines a figure: its name, unit, goal and what it measures.
type Def struct {
	Name string
	Unit string
	// Goal is a comparison the median must satisfy, "<= 2" or ">= 1000";
	// empty for a figure reported without a goal.
	Goal string
	// Floor names the figure a ratio is taken against.
	Floor string
	Doc   string
}

// Defs are every figure `cuivre bench` reports, in the order shown. The
// simulator's (sim_*) are measured by the caller, which holds the simulator.
var Defs = []Def{
	{Name: "stream_rtt_ms", Unit: "ms", Doc: "floor: p50 round trip of 8 bytes on one open libp2p stream between two providers"},
	{Name: "new_stream_rtt_ms", Unit: "ms", Doc: "floor: p50 of a new stream, 8 bytes there and back, close"},
	{Name: "dht_find_providers_ms", Unit: "ms", Doc: "floor: p50 of a raw kad-dht FindProviders from the requester, for a CID one provider just provided"},
	{Name: "warm_placement_p50_ms", Unit: "ms", Goal: "<= 2", Doc: "submit to first lease accepted, connections up, sequential jobs: p50"},
	{Name: "warm_placement_p90_ms", Unit: "ms", Doc: "the same, p90"},
	{Name: "warm_placement_p99_ms", Unit: "ms", Goal: "<= 10", Doc: "the same, p99"},
	{Name: "warm_p50_over_rtt", Unit: "x", Goal: "<= 10", Floor: "stream_rtt_ms", Doc: "warm placement p50 over the stream round trip of the same repeat"},
	{Name: "cold_placement_ms", Unit: "ms", Goal: "<= 25", Doc: "p50 over 5 fresh requesters (new key, empty caches, routing table filled) of their first placement"},
	{Name: "placements_per_s", Unit: "1/s", Goal: ">= 1000", Doc: "one requester, --jobs jobs with 64 in flight: jobs over (last lease accepted - first submission)"},
	{Name: "jobs_per_s", Unit: "1/s", Doc: "the same jobs, to the last one finished"},
	{Name: "first_instruction_cached_p50_ms", Unit: "ms", Doc: "submit to the first stdout byte of a module the providers hold compiled, as the requester receives it (one loopback hop more): p50"},
	{Name: "first_instruction_cached_p99_ms", Unit: "ms", Goal: "<= 10", Doc: "the same, p99"},
	{Name: "first_instruction_uncached_p50_ms", Unit: "ms", Doc: "the same with a module new to every provider (fetched from the requester, then compiled): p50"},
	{Name: "first_instruction_uncached_p99_ms", Unit: "ms", Doc: "the same, p99"},
	{Name: "result_cached_p50_ms", Unit: "ms", Doc: "submit to the job's end seen by the requester, module cached: p50"},
	{Name: "result_cached_p99_ms", Unit: "ms", Doc: "the same, p99"},
	{Name: "result_uncached_p50_ms", Unit: "ms", Doc: "submit to the job's end, module new: p50"},
	{Name: "result_uncached_p99_ms", Unit: "ms", Doc: "the same, p99"},
	{Name: "transfer_copy_mb_s", Unit: "MB/s", Doc: "floor: --transfer-mib bytes copied raw on one libp2p stream from provider 1 to provider 2"},
	{Name: "transfer_mb_s", Unit: "MB/s", Doc: "a UnixFS DAG of as many bytes, new each repeat, fetched by provider 2 from provider 1 over /cuivre/blocks, every block checked and kept on disk"},
	{Name: "transfer_over_copy", Unit: "x", Goal: ">= 0.5", Floor: "transfer_copy_mb_s", Doc: "the DAG's rate over the raw copy's of the same repeat"},
	{Name: "sched_placements_per_s", Unit: "1/s", Goal: ">= 100000", Doc: "the scheduler's core alone on one goroutine: 50 markets, d=2, every action answered at once, no network"},
	{Name: "sched_allocs_per_placement", Unit: "allocs", Doc: "heap allocations per placement in that loop (the driver's few included)"},
	{Name: "daemon_rss_mib", Unit: "MiB", Goal: "<= 60", Doc: "resident memory of one idle `cuivre daemon` process joined to the devnet, at the end of each idle window"},
	{Name: "daemon_anon_mib", Unit: "MiB", Doc: "of that, its anonymous memory (heap, stacks, runtime): RSS without the pages of the binary it maps, which grow with its size"},
	{Name: "daemon_cpu_percent", Unit: "%", Goal: "<= 1", Doc: "its CPU over each idle window, in percent of one core"},
	{Name: "devnet_mib_per_node", Unit: "MiB", Doc: "Go heap and stacks in use (after GC) the devnet added, per node, measured once"},
	{Name: "sim_events_per_s", Unit: "1/s", Doc: "simulator: events per second on scenario small x10 providers (10,000), x2 jobs (40,000), seed 1"},
	{Name: "sim_bytes_per_provider", Unit: "B", Doc: "simulator: heap per simulated provider in that run"},
}

// Figure is one measured figure: Min, Median and Max are over the repeats,
// Values each repeat's own.
type Figure struct {
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Min    float64   `json:"min"`
	Median float64   `json:"median"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
	Goal   string    `json:"goal,omitempty"`
	// Met says whether the median meets Goal; absent without a goal.
	Met   *bool  `json:"met,omitempty"`
	Floor string `json:"floor,omitempty"`
	Doc   string `json:"doc"`
}

// NewFigure summarises the values of the figure named name, one per repeat.
// It panics on a name not in Defs, a programming error.
func NewFigure(name string, values []float64) Figure {
	i := slices.IndexFunc(Defs, func(d Def) bool { return d.Name == name })
	if i < 0 {
		panic("bench: no figure " + name)
	}
	d := Defs[i]
	f := Figure{Name: name, Unit: d.Unit, Goal: d.Goal, Floor: d.Floor, Doc: d.Doc, Values: values}
	if len(values) == 0 {
		return f
	}
	s := slices.Sorted(slices.Values(values))
	f.Min, f.Median, f.Max = s[0], median(s), s[len(s)-1]
	if d.Goal != "" {
		met := meets(f.Median, d.Goal)
		f.Met = &met
	}
	return f
}

// meets reports whether v satisfies goal, "<= x" or ">= x".
func meets(v float64, goal string) bool {
	op, num, _ := strings.Cut(goal, " ")
	x, err := strconv.ParseFloat(num, 64)
	if err != nil {
		panic(fmt.Sprintf("bench: goal %q", goal))
	}
	if op == ">=" {
		return v >= x
	}
	return v <= x
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Percentile returns the p-th percentile (0 < p <= 100) of values by the
// nearest rank, NaN if there are none. values are left as they are.
func Percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	return percentile(slices.Clone(values), p)
}

// percentile returns the p-th percentile (0 < p <= 100) of values by the
// nearest rank. It sorts values in place.
func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	slices.Sort(values)
	i := int(float64(len(values))*p/100+0.999999) - 1
	return values[min(max(i, 0), len(values)-1)]
}

// WriteTable prints the figures as a table: median, min, max, unit, goal,
// and whether the median meets the goal ("met" or "missed").
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tMEDIAN\tMIN\tMAX\tUNIT\tGOAL\tMET\t")
	for _, f := range r.Figures {
		verdict := ""
		if f.Met != nil {
			verdict = "missed"
			if *f.Met {
				verdict = "met"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.Name, num(f.Median), num(f.Min), num(f.Max), f.Unit, f.Goal, verdict)
	}
	return tw.Flush()
}

// num prints a figure with three significant digits, and no exponent.
func num(v float64) string {
	switch a := max(v, -v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}
