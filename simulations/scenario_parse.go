package simulations

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/specyaml"
	"github.com/cuivre/cuivre/scheduler"
)

// maxScenarioSize is the largest scenario document ParseScenario reads: a
// scenario is a page of YAML; its jobs, if replayed, are in a trace file.
const maxScenarioSize = 1 << 20

// maxScenarioErrors is the most errors one parse reports, and maxKeptErrors
// the most it keeps while parsing, so a trace with a million bad rows costs
// no more than one with a thousand.
const (
	maxScenarioErrors = 20
	maxKeptErrors     = 1000
)

// The names a scenario may use for an arrival process and a distribution.
var (
	arrivalProcesses = []string{"poisson", "bursty", "steady", "sequential"}
	distKinds        = []string{"exponential", "fixed", "uniform", "lognormal"}
)

// Bounds that follow from how the simulator indexes things (int32 providers,
// requesters and jobs, int16 classes and regions), and a sanity bound on
// round trips.
const (
	maxCount   = math.MaxInt32
	maxIndex16 = math.MaxInt16
	maxRTTms   = 3_600_000 // an hour
	maxRuns    = 10_000    // seeds a run of a scenario may take by default
)

// ParseScenario parses and validates a scenario file. name is used in error
// messages; readFile reads files the scenario names (a trace), relative to the
// scenario file's directory (the caller resolves that; pass os.ReadFile wrapped).
//
// Parsing is strict: an unknown or duplicate field, a value of the wrong type
// or out of range, and a scenario that contradicts itself (an RTT matrix that
// does not match the regions, a weight on an unknown region, a job size no
// class can hold) are errors. Errors are *specyaml.SpecError located in the
// document ("small.yaml:12:5: network.rtt_ms[1]: ..."), or in the trace for
// a trace's rows, several joined with errors.Join.
//
// The returned scenario has every default filled in (see scenario.go and
// docs/SIMULATOR.md), except the fields of Scheduler.Config other than
// Policy, whose zero values the scheduler itself reads as its defaults. The
// caller owns it.
func ParseScenario(name string, data []byte, readFile func(path string) ([]byte, error)) (*Scenario, error) {
	return parseScenario(name, data, readFile, nil)
}

// parseScenario is ParseScenario, with patch, if not nil, applied to the
// document's root before it is read (a sweep sets its parameters so); an
// error of patch is returned as is. Nodes the patch adds keep the line and
// column of what they replace, so errors point into the file.
func parseScenario(name string, data []byte, readFile func(path string) ([]byte, error), patch func(root *yaml.Node) error) (*Scenario, error) {
	p := &scenarioParser{file: name, readFile: readFile, s: &Scenario{}}
	p.Fail = p.fail
	if root := p.document(data); root != nil {
		if patch != nil {
			if err := patch(root); err != nil {
				return nil, err
			}
		}
		p.scenario(root)
		for _, check := range p.later {
			check()
		}
		p.defaults()
	}
	if err := p.join(); err != nil {
		return nil, err
	}
	// A variant that sets keys runs the scenario with them set: parsed
	// again, whole, so that every rule holds of what it runs.
	for i := range p.s.Variants {
		v := &p.s.Variants[i]
		if len(v.Set) == 0 {
			continue
		}
		sub, err := parseScenario(name, data, readFile, func(root *yaml.Node) error {
			if patch != nil {
				if err := patch(root); err != nil {
					return err
				}
			}
			dropKey(root, "variants")
			for _, st := range v.Set {
				if err := setPath(root, st.keys, st.Value); err != nil {
					return fmt.Errorf("%s:%d: variants[%d].set.%s: %w", name, st.line, i, st.Path, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("variant %s, with what it sets: %w", v.Name, err)
		}
		v.scenario = sub
	}
	return p.s, nil
}

// dropKey removes key and its value from a mapping node.
func dropKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// LoadScenario reads and parses a scenario file; a trace path is relative to the file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return ParseScenario(path, data, besideFile(path))
}

// besideFile reads files named relative to the directory of path.
func besideFile(path string) func(string) ([]byte, error) {
	dir := filepath.Dir(path)
	return func(name string) ([]byte, error) {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		return os.ReadFile(name)
	}
}

// scenarioParser walks the YAML node tree of a scenario. Checks that compare
// sections (a weight against the regions, a size against the classes) wait
// in later until the whole document is read, since sections come in any order.
type scenarioParser struct {
	specyaml.Reader
	file     string
	readFile func(string) ([]byte, error)
	s        *Scenario
	errs     []*specyaml.SpecError
	dropped  int
	later    []func()

	// Cross-checks against the regions or the classes run only when what
	// they compare with parsed cleanly, so that one mistake gives one error.
	regionsOK   bool // the network's regions
	badName     bool // a class's name
	badCapacity bool // a class's capacity
	badCurrency bool // a class's currency
	hasTrace    bool
	dialSet     bool // discovery.dial_round_trips was given
	batchSet    bool // requesters.batch_delay was given
}

func (p *scenarioParser) fail(at *yaml.Node, path, format string, args ...any) {
	e := &specyaml.SpecError{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if at != nil {
		e.Line, e.Column = at.Line, at.Column
	}
	p.add(e)
}

func (p *scenarioParser) add(e *specyaml.SpecError) {
	if len(p.errs) >= maxKeptErrors {
		p.dropped++
		return
	}
	p.errs = append(p.errs, e)
}

// join returns nil, the one error, or the first maxScenarioErrors errors,
// those of the scenario file first, each file's in line order.
func (p *scenarioParser) join() error {
	switch {
	case len(p.errs) == 0:
		return nil
	case len(p.errs) == 1 && p.dropped == 0:
		return p.errs[0]
	}
	slices.SortStableFunc(p.errs, func(a, b *specyaml.SpecError) int {
		other := func(e *specyaml.SpecError) bool { return e.File != p.file }
		if c := cmp.Compare(b2i(other(a)), b2i(other(b))); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	var out []error
	for i, e := range p.errs {
		if i == maxScenarioErrors {
			break
		}
		out = append(out, e)
	}
	if more := len(p.errs) + p.dropped - len(out); more > 0 {
		out = append(out, &specyaml.SpecError{File: p.file, Msg: fmt.Sprintf("%d more errors not shown: fix these first", more)})
	}
	return errors.Join(out...)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// document decodes the YAML of a scenario and returns its root, or nil after
// recording why it cannot.
func (p *scenarioParser) document(data []byte) *yaml.Node {
	if len(data) > maxScenarioSize {
		p.fail(nil, "", "%d bytes is too large: a scenario is at most %d KiB (replay long job lists from a trace)", len(data), maxScenarioSize>>10)
		return nil
	}
	root, err := p.Document(data, "a scenario", "empty scenario: give at least a duration, a network, classes and a workload")
	if err != nil {
		line, msg := specyaml.SyntaxLine(err)
		p.add(&specyaml.SpecError{File: p.file, Line: line, Msg: msg, Err: err})
	}
	return root
}

// ---- generic readers ----

type field = specyaml.Field

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// number reads a finite number, whole or not.
func (p *scenarioParser) number(at, v *yaml.Node, path string) (float64, bool) {
	var x float64
	if v.Kind != yaml.ScalarNode || (v.ShortTag() != "!!int" && v.ShortTag() != "!!float") || v.Decode(&x) != nil {
		p.fail(at, path, "want a number, got %s", specyaml.Describe(v))
		return 0, false
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		p.fail(at, path, "want a finite number, got %s", specyaml.Describe(v))
		return 0, false
	}
	return x, true
}

// positive reads a number above zero.
func (p *scenarioParser) positive(at, v *yaml.Node, path string) (float64, bool) {
	x, ok := p.number(at, v, path)
	if ok && x <= 0 {
		p.fail(at, path, "%v: use a number above 0", x)
		return 0, false
	}
	return x, ok
}

// fraction reads a probability or a share in [0, 1).
func (p *scenarioParser) fraction(at, v *yaml.Node, path string) (float64, bool) {
	x, ok := p.number(at, v, path)
	if ok && (x < 0 || x >= 1) {
		p.fail(at, path, "%v is out of range: use a fraction from 0 up to, not including, 1", x)
		return 0, false
	}
	return x, ok
}

// share reads a share in [0, 1], both ends included.
func (p *scenarioParser) share(at, v *yaml.Node, path string) (float64, bool) {
	x, ok := p.number(at, v, path)
	if ok && (x < 0 || x > 1) {
		p.fail(at, path, "%v is out of range: use a share from 0 to 1", x)
		return 0, false
	}
	return x, ok
}

// duration reads a Go duration ("500ms", "1h30m"), positive or, with
// zeroOK, zero.
func (p *scenarioParser) duration(at, v *yaml.Node, path string, zeroOK bool) (time.Duration, bool) {
	text, ok := p.Text(at, v, path)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(text)
	switch {
	case err != nil:
		p.fail(at, path, "bad duration %s: use a Go duration such as 500ms, 30s or 1h30m", protocol.Quote(text))
	case d < 0:
		p.fail(at, path, "%s is negative: use a positive duration", text)
	case d == 0 && !zeroOK:
		p.fail(at, path, "%s: use a positive duration", text)
	default:
		return d, true
	}
	return 0, false
}

// name reads the name of a class or a variant: a string, not blank.
func (p *scenarioParser) name(at, v *yaml.Node, path, what, example string) (string, bool) {
	name, ok := p.Str(at, v, path)
	if ok && strings.TrimSpace(name) == "" {
		p.fail(at, path, "empty: name the %s, such as %s", what, example)
		return "", false
	}
	return name, ok
}

// Field makers for the common kinds of value.

func (p *scenarioParser) durField(name string, dst *time.Duration, zeroOK bool) field {
	return field{Name: name, Read: func(at, v *yaml.Node, path string) { *dst, _ = p.duration(at, v, path, zeroOK) }}
}

// costField reads a Cost: a duration (0 allowed); {mean: 2ms, sigma: 0.8}
// for a lognormal of that mean and shape; or {quantiles: [0.3ms, 0.5ms,
// ..., 12ms]}, at least two non-decreasing durations that cut the
// distribution into equal shares (deciles: eleven, minimum to maximum).
func (p *scenarioParser) costField(name string, dst *Cost) field {
	return field{Name: name, Read: func(at, v *yaml.Node, path string) {
		if v.Kind != yaml.MappingNode {
			dst.Mean, _ = p.duration(at, v, path, true)
			return
		}
		var qAt *yaml.Node
		present := p.Object(at, v, path,
			p.durField("mean", &dst.Mean, true),
			p.posField("sigma", &dst.Sigma),
			field{Name: "quantiles", Read: func(at, v *yaml.Node, path string) {
				qAt = at
				if v.Kind != yaml.SequenceNode || len(v.Content) < 2 {
					p.fail(at, path, "want a list of at least two durations, such as [0.3ms, 0.5ms, 2ms]")
					return
				}
				for i, item := range v.Content {
					d, ok := p.duration(item, item, fmt.Sprintf("%s[%d]", path, i), true)
					if !ok {
						return
					}
					if n := len(dst.Quantiles); n > 0 && d < dst.Quantiles[n-1] {
						p.fail(item, fmt.Sprintf("%s[%d]", path, i), "%s is below the quantile before it: give them in increasing order", d)
						return
					}
					dst.Quantiles = append(dst.Quantiles, d)
				}
			}})
		switch {
		case present == nil:
		case qAt != nil && (present["mean"] != nil || present["sigma"] != nil):
			p.fail(qAt, path+".quantiles", "a distribution is its quantiles, or a mean and a sigma: not both")
		case qAt == nil && present["mean"] == nil:
			p.fail(at, path+".mean", "missing: give the mean time, such as 2ms, or quantiles")
		case len(dst.Quantiles) > 0:
			*dst = QuantileCost(dst.Quantiles)
		}
	}}
}

func (p *scenarioParser) intField(name string, dst *int, lo, hi int64) field {
	return field{Name: name, Read: func(at, v *yaml.Node, path string) {
		n, _ := p.Integer(at, v, path, lo, hi)
		*dst = int(n)
	}}
}

func (p *scenarioParser) posField(name string, dst *float64) field {
	return field{Name: name, Read: func(at, v *yaml.Node, path string) { *dst, _ = p.positive(at, v, path) }}
}

func (p *scenarioParser) fracField(name string, dst *float64) field {
	return field{Name: name, Read: func(at, v *yaml.Node, path string) { *dst, _ = p.fraction(at, v, path) }}
}

// oneOf reads a string that must be one of names.
func (p *scenarioParser) oneOf(name string, dst *string, names []string) field {
	return field{Name: name, Read: func(at, v *yaml.Node, path string) {
		s, ok := p.Str(at, v, path)
		if !ok {
			return
		}
		if !slices.Contains(names, s) {
			p.fail(at, path, "unknown %s %s%s", name, protocol.Quote(s), specyaml.Suggest(s, names, "use one of"))
			return
		}
		*dst = s
	}}
}

// policy reads a ranking policy's name.
func (p *scenarioParser) policy(name string, dst *string) field {
	return field{Name: name, Read: func(at, v *yaml.Node, path string) {
		s, ok := p.Str(at, v, path)
		if !ok {
			return
		}
		if _, err := scheduler.PolicyByName(s); err != nil {
			p.fail(at, path, "%v", err)
			return
		}
		*dst = s
	}}
}

// amount reads a non-negative decimal sum ("0.04", 2) in nano-units,
// exactly, as protocol.ParseAmount does: no binary floating point on the way.
func (p *scenarioParser) amount(at, v *yaml.Node, path string) (uint64, bool) {
	text, ok := p.Text(at, v, path)
	if !ok {
		return 0, false
	}
	n, err := protocol.ParseAmount(text)
	if err != nil {
		p.fail(at, path, "%v", err)
		return 0, false
	}
	return n, true
}

// ---- labels and selectors ----

// reservedLabels are filled in by the simulator for every provider.
var reservedLabels = []string{scheduler.LabelRegion, scheduler.LabelOperator}

// labelKeyError returns why k is not a label key, or "": the protocol's label
// rule, as the daemon's labels and jobs follow it.
func labelKeyError(k string) string {
	if err := protocol.CheckLabelKey(k); err != nil {
		return fmt.Sprintf("label key %v", err)
	}
	return ""
}

// labelValueError returns why v is not a label value, or nil: the protocol's
// label rule, which refuses upper case rather than lower-case it, as a job
// or the daemon's config would.
func labelValueError(v string) error {
	if err := protocol.CheckLabelValue(v); err != nil {
		return fmt.Errorf("value %w", err)
	}
	return nil
}

// labels reads a class's labels: a mapping of keys to values.
func (p *scenarioParser) labels(at, v *yaml.Node, path string) scheduler.Labels {
	var kv []scheduler.Label
	p.Pairs(at, v, path, "a mapping of label keys to values, such as {jurisdiction: fr}", func(k, v *yaml.Node, kpath string) {
		if slices.Contains(reservedLabels, k.Value) {
			p.fail(k, kpath, "%s is filled in by the simulator (region from the class's regions, operator from operators): remove it", k.Value)
			return
		}
		if msg := labelKeyError(k.Value); msg != "" {
			p.fail(k, kpath, "%s", msg)
			return
		}
		text, ok := p.Text(k, v, kpath)
		if !ok {
			return
		}
		if err := labelValueError(text); err != nil {
			p.fail(v, kpath, "%v", err)
			return
		}
		kv = append(kv, scheduler.Label{Key: k.Value, Value: text})
	})
	return scheduler.NewLabels(kv...)
}

// selector reads one label key's values, a list or a single value.
func (p *scenarioParser) selector(k, v *yaml.Node, path string, op pb.Operator) (scheduler.Selector, bool) {
	if msg := labelKeyError(k.Value); msg != "" {
		p.fail(k, path, "%s", msg)
		return scheduler.Selector{}, false
	}
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	if len(items) == 0 {
		p.fail(k, path, "no values: give at least one")
		return scheduler.Selector{}, false
	}
	sel := scheduler.Selector{Key: k.Value, Op: op}
	ok := true
	for i, item := range items {
		ipath := path
		if v.Kind == yaml.SequenceNode {
			ipath = index(path, i)
		}
		text, good := p.Text(item, item, ipath)
		if !good {
			ok = false
			continue
		}
		if err := labelValueError(text); err != nil {
			p.fail(item, ipath, "%v", err)
			ok = false
			continue
		}
		sel.Values = append(sel.Values, text)
		if k.Value == scheduler.LabelRegion {
			p.later = append(p.later, func() { p.knownRegion(item, ipath, text) })
		}
	}
	slices.Sort(sel.Values)
	sel.Values = slices.Compact(sel.Values)
	return sel, ok
}

func sortSelectors(sels []scheduler.Selector) {
	slices.SortStableFunc(sels, func(a, b scheduler.Selector) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Op, b.Op))
	})
}

// knownRegion reports a region name that is not one of the network's.
func (p *scenarioParser) knownRegion(at *yaml.Node, path, name string) {
	if p.regionsOK && !slices.Contains(p.s.Network.Regions, name) {
		p.fail(at, path, "unknown region %s%s", protocol.Quote(name), specyaml.Suggest(name, p.s.Network.Regions, "the regions are"))
	}
}

// weights reads a mapping of region names to positive weights.
func (p *scenarioParser) weights(at, v *yaml.Node, path string) Weights {
	var w Weights
	p.Pairs(at, v, path, "a mapping of region names to weights, such as {fr-par: 2, de-fra: 1}", func(k, v *yaml.Node, kpath string) {
		x, ok := p.number(k, v, kpath)
		if !ok {
			return
		}
		if x <= 0 {
			p.fail(k, kpath, "weight %v: use a weight above 0 (leave a region out to put nothing there)", x)
			return
		}
		name := k.Value
		p.later = append(p.later, func() { p.knownRegion(k, kpath, name) })
		w = append(w, Weight{Name: name, Weight: x})
	})
	return w
}

// weightField reads the weight of an entry of a mix.
func (p *scenarioParser) weightField(dst *float64) field { return p.posField("weight", dst) }

// ---- the sections ----

func (p *scenarioParser) scenario(root *yaml.Node) {
	s := p.s
	present := p.Object(root, root, "",
		field{Name: "name", Read: func(at, v *yaml.Node, path string) { s.Name, _ = p.Str(at, v, path) }},
		field{Name: "description", Read: func(at, v *yaml.Node, path string) { s.Description, _ = p.Str(at, v, path) }},
		field{Name: "seed", Read: func(at, v *yaml.Node, path string) {
			var n uint64
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&n) != nil || n == 0 {
				p.fail(at, path, "want a whole number from 1 to %d, got %s", uint64(math.MaxUint64), specyaml.Describe(v))
				return
			}
			s.Seed = n
		}},
		p.intField("runs", &s.Runs, 1, maxRuns),
		p.durField("duration", &s.Duration, false),
		p.durField("drain", &s.Drain, false),
		p.durField("sample_every", &s.SampleEvery, false),
		field{Name: "network", Read: p.network},
		field{Name: "discovery", Read: func(at, v *yaml.Node, path string) {
			d := &s.Discovery
			present := p.Object(at, v, path,
				p.intField("k", &d.K, 1, 1000),
				p.intField("alpha", &d.Alpha, 1, 1000),
				p.intField("beta", &d.Beta, 1, 1000),
				p.oneOf("requesters", &d.Requesters, []string{ModeClient, ModeServer}),
				p.costField("hop_service", &d.HopService),
				p.costField("dial", &d.Dial),
				p.intField("dial_round_trips", &d.DialRoundTrips, 0, 100),
				p.durField("record_ttl", &d.RecordTTL, false),
				p.durField("cache_ttl", &d.CacheTTL, false))
			p.dialSet = present["dial_round_trips"] != nil
		}},
		field{Name: "scheduler", Read: p.scheduler},
		field{Name: "requesters", Read: func(at, v *yaml.Node, path string) {
			r := &s.Requesters
			present := p.Object(at, v, path,
				p.intField("count", &r.Count, 1, maxCount),
				field{Name: "regions", Read: func(at, v *yaml.Node, path string) { r.Regions = p.weights(at, v, path) }},
				p.costField("sync", &r.Sync),
				p.costField("overhead", &r.Overhead),
				p.durField("batch_delay", &r.BatchDelay, true))
			p.batchSet = present["batch_delay"] != nil
		}},
		field{Name: "classes", Read: p.classes},
		field{Name: "workload", Read: p.workload},
		field{Name: "variants", Read: p.variants},
	)
	if present == nil {
		return
	}
	if present["duration"] == nil {
		p.fail(root, "duration", `missing: give how long jobs arrive for, such as "duration: 10m"`)
	}
	if present["network"] == nil {
		p.fail(root, "network", "missing: give the regions and the round trips between them")
	}
	if present["classes"] == nil {
		p.fail(root, "classes", "missing: give at least one class of providers")
	}
	if present["workload"] == nil {
		p.fail(root, "workload", "missing: give the jobs' arrivals, sizes and run times, or a trace")
	}
}

func (p *scenarioParser) network(at, v *yaml.Node, path string) {
	n := &p.s.Network
	var rttAt, rtt *yaml.Node
	present := p.Object(at, v, path,
		field{Name: "regions", Read: func(at, v *yaml.Node, path string) {
			before := len(p.errs)
			n.Regions = p.regionNames(at, v, path)
			p.regionsOK = len(p.errs) == before && len(n.Regions) > 0
		}},
		field{Name: "rtt_ms", Read: func(at, v *yaml.Node, path string) { rttAt, rtt = at, v }},
		p.fracField("jitter", &n.Jitter),
		p.fracField("loss", &n.Loss),
	)
	if present == nil {
		return
	}
	if present["regions"] == nil {
		p.fail(at, path+".regions", "missing: list the region names, such as [fr-par, de-fra]")
		return
	}
	if rtt == nil {
		p.fail(at, path+".rtt_ms", "missing: give the round trips between regions in milliseconds, one row per region")
		return
	}
	if p.regionsOK {
		n.RTT = p.rttMatrix(rttAt, rtt, path+".rtt_ms", len(n.Regions))
	}
}

func (p *scenarioParser) regionNames(at, v *yaml.Node, path string) []string {
	items := p.List(at, v, path)
	if v.Kind == yaml.SequenceNode && len(items) == 0 {
		p.fail(at, path, "empty: give at least one region")
	}
	if len(items) > maxIndex16 {
		p.fail(at, path, "%d regions: use at most %d", len(items), maxIndex16)
		return nil
	}
	var names []string
	seen := map[string]*yaml.Node{}
	for i, item := range items {
		ipath := index(path, i)
		name, ok := p.Str(item, item, ipath)
		if !ok {
			continue
		}
		if err := protocol.CheckLabelValue(name); err != nil {
			// A region is the value of the region label.
			p.fail(item, ipath, "region %v", err)
			continue
		}
		if first, dup := seen[name]; dup {
			p.fail(item, ipath, "duplicate region %s, first at line %d: name each region once", protocol.Quote(name), first.Line)
			continue
		}
		seen[name] = item
		names = append(names, name)
	}
	return names
}

// rttMatrix reads the round trips, in milliseconds: a square, symmetric
// matrix with one row and one column per region.
func (p *scenarioParser) rttMatrix(at, v *yaml.Node, path string, n int) [][]time.Duration {
	rows := p.List(at, v, path)
	if rows == nil {
		return nil
	}
	if len(rows) != n {
		p.fail(at, path, "%d rows, want %d (one per region)", len(rows), n)
		return nil
	}
	m := make([][]time.Duration, n)
	nodes := make([][]*yaml.Node, n)
	ok := true
	for i, row := range rows {
		rpath := index(path, i)
		entries := p.List(row, row, rpath)
		if entries == nil {
			ok = false
			continue
		}
		if len(entries) != n {
			p.fail(row, rpath, "row has %d entries, want %d (one per region)", len(entries), n)
			ok = false
			continue
		}
		m[i], nodes[i] = make([]time.Duration, n), entries
		for j, e := range entries {
			epath := index(rpath, j)
			ms, good := p.number(e, e, epath)
			switch {
			case !good:
				ok = false
			case ms < 0 || ms > maxRTTms:
				p.fail(e, epath, "%v ms is out of range: use 0 to %d", ms, maxRTTms)
				ok = false
			default:
				m[i][j] = time.Duration(math.Round(ms * float64(time.Millisecond)))
			}
		}
	}
	if !ok {
		return nil
	}
	for i := range n {
		for j := range i {
			if m[i][j] != m[j][i] {
				p.fail(nodes[i][j], index(index(path, i), j), "%v here but %v at %s (line %d): the matrix must be symmetric",
					m[i][j], m[j][i], index(index(path, j), i), nodes[j][i].Line)
			}
		}
	}
	return m
}

func (p *scenarioParser) scheduler(at, v *yaml.Node, path string) {
	sc := &p.s.Scheduler
	c := &sc.Config
	const big = 1_000_000
	p.Object(at, v, path,
		p.policy("policy", &sc.PolicyName),
		p.oneOf("placement", &sc.Placement, Placements),
		p.intField("d", &c.D, 1, 1000),
		p.durField("offer_timeout", &c.OfferTimeout, false),
		p.durField("lookup_timeout", &c.LookupTimeout, false),
		p.durField("lease_timeout", &c.LeaseTimeout, false),
		p.durField("start_timeout", &c.StartTimeout, false),
		p.durField("heartbeat_interval", &c.HeartbeatInterval, false),
		p.intField("missed_heartbeats", &c.MissedHeartbeats, 1, big),
		p.intField("max_attempts", &c.MaxAttempts, 1, big),
		p.durField("placement_timeout", &c.PlacementTimeout, false),
		p.durField("backoff", &c.Backoff, false),
		p.durField("max_backoff", &c.MaxBackoff, false),
		p.intField("max_reschedules", &c.MaxReschedules, 1, big),
		p.intField("shards", &c.Shards, 1, big),
		p.durField("dead_for", &sc.DeadFor, false),
	)
}

func (p *scenarioParser) classes(at, v *yaml.Node, path string) {
	items := p.List(at, v, path)
	if v.Kind != yaml.SequenceNode {
		return
	}
	if len(items) == 0 {
		p.fail(at, path, "empty: give at least one class of providers")
		return
	}
	if len(items) > maxIndex16 {
		p.fail(at, path, "%d classes: use at most %d", len(items), maxIndex16)
		return
	}
	names := map[string]*yaml.Node{}
	total := 0
	for i, item := range items {
		ipath := index(path, i)
		c, nameAt := p.class(item, ipath)
		if nameAt != nil {
			if first, dup := names[c.Name]; dup {
				p.fail(nameAt, ipath+".name", "duplicate class %s, first at line %d: name each class once", protocol.Quote(c.Name), first.Line)
			} else {
				names[c.Name] = nameAt
			}
		}
		total += c.Count
		if c.Wholesale != nil {
			total += c.Count * c.Wholesale.RetailerCount()
		}
		p.s.Classes = append(p.s.Classes, c)
	}
	p.retailerNames(items, names, path)
	if total > maxCount {
		p.fail(at, path, "%d providers in all: use at most %d", total, maxCount)
	}
}

// retailerNames checks that each kind of retailer has a name of its own,
// that of no class or other retailer: a retailer is a class of its own in
// the results.
func (p *scenarioParser) retailerNames(items []*yaml.Node, classes map[string]*yaml.Node, path string) {
	seen := map[string]string{}
	for i, c := range p.s.Classes {
		if c.Wholesale == nil {
			continue
		}
		for k, r := range c.Wholesale.Retailers {
			rpath := index(index(path, i)+".wholesale.retailers", k) + ".name"
			switch {
			case r.Name == "":
			case classes[r.Name] != nil:
				p.fail(items[i], rpath, "%s is a class's name too: name the retailer otherwise", protocol.Quote(r.Name))
			case seen[r.Name] != "":
				p.fail(items[i], rpath, "duplicate retailer %s, first at %s: name each retailer once", protocol.Quote(r.Name), seen[r.Name])
			default:
				seen[r.Name] = rpath
			}
		}
	}
}

// errCount counts the errors so far, kept or not.
func (p *scenarioParser) errCount() int { return len(p.errs) + p.dropped }

// class reads one class, and returns the node its name is written at.
func (p *scenarioParser) class(item *yaml.Node, path string) (Class, *yaml.Node) {
	var c Class
	var nameAt *yaml.Node
	present := p.Object(item, item, path,
		field{Name: "name", Read: func(at, v *yaml.Node, path string) {
			if name, ok := p.name(at, v, path, "class", "sme"); ok {
				c.Name, nameAt = name, at
			}
		}},
		p.intField("count", &c.Count, 1, maxCount),
		field{Name: "regions", Read: func(at, v *yaml.Node, path string) { c.Regions = p.weights(at, v, path) }},
		p.intField("operators", &c.Operators, 0, maxCount),
		field{Name: "labels", Read: func(at, v *yaml.Node, path string) { c.Labels = p.labels(at, v, path) }},
		field{Name: "capacity", Read: func(at, v *yaml.Node, path string) {
			before := p.errCount()
			p.resources(at, v, path, &c.Capacity)
			p.badCapacity = p.badCapacity || p.errCount() > before
		}},
		field{Name: "pricing", Read: func(at, v *yaml.Node, path string) { c.Pricing = p.pricing(at, v, path) }},
		p.fracField("subsidy", &c.Subsidy),
		p.costField("service_time", &c.ServiceTime),
		p.costField("lease_time", &c.LeaseTime),
		p.durField("start_delay", &c.StartDelay, true),
		field{Name: "churn", Read: func(at, v *yaml.Node, path string) {
			ch := &c.Churn
			present := p.Object(at, v, path,
				p.durField("session", &ch.Session, false),
				p.durField("downtime", &ch.Downtime, false),
				field{Name: "fast", Read: func(at, v *yaml.Node, path string) { ch.Fast, _ = p.share(at, v, path) }},
				p.durField("fast_downtime", &ch.FastDowntime, false))
			for _, k := range []string{"downtime", "fast", "fast_downtime"} {
				if at := present[k]; at != nil && present["session"] == nil {
					p.fail(at, path+"."+k, "a %s without a session: give the mean session too", k)
				}
			}
			if at := present["fast_downtime"]; at != nil && present["fast"] == nil {
				p.fail(at, path+".fast_downtime", "a fast_downtime without fast: give the share of fast restarts too")
			}
		}},
		field{Name: "wholesale", Read: func(at, v *yaml.Node, path string) { c.Wholesale = p.wholesale(at, v, path) }},
	)
	if present == nil || nameAt == nil {
		p.badName = true
	}
	if present == nil {
		p.badCapacity, p.badCurrency = true, true
		return c, nil
	}
	p.badCapacity = p.badCapacity || present["capacity"] == nil
	p.badCurrency = p.badCurrency || present["pricing"] == nil
	for _, m := range []struct{ name, msg string }{
		{"name", "missing: name the class, such as sme"},
		{"count", "missing: give the number of providers of the class"},
		{"capacity", `missing: give what each provider sells, such as {cpu: "8", memory: 32Gi}`},
		{"pricing", `missing: give the prices, such as {currency: EUR, cpu_per_hour: "0.04"}`},
	} {
		if present[m.name] == nil {
			p.fail(item, path+"."+m.name, "%s", m.msg)
		}
	}
	p.wholesaleFits(&c, present, path)
	return c, nameAt
}

// wholesale reads a class's wholesale offer: its tariff, the share of its
// capacity sliced, whether it keeps retailing, and its retailers.
func (p *scenarioParser) wholesale(at, v *yaml.Node, path string) *Wholesale {
	w := &Wholesale{Share: 1}
	present := p.Object(at, v, path,
		field{Name: "tariff", Read: func(at, v *yaml.Node, path string) {
			pp := p.pricing(at, v, path)
			if pp.LoadFactorPermille != 0 {
				p.fail(at, path+".load_factor_percent", "a tariff is one price for every retailer, whatever the load: remove the load factor")
			}
			w.Tariff = pp.Base
		}},
		field{Name: "share", Read: func(at, v *yaml.Node, path string) {
			x, ok := p.positive(at, v, path)
			switch {
			case ok && x > 1:
				p.fail(at, path, "%v: the slices would sum to %.0f%% of the site's capacity; use a share above 0 and at most 1", x, 100*x)
			case ok:
				w.Share = x
			}
		}},
		field{Name: "retail", Read: func(at, v *yaml.Node, path string) {
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&w.Retail) != nil {
				p.fail(at, path, "want true or false, got %s", specyaml.Describe(v))
			}
		}},
		field{Name: "retailers", Read: func(at, v *yaml.Node, path string) {
			items := p.List(at, v, path)
			if v.Kind == yaml.SequenceNode && len(items) == 0 {
				p.fail(at, path, `empty: give at least one retailer, such as {name: retailer, pricing: {currency: EUR, cpu_per_hour: "0.05"}}`)
			}
			for i, item := range items {
				w.Retailers = append(w.Retailers, p.retailer(item, index(path, i)))
			}
		}},
	)
	if present == nil {
		return w
	}
	for _, m := range []struct{ name, msg string }{
		{"tariff", `missing: give the price of a slice, such as {currency: EUR, cpu_per_hour: "0.03", memory_gib_per_hour: "0.003"}`},
		{"retailers", `missing: give at least one retailer, such as [{name: retailer, pricing: {currency: EUR, cpu_per_hour: "0.05"}}]`},
	} {
		if present[m.name] == nil {
			p.fail(at, path+"."+m.name, "%s", m.msg)
		}
	}
	cur := w.Tariff.Currency
	for i, r := range w.Retailers {
		if rc := r.Pricing.Base.Currency; cur != "" && rc != "" && rc != cur {
			p.fail(at, index(path+".retailers", i)+".pricing.currency", "%s, the tariff is in %s: a retailer's margin needs one currency; price it in %s", rc, cur, cur)
		}
	}
	return w
}

// retailer reads one kind of retailer of a site's slices.
func (p *scenarioParser) retailer(item *yaml.Node, path string) Retailer {
	r := Retailer{Count: 1}
	present := p.Object(item, item, path,
		field{Name: "name", Read: func(at, v *yaml.Node, path string) { r.Name, _ = p.name(at, v, path, "retailer", "retailer-a") }},
		p.intField("count", &r.Count, 1, maxIndex16),
		field{Name: "pricing", Read: func(at, v *yaml.Node, path string) { r.Pricing = p.pricing(at, v, path) }},
	)
	if present == nil {
		return r
	}
	if present["name"] == nil {
		p.fail(item, path+".name", "missing: name the retailer, such as retailer-a")
	}
	if present["pricing"] == nil {
		p.fail(item, path+".pricing", `missing: give the retailer's prices, such as {currency: EUR, cpu_per_hour: "0.05"}`)
	}
	return r
}

// wholesaleFits checks a site's wholesale offer against the rest of its
// class: one currency for the tariff and the site's prices, no churn (a
// crashed site's market is built anew, and its grants would be lost), and
// slices of something.
func (p *scenarioParser) wholesaleFits(c *Class, present map[string]*yaml.Node, path string) {
	w := c.Wholesale
	at := present["wholesale"]
	if w == nil || at == nil {
		return
	}
	if at := present["churn"]; at != nil && c.Churn.Session > 0 {
		p.fail(at, path+".churn", "a site that sells slices does not churn in this model (its grants would die with it): remove the churn or the wholesale")
	}
	if tc, sc := w.Tariff.Currency, c.Pricing.Base.Currency; tc != "" && sc != "" && tc != sc {
		p.fail(at, path+".wholesale.tariff.currency", "%s, the site prices in %s: give the tariff in %s", tc, sc, sc)
	}
	if present["capacity"] == nil || len(w.Retailers) == 0 {
		return
	}
	if sl := w.Slice(c.Capacity); sl.CPUMillis == 0 || sl.MemoryBytes == 0 {
		p.fail(at, path+".wholesale", "%d retailers share %.0f%% of %s: each slice would hold %s; fewer retailers or a larger share",
			w.RetailerCount(), 100*w.Share, formatResources(c.Capacity), formatResources(sl))
	}
}

// resources reads cpu, memory and scratch, the first two required and
// positive, with any extra fields.
func (p *scenarioParser) resources(at, v *yaml.Node, path string, r *scheduler.Resources, extra ...field) map[string]*yaml.Node {
	quantity := func(name string, dst *uint64, parse func(string) (uint64, error), positive bool) field {
		return field{Name: name, Read: func(at, v *yaml.Node, path string) {
			text, ok := p.Text(at, v, path)
			if !ok {
				return
			}
			n, err := parse(text)
			switch {
			case err != nil:
				p.fail(at, path, "%v", err)
			case positive && n == 0:
				p.fail(at, path, "%s: use an amount above 0", protocol.Quote(text))
			default:
				*dst = n
			}
		}}
	}
	present := p.Object(at, v, path, append([]field{
		quantity("cpu", &r.CPUMillis, protocol.ParseCPU, true),
		quantity("memory", &r.MemoryBytes, protocol.ParseQuantity, true),
		quantity("scratch", &r.ScratchBytes, protocol.ParseQuantity, false),
	}, extra...)...)
	if present == nil {
		return nil
	}
	if present["cpu"] == nil {
		p.fail(at, path+".cpu", `missing: give vCPUs ("2") or millicores ("500m")`)
	}
	if present["memory"] == nil {
		p.fail(at, path+".memory", "missing: give bytes, such as 512Mi or 4Gi")
	}
	return present
}

// renamed is a field of an earlier grammar whose name changed to the one a
// node's config.yaml gives the same setting: it is refused with the new name.
func (p *scenarioParser) renamed(old, now string) field {
	return field{Name: old, Read: func(at, _ *yaml.Node, path string) {
		p.fail(at, path, "renamed, as in a node's config.yaml: write %s", now)
	}}
}

// pricing reads a class's prices, per hour in currency units, into the
// scheduler's nano-units per second, rounded down as the daemon's are
// (protocol.PerSecond).
func (p *scenarioParser) pricing(at, v *yaml.Node, path string) scheduler.PricePolicy {
	var pp scheduler.PricePolicy
	b := &pp.Base
	currencyOK := false
	hourly := func(name string, dst *uint64) field {
		return field{Name: name, Read: func(at, v *yaml.Node, path string) {
			n, ok := p.amount(at, v, path)
			if !ok {
				return
			}
			*dst = protocol.PerSecond(n)
			if n > 0 && *dst == 0 {
				p.fail(at, path, "%s per hour is less than a nano-unit per second: raise it, or write 0", v.Value)
			}
		}}
	}
	present := p.Object(at, v, path,
		field{Name: "currency", Read: func(at, v *yaml.Node, path string) { b.Currency, currencyOK = p.Str(at, v, path) }},
		hourly("cpu_per_hour", &b.CPUNanosPerSecond),
		hourly("memory_gib_per_hour", &b.MemoryNanosPerGiBSecond),
		field{Name: "egress_per_gib", Read: func(at, v *yaml.Node, path string) { b.EgressNanosPerGiB, _ = p.amount(at, v, path) }},
		field{Name: "load_factor_percent", Read: func(at, v *yaml.Node, path string) {
			n, ok := p.amount(at, v, path) // nano-percent
			switch {
			case !ok:
			case n%1e8 != 0:
				p.fail(at, path, "%s is finer than a tenth of a percent: use at most 1 decimal", v.Value)
			case n/1e8 > math.MaxUint32:
				p.fail(at, path, "%s is too large: 100 doubles the price at full load", v.Value)
			default:
				pp.LoadFactorPermille = uint32(n / 1e8)
			}
		}},
		p.renamed("cpu_hour", "cpu_per_hour"), p.renamed("memory_gib_hour", "memory_gib_per_hour"),
		p.renamed("egress_gib", "egress_per_gib"), p.renamed("load_factor", "load_factor_percent (100 for the 1.0 of before)"),
	)
	if present == nil || !currencyOK {
		p.badCurrency = true
	}
	if present == nil {
		return pp
	}
	if present["currency"] == nil {
		p.fail(at, path+".currency", "missing: give the currency of the prices, such as EUR")
		return pp
	}
	if !currencyOK {
		return pp
	}
	if err := pp.Validate(); err != nil {
		for _, e := range unjoin(err) {
			if strings.HasPrefix(e.Error(), "base.currency") {
				p.badCurrency = true
				p.fail(present["currency"], path+".currency", "%v", e)
			} else {
				p.fail(at, path, "%v", e)
			}
		}
	}
	return pp
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (p *scenarioParser) workload(at, v *yaml.Node, path string) {
	w := &p.s.Workload
	var arrivals map[string]*yaml.Node
	var trace string
	present := p.Object(at, v, path,
		p.intField("jobs", &w.Jobs, 0, maxCount),
		field{Name: "arrivals", Read: func(at, v *yaml.Node, path string) { arrivals = p.arrivals(at, v, path, &w.Arrivals) }},
		field{Name: "trace", Read: func(at, v *yaml.Node, path string) {
			if s, ok := p.Str(at, v, path); ok && s == "" {
				p.fail(at, path, "empty: give the path of a CSV file, relative to the scenario")
			} else {
				trace = s
			}
		}},
		field{Name: "sizes", Read: func(at, v *yaml.Node, path string) {
			items := p.List(at, v, path)
			if v.Kind == yaml.SequenceNode && len(items) == 0 {
				p.fail(at, path, `empty: give at least one size, such as {cpu: "1", memory: 512Mi}`)
			}
			for i, item := range items {
				w.Sizes = append(w.Sizes, p.size(item, index(path, i)))
			}
		}},
		field{Name: "duration", Read: func(at, v *yaml.Node, path string) { p.dist(at, v, path, &w.Duration) }},
		field{Name: "constraints", Read: func(at, v *yaml.Node, path string) {
			for i, item := range p.List(at, v, path) {
				w.Constraints = append(w.Constraints, p.constraintMix(item, index(path, i)))
			}
		}},
		field{Name: "ceilings", Read: func(at, v *yaml.Node, path string) {
			for i, item := range p.List(at, v, path) {
				w.Ceilings = append(w.Ceilings, p.ceiling(item, index(path, i)))
			}
		}},
		p.posField("timeout_factor", &w.TimeoutFactor),
		p.fracField("failure_rate", &w.FailureRate),
	)
	if present == nil {
		return
	}
	if k := present["trace"]; k != nil {
		p.hasTrace = true
		for _, name := range []string{"arrivals", "sizes", "duration", "constraints", "ceilings"} {
			if n := present[name]; n != nil {
				p.fail(n, path+"."+name, "not used with a trace, which gives each job's arrival, size, run time, constraints and ceiling: remove one of them")
			}
		}
		if trace != "" {
			p.trace(k, path+".trace", trace)
		}
		return
	}
	if present["arrivals"] == nil {
		p.fail(at, path+".arrivals", "missing: give a rate (jobs per second) or a load, or replay a trace")
	} else if arrivals != nil {
		k := present["arrivals"]
		switch {
		case w.Arrivals.Process == "sequential" && (arrivals["rate"] != nil || arrivals["load"] != nil):
			p.fail(k, path+".arrivals", "a sequential workload submits each job once the last has ended: remove the rate or load")
		case arrivals["rate"] != nil && arrivals["load"] != nil:
			p.fail(k, path+".arrivals", "both a rate and a load: give one")
		case arrivals["rate"] == nil && arrivals["load"] == nil && w.Arrivals.Process != "sequential":
			p.fail(k, path+".arrivals", "neither a rate nor a load: give a rate (jobs per second) or a load (a fraction of the federation's CPU)")
		}
	}
	if present["sizes"] == nil {
		p.fail(at, path+".sizes", `missing: give at least one job size, such as [{cpu: "1", memory: 512Mi}]`)
	}
	if present["duration"] == nil {
		p.fail(at, path+".duration", "missing: give the run times, such as {dist: exponential, mean: 1m}")
	}
}

func (p *scenarioParser) arrivals(at, v *yaml.Node, path string, a *Arrivals) map[string]*yaml.Node {
	present := p.Object(at, v, path,
		p.oneOf("process", &a.Process, arrivalProcesses),
		p.posField("rate", &a.Rate),
		p.posField("load", &a.Load),
		p.posField("burst_factor", &a.BurstFactor),
		p.durField("burst_on", &a.BurstOn, false),
		p.durField("burst_off", &a.BurstOff, false),
	)
	if a.Process != "bursty" {
		for _, name := range []string{"burst_factor", "burst_on", "burst_off"} {
			if k := present[name]; k != nil {
				p.fail(k, path+"."+name, "only for process: bursty")
			}
		}
	}
	return present
}

func (p *scenarioParser) size(item *yaml.Node, path string) Size {
	z := Size{Weight: 1}
	if p.resources(item, item, path, &z.Resources, p.weightField(&z.Weight)) != nil {
		p.later = append(p.later, func() { p.fitsAClass(z.Resources, p.file, item.Line, item.Column, path) })
	}
	return z
}

// fitsAClass reports a job size that no class's capacity holds: no such job
// could ever run.
func (p *scenarioParser) fitsAClass(r scheduler.Resources, file string, line, col int, path string) {
	if p.badCapacity || len(p.s.Classes) == 0 || r.CPUMillis == 0 || r.MemoryBytes == 0 {
		return
	}
	for _, c := range p.s.Classes {
		if r.Fits(c.Capacity) {
			return
		}
	}
	p.add(&specyaml.SpecError{File: file, Line: line, Column: col, Path: path,
		Msg: fmt.Sprintf("%s fits no class's capacity: no such job could ever run; raise a capacity or shrink the job", formatResources(r))})
}

func formatResources(r scheduler.Resources) string {
	return fmt.Sprintf("cpu %dm, memory %s, scratch %s", r.CPUMillis, protocol.FormatBytes(r.MemoryBytes), protocol.FormatBytes(r.ScratchBytes))
}

func (p *scenarioParser) dist(at, v *yaml.Node, path string, d *Dist) {
	present := p.Object(at, v, path,
		p.oneOf("dist", &d.Kind, distKinds),
		p.durField("mean", &d.Mean, false),
		p.posField("sigma", &d.Sigma),
	)
	if present == nil {
		return
	}
	if present["mean"] == nil {
		p.fail(at, path+".mean", "missing: give the mean run time, such as 1m")
	}
	if k := present["sigma"]; k != nil && d.Kind != "lognormal" {
		p.fail(k, path+".sigma", "only for dist: lognormal")
	}
}

// constraintMix reads {weight: 1, key: [values], not: {key: [values]}}.
func (p *scenarioParser) constraintMix(item *yaml.Node, path string) ConstraintMix {
	m := ConstraintMix{Weight: 1}
	p.Pairs(item, item, path, "a mapping {weight: 1, label: [values], not: {label: [values]}}", func(k, v *yaml.Node, kpath string) {
		switch k.Value {
		case "weight":
			m.Weight, _ = p.positive(k, v, kpath)
		case "not":
			p.Pairs(k, v, kpath, "a mapping of label keys to the values to avoid", func(k, v *yaml.Node, kpath string) {
				if sel, ok := p.selector(k, v, kpath, pb.Operator_OPERATOR_NOT_IN); ok {
					m.Selectors = append(m.Selectors, sel)
				}
			})
		default:
			if v.Kind == yaml.ScalarNode && (v.ShortTag() == "!!int" || v.ShortTag() == "!!float") &&
				specyaml.EditDistance(k.Value, "weight") <= 2 {
				p.fail(k, kpath, "unknown field: did you mean weight?")
				return
			}
			if sel, ok := p.selector(k, v, kpath, pb.Operator_OPERATOR_IN); ok {
				m.Selectors = append(m.Selectors, sel)
			}
		}
	})
	sortSelectors(m.Selectors)
	return m
}

func (p *scenarioParser) ceiling(item *yaml.Node, path string) Ceiling {
	c := Ceiling{Weight: 1}
	present := p.Object(item, item, path,
		p.weightField(&c.Weight),
		field{Name: "currency", Read: func(at, v *yaml.Node, path string) {
			s, ok := p.Str(at, v, path)
			if !ok {
				return
			}
			if !protocol.IsCurrencyCode(s) {
				p.fail(at, path, "%s is not a currency: use a 3-letter upper-case ISO 4217 code such as EUR", protocol.Quote(s))
				return
			}
			c.PerCPUHour.Currency = s
			p.later = append(p.later, func() { p.usedCurrency(s, p.file, at.Line, at.Column, path) })
		}},
		field{Name: "cpu_per_hour", Read: func(at, v *yaml.Node, path string) { c.PerCPUHour.Nanos, _ = p.amount(at, v, path) }},
		p.renamed("cpu_hour", "cpu_per_hour"),
	)
	switch {
	case present == nil:
	case present["currency"] != nil && present["cpu_per_hour"] == nil:
		p.fail(item, path+".cpu_per_hour", "missing: give the most a job pays per CPU per hour, or leave out the currency for no ceiling")
	case present["currency"] == nil && present["cpu_per_hour"] != nil:
		p.fail(item, path+".currency", "missing: give the currency of cpu_per_hour, such as EUR")
	}
	return c
}

// usedCurrency reports a currency no class prices in: a ceiling in it would
// keep its jobs from every provider.
func (p *scenarioParser) usedCurrency(currency, file string, line, col int, path string) {
	if p.badCurrency || len(p.s.Classes) == 0 {
		return
	}
	var used []string
	for _, c := range p.s.Classes {
		if c.Pricing.Base.Currency == currency {
			return
		}
		if !slices.Contains(used, c.Pricing.Base.Currency) {
			used = append(used, c.Pricing.Base.Currency)
		}
	}
	p.add(&specyaml.SpecError{File: file, Line: line, Column: col, Path: path,
		Msg: fmt.Sprintf("no class prices in %s, so no provider could ever take such a job: use %s", currency, strings.Join(used, " or "))})
}

func (p *scenarioParser) variants(at, v *yaml.Node, path string) {
	names := map[string]*yaml.Node{}
	for i, item := range p.List(at, v, path) {
		ipath := index(path, i)
		var vr Variant
		var excludeAt *yaml.Node
		var excludes []*yaml.Node
		present := p.Object(item, item, ipath,
			field{Name: "name", Read: func(at, v *yaml.Node, path string) {
				name, ok := p.name(at, v, path, "variant", "open")
				if !ok {
					return
				}
				if first, dup := names[name]; dup {
					p.fail(at, path, "duplicate variant %s, first at line %d: name each variant once", protocol.Quote(name), first.Line)
				}
				names[name], vr.Name = at, name
			}},
			field{Name: "exclude", Read: func(at, v *yaml.Node, path string) {
				excludeAt = at
				for j, x := range p.List(at, v, path) {
					if name, ok := p.Str(x, x, index(path, j)); ok {
						vr.Exclude = append(vr.Exclude, name)
						excludes = append(excludes, x)
					}
				}
			}},
			p.policy("policy", &vr.Policy),
			p.intField("d", &vr.D, 1, 1000),
			p.posField("load", &vr.Load),
			p.oneOf("placement", &vr.Placement, Placements),
			field{Name: "set", Read: func(at, v *yaml.Node, path string) {
				p.Pairs(at, v, path, "a mapping of scenario keys to their values, such as classes.sovereign.count: 10", func(k, val *yaml.Node, kpath string) {
					keys, err := parsePath(k.Value)
					if err != nil {
						p.fail(k, kpath, "%v", err)
						return
					}
					if keys[0].name == "variants" || keys[0].name == "name" {
						p.fail(k, kpath, "a variant sets the scenario it runs, not %s", keys[0].name)
						return
					}
					text, err := yaml.Marshal(val)
					if err != nil {
						p.fail(val, kpath, "%v", err)
						return
					}
					vr.Set = append(vr.Set, VariantSet{Path: k.Value, Value: strings.TrimSpace(string(text)), keys: keys, line: k.Line})
				})
			}},
		)
		if present == nil {
			continue
		}
		if present["name"] == nil {
			p.fail(item, ipath+".name", "missing: name the variant, such as open")
		}
		// A baseline that ignores a setting the same variant gives is a
		// contradiction: say so rather than run something else.
		if k := present["policy"]; k != nil && vr.Placement == PlacementSparrow {
			p.fail(k, ipath+".policy", "sparrow places on the least loaded of its probes: remove the policy, or use placement: cuivre with policy: least-loaded")
		}
		if k := present["d"]; k != nil && vr.Placement == PlacementRandom {
			p.fail(k, ipath+".d", "random asks one provider a round: remove d, or use placement: sparrow")
		}
		if k := present["d"]; k != nil && vr.Placement == PlacementOmniscient {
			p.fail(k, ipath+".d", "omniscient sees every provider: remove d")
		}
		if k := present["load"]; k != nil {
			p.later = append(p.later, func() {
				if p.hasTrace {
					p.fail(k, ipath+".load", "a trace sets the arrivals: remove the load")
				}
			})
		}
		if excludeAt != nil {
			p.later = append(p.later, func() { p.checkExclude(vr.Exclude, excludes, excludeAt, ipath+".exclude") })
		}
		p.s.Variants = append(p.s.Variants, vr)
	}
}

// checkExclude reports excluded classes that do not exist, and a variant
// that excludes every class.
func (p *scenarioParser) checkExclude(exclude []string, nodes []*yaml.Node, at *yaml.Node, path string) {
	if p.badName || len(p.s.Classes) == 0 {
		return
	}
	var classes []string
	for _, c := range p.s.Classes {
		classes = append(classes, c.Name)
	}
	for i, name := range exclude {
		if !slices.Contains(classes, name) {
			p.fail(nodes[i], index(path, i), "unknown class %s%s", protocol.Quote(name), specyaml.Suggest(name, classes, "the classes are"))
		}
	}
	for _, c := range classes {
		if !slices.Contains(exclude, c) {
			return
		}
	}
	p.fail(at, path, "excludes every class: keep at least one")
}

// ---- defaults ----

func (p *scenarioParser) defaults() {
	s := p.s
	if s.Name == "" && p.file != "" {
		base := filepath.Base(p.file)
		s.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	if s.Drain == 0 {
		s.Drain = time.Hour
	}
	if s.SampleEvery == 0 {
		s.SampleEvery = max(time.Second, s.Duration/200)
	}
	d := &s.Discovery
	d.K, d.Alpha, d.Beta = cmp.Or(d.K, DefaultK), cmp.Or(d.Alpha, DefaultAlpha), cmp.Or(d.Beta, DefaultBeta)
	d.Requesters = cmp.Or(d.Requesters, ModeClient)
	if !p.dialSet {
		d.DialRoundTrips = DefaultDialRoundTrips
	}
	if d.RecordTTL == 0 {
		d.RecordTTL = scheduler.DefaultProvideValidity
	}
	if d.CacheTTL == 0 {
		d.CacheTTL = scheduler.DefaultCandidateTTL
	}
	if s.Scheduler.DeadFor == 0 {
		s.Scheduler.DeadFor = DefaultDeadFor
	}
	if s.Scheduler.Placement == "" {
		s.Scheduler.Placement = PlacementCuivre
	}
	if s.Scheduler.PolicyName == "" {
		s.Scheduler.PolicyName = scheduler.Balanced.Name
	}
	if pol, err := scheduler.PolicyByName(s.Scheduler.PolicyName); err == nil {
		s.Scheduler.Config.Policy = pol
	}
	uniform := func() Weights {
		var w Weights
		for _, r := range s.Network.Regions {
			w = append(w, Weight{Name: r, Weight: 1})
		}
		return w
	}
	if s.Requesters.Count == 0 {
		s.Requesters.Count = 1
	}
	if !p.batchSet {
		s.Requesters.BatchDelay = DefaultBatchDelay
	}
	if len(s.Requesters.Regions) == 0 {
		s.Requesters.Regions = uniform()
	}
	for i := range s.Classes {
		c := &s.Classes[i]
		if len(c.Regions) == 0 {
			c.Regions = uniform()
		}
		if c.Churn.Session > 0 && c.Churn.Downtime == 0 {
			c.Churn.Downtime = c.Churn.Session / 10
		}
		if c.LeaseTime.isZero() {
			c.LeaseTime = c.ServiceTime
		}
		if c.Churn.Fast > 0 && c.Churn.FastDowntime == 0 {
			c.Churn.FastDowntime = DefaultFastDowntime
		}
	}
	w := &s.Workload
	a := &w.Arrivals
	if a.Process == "" {
		a.Process = "poisson"
	}
	if a.BurstFactor == 0 {
		a.BurstFactor = 5
	}
	if a.BurstOn == 0 {
		a.BurstOn = time.Minute
	}
	if a.BurstOff == 0 {
		a.BurstOff = 10 * time.Minute
	}
	if w.Duration.Kind == "" {
		w.Duration.Kind = "exponential"
	}
	if w.Duration.Kind == "lognormal" && w.Duration.Sigma == 0 {
		w.Duration.Sigma = 1
	}
	if w.TimeoutFactor == 0 {
		w.TimeoutFactor = 2
	}
}

// ---- traces ----

// traceColumns are the columns of a trace, the required ones first.
var traceColumns = []string{"at", "cpu", "memory", "run", "scratch", "max_price", "currency", "constraints"}

const requiredTraceColumns = 4

// trace reads the trace file at path (as written in the scenario, at node
// at) into the workload.
func (p *scenarioParser) trace(at *yaml.Node, path, file string) {
	if p.readFile == nil {
		p.fail(at, path, "cannot read %s: traces are not supported here", protocol.Quote(file))
		return
	}
	data, err := p.readFile(file)
	if err != nil {
		p.fail(at, path, "%v", err)
		return
	}
	name := file
	if !filepath.IsAbs(file) && p.file != "" {
		name = filepath.Join(filepath.Dir(p.file), file)
	}
	jobs, pos, errs := parseTrace(name, data)
	for _, e := range errs {
		p.add(e)
	}
	p.s.Workload.Trace = jobs
	p.later = append(p.later, func() {
		for i, j := range jobs {
			p.fitsAClass(j.Resources, name, pos[i].line, 0, "")
			if c := j.MaxPrice.Currency; c != "" {
				p.usedCurrency(c, name, pos[i].line, pos[i].priceCol, "max_price")
			}
			for _, sel := range j.Constraints {
				for _, v := range sel.Values {
					if sel.Key == scheduler.LabelRegion && p.regionsOK && !slices.Contains(p.s.Network.Regions, v) {
						p.add(&specyaml.SpecError{File: name, Line: pos[i].line, Column: pos[i].constraintsCol, Path: "constraints",
							Msg: fmt.Sprintf("unknown region %s%s", protocol.Quote(v), specyaml.Suggest(v, p.s.Network.Regions, "the regions are"))})
					}
				}
			}
		}
	})
}

// tracePos is where a trace row is written: its line, and the columns of
// its max_price and constraints.
type tracePos struct{ line, priceCol, constraintsCol int }

// parseTrace reads a trace: a CSV file with a header row naming its columns.
// Errors are located by line, column and column name.
func parseTrace(name string, data []byte) ([]TraceJob, []tracePos, []*specyaml.SpecError) {
	var errs []*specyaml.SpecError
	fail := func(line, col int, path, format string, args ...any) {
		if len(errs) < maxKeptErrors {
			errs = append(errs, &specyaml.SpecError{File: name, Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)})
		}
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	r.Comment = '#'
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	csvError := func(err error) {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			fail(pe.Line, pe.Column, "", "%v", pe.Err)
		} else {
			fail(0, 0, "", "%v", err)
		}
	}

	header, err := r.Read()
	if err == io.EOF {
		fail(0, 0, "", "empty trace: start with a header, such as at,cpu,memory,run")
		return nil, nil, errs
	}
	if err != nil {
		csvError(err)
		return nil, nil, errs
	}
	col := map[string]int{}
	for i, h := range header {
		line, c := r.FieldPos(i)
		h = strings.ToLower(strings.TrimSpace(h))
		switch _, dup := col[h]; {
		case !slices.Contains(traceColumns, h):
			fail(line, c, h, "unknown column%s", specyaml.Suggest(h, traceColumns, "the columns are"))
		case dup:
			fail(line, c, h, "duplicate column: keep one")
		default:
			col[h] = i
		}
	}
	for _, h := range traceColumns[:requiredTraceColumns] {
		if _, ok := col[h]; !ok {
			line, _ := r.FieldPos(0)
			fail(line, 0, h, "missing column: the header needs at least %s", strings.Join(traceColumns[:requiredTraceColumns], ","))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}

	var jobs []TraceJob
	var pos []tracePos
	var last time.Duration
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) {
			csvError(err)
			break
		}
		if err != nil {
			csvError(err)
			continue
		}
		line, _ := r.FieldPos(0)
		get := func(name string) (string, int, bool) {
			i, ok := col[name]
			if !ok {
				return "", 0, false
			}
			_, c := r.FieldPos(i)
			return strings.TrimSpace(rec[i]), c, true
		}
		var j TraceJob
		ok := true
		bad := func(c int, path, format string, args ...any) {
			fail(line, c, path, format, args...)
			ok = false
		}
		required := func(name string) (string, int) {
			v, c, _ := get(name)
			if v == "" {
				bad(c, name, "missing")
			}
			return v, c
		}

		if v, c := required("at"); v != "" {
			at, err := parseSeconds(v)
			switch {
			case err != nil:
				bad(c, "at", "%v", err)
			case at < 0:
				bad(c, "at", "%s is negative", v)
			case at < last:
				bad(c, "at", "%s is before the previous row's %v: sort the rows by at", v, last)
			default:
				j.At, last = at, at
			}
		}
		if v, c := required("run"); v != "" {
			run, err := parseSeconds(v)
			switch {
			case err != nil:
				bad(c, "run", "%v", err)
			case run <= 0:
				bad(c, "run", "%s: use a run time above 0", v)
			default:
				j.Run = run
			}
		}
		quantity := func(name string, dst *uint64, parse func(string) (uint64, error), need bool) {
			v, c, _ := get(name)
			if v == "" {
				if need {
					bad(c, name, "missing")
				}
				return
			}
			n, err := parse(v)
			switch {
			case err != nil:
				bad(c, name, "%v", err)
			case need && n == 0:
				bad(c, name, "%s: use an amount above 0", protocol.Quote(v))
			default:
				*dst = n
			}
		}
		quantity("cpu", &j.Resources.CPUMillis, protocol.ParseCPU, true)
		quantity("memory", &j.Resources.MemoryBytes, protocol.ParseQuantity, true)
		quantity("scratch", &j.Resources.ScratchBytes, protocol.ParseQuantity, false)

		price, priceCol, _ := get("max_price")
		currency, curCol, _ := get("currency")
		switch {
		case price == "" && currency != "":
			bad(curCol, "currency", "a currency without a max_price: give both, or neither")
		case price == "":
		case strings.ContainsAny(price, " \t") && currency != "":
			bad(curCol, "currency", "the max_price already names its currency: leave this column empty")
		case !strings.ContainsAny(price, " \t") && currency == "":
			bad(priceCol, "max_price", `no currency: fill the currency column, or write "0.05 EUR"`)
		default:
			text := price
			if currency != "" {
				text += " " + currency
			}
			if a, err := protocol.ParsePrice(text); err != nil {
				bad(priceCol, "max_price", "%v", err)
			} else {
				j.MaxPrice = scheduler.Amount{Currency: a.Currency, Nanos: a.Nanos}
			}
		}
		v, constraintsCol, _ := get("constraints")
		if v != "" {
			sels, err := parseTraceConstraints(v)
			if err != nil {
				bad(constraintsCol, "constraints", "%v", err)
			}
			j.Constraints = sels
		}
		if ok {
			jobs = append(jobs, j)
			pos = append(pos, tracePos{line, priceCol, constraintsCol})
		}
	}
	if len(jobs) == 0 && len(errs) == 0 {
		line, _ := r.FieldPos(0)
		fail(line, 0, "", "no jobs: add rows after the header")
	}
	return jobs, pos, errs
}

// parseSeconds reads a Go duration ("1.5s", "2m") or plain seconds ("1.5").
func parseSeconds(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
		return 0, fmt.Errorf("bad time %s: use a Go duration such as 1.5s, or plain seconds", protocol.Quote(s))
	}
	return time.Duration(math.Round(f * float64(time.Second))), nil
}

// parseTraceConstraints reads "jurisdiction=fr|de;certification!=none": key,
// = (in) or != (not in), values separated by '|', selectors by ';'.
func parseTraceConstraints(s string) ([]scheduler.Selector, error) {
	var sels []scheduler.Selector
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		op := pb.Operator_OPERATOR_IN
		key, values, found := strings.Cut(part, "!=")
		if found {
			op = pb.Operator_OPERATOR_NOT_IN
		} else if key, values, found = strings.Cut(part, "="); !found {
			return nil, fmt.Errorf("bad constraint %s: write key=value|value or key!=value, separated by ';'", protocol.Quote(part))
		}
		key = strings.TrimSpace(key)
		if msg := labelKeyError(key); msg != "" {
			return nil, errors.New(msg)
		}
		sel := scheduler.Selector{Key: key, Op: op}
		for v := range strings.SplitSeq(values, "|") {
			value := strings.TrimSpace(v)
			if err := labelValueError(value); err != nil {
				return nil, fmt.Errorf("constraint on %s: %w", key, err)
			}
			sel.Values = append(sel.Values, value)
		}
		slices.Sort(sel.Values)
		sel.Values = slices.Compact(sel.Values)
		sels = append(sels, sel)
	}
	sortSelectors(sels)
	return sels, nil
}
