package simulations

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol/specyaml"
)

// maxSweepValues bounds the values of one parameter, a range's included:
// a sweep of more points than this is a typo in a range.
const maxSweepValues = 1000

// SweepParam is one parameter of a sweep: a path into the scenario file and
// the values it takes there, each written as it would be in the file.
//
// A path is keys separated by dots, as the parser's error messages name
// them: workload.arrivals.load, scheduler.d, classes.sovereign.subsidy. An
// entry of a list is chosen by its index or by its name key, after a dot
// or in brackets: classes.0.count, classes[sovereign].count,
// workload.sizes[1].cpu. A key the file leaves out is added, sections
// included (scheduler.max_attempts in a file without it), so that every
// key of the grammar can be swept; the parser then checks it as any other.
type SweepParam struct {
	Path   string
	Values []string
	keys   []pathKey
}

// pathKey is one step of a path: a key of a mapping, or an entry of a list
// by index or name. bracketed says it was written in brackets, so it may
// only choose a list entry.
type pathKey struct {
	name      string
	bracketed bool
}

// ParseSweepParam reads PATH=VALUES. VALUES are separated by commas (not
// those inside brackets, braces or quotes); a value lo:hi:step of three
// numbers, or three durations, stands for lo, lo+step, ... up to hi
// included.
func ParseSweepParam(s string) (SweepParam, error) {
	path, vals, ok := strings.Cut(s, "=")
	path = strings.TrimSpace(path)
	if !ok || path == "" {
		return SweepParam{}, fmt.Errorf("%q: want PATH=VALUES, such as workload.arrivals.load=0.4,0.6,0.8 or scheduler.d=1:4:1", s)
	}
	keys, err := parsePath(path)
	if err != nil {
		return SweepParam{}, fmt.Errorf("%s: %w", path, err)
	}
	p := SweepParam{Path: path, keys: keys}
	items, err := splitTop(vals)
	if err != nil {
		return SweepParam{}, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for _, item := range items {
		if item == "" {
			return SweepParam{}, fmt.Errorf("%s: an empty value in %q", path, vals)
		}
		expanded, err := expandRange(item)
		if err != nil {
			return SweepParam{}, fmt.Errorf("%s: %w", path, err)
		}
		for _, v := range expanded {
			if seen[v] {
				return SweepParam{}, fmt.Errorf("%s: value %s given twice", path, v)
			}
			seen[v] = true
			p.Values = append(p.Values, v)
			if len(p.Values) > maxSweepValues {
				return SweepParam{}, fmt.Errorf("%s: more than %d values", path, maxSweepValues)
			}
		}
	}
	if len(p.Values) == 0 {
		return SweepParam{}, fmt.Errorf("%s: no values: give them after the =, separated by commas", path)
	}
	return p, nil
}

// ParseSet reads PATH=VALUE, one value set at every point of a sweep or
// in a run: a value as in the file, a comma or a colon included; empty
// means the key is left out, to take its default (workload.arrivals.rate=
// to give a load instead of the file's rate).
func ParseSet(s string) (SweepParam, error) {
	path, val, ok := strings.Cut(s, "=")
	path = strings.TrimSpace(path)
	if !ok || path == "" {
		return SweepParam{}, fmt.Errorf("%q: want PATH=VALUE, such as scheduler.d=3", s)
	}
	keys, err := parsePath(path)
	if err != nil {
		return SweepParam{}, fmt.Errorf("%s: %w", path, err)
	}
	return SweepParam{Path: path, Values: []string{strings.TrimSpace(val)}, keys: keys}, nil
}

// LoadScenarioSet reads and parses a scenario file as LoadScenario does,
// with each of sets (from ParseSet) set first.
func LoadScenarioSet(path string, sets []SweepParam) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	return loadPoint(path, data, besideFile(path), sets, nil)
}

// loadPoint parses the scenario data with sets and the values of params
// (one each) set; its errors name the assignments.
func loadPoint(path string, data []byte, read func(string) ([]byte, error), fixed []SweepParam, params []set) (*Scenario, error) {
	var all []set
	for i := range fixed {
		all = append(all, set{param: &fixed[i], value: fixed[i].Values[0], fixed: true})
	}
	all = append(all, params...)
	var patchErr error
	sc, err := parseScenario(path, data, read, func(root *yaml.Node) error {
		patchErr = patch(root, all)
		return patchErr
	})
	switch {
	case patchErr != nil:
		return nil, patchErr
	case err != nil && len(all) > 0:
		var at []string
		for _, s := range all {
			flag := "--param"
			if s.fixed {
				flag = "--set"
			}
			at = append(at, flag+" "+s.param.Path+"="+s.value)
		}
		return nil, fmt.Errorf("%s: %w", strings.Join(at, " "), err)
	}
	return sc, err
}

// parsePath splits a path into its keys: a.b[c].d[0] is a, b, [c], d, [0].
func parsePath(path string) ([]pathKey, error) {
	var keys []pathKey
	i := 0
	for i < len(path) {
		switch path[i] {
		case '.':
			if i == 0 || i == len(path)-1 || path[i+1] == '.' || path[i+1] == '[' {
				return nil, fmt.Errorf("a key is missing around a dot")
			}
			i++
		case '[':
			end := strings.IndexByte(path[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("a [ without its ]")
			}
			sel := strings.TrimSpace(path[i+1 : i+end])
			if sel == "" {
				return nil, fmt.Errorf("empty brackets: give an index or a name")
			}
			if len(keys) == 0 {
				return nil, fmt.Errorf("brackets choose an entry of a list: name the list first")
			}
			keys = append(keys, pathKey{name: sel, bracketed: true})
			i += end + 1
			if i < len(path) && path[i] != '.' && path[i] != '[' {
				return nil, fmt.Errorf("a dot is missing after ]")
			}
		case ']':
			return nil, fmt.Errorf("a ] without its [")
		default:
			end := strings.IndexAny(path[i:], ".[]")
			if end < 0 {
				end = len(path) - i
			}
			keys = append(keys, pathKey{name: path[i : i+end]})
			i += end
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("an empty path")
	}
	return keys, nil
}

// splitTop splits s at the commas outside brackets, braces and quotes,
// trimming each item.
func splitTop(s string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("%q: a %c without its opening", s, c)
			}
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if quote != 0 || depth != 0 {
		return nil, fmt.Errorf("%q: a quote or bracket is not closed", s)
	}
	return append(out, strings.TrimSpace(s[start:])), nil
}

// expandRange returns the values of lo:hi:step, or item alone if it is not
// such a range. Numbers are written without float artefacts (0.1:0.3:0.1
// gives 0.1, 0.2, 0.3), durations as Go writes them.
func expandRange(item string) ([]string, error) {
	parts := strings.Split(item, ":")
	if len(parts) != 3 || strings.ContainsAny(item, "{}[]\"' ") {
		return []string{item}, nil
	}
	var x [3]float64
	numbers := true
	for i, part := range parts {
		v, err := strconv.ParseFloat(part, 64)
		if err != nil || !finite(v) {
			numbers = false
			break
		}
		x[i] = v
	}
	durations := !numbers
	var d [3]time.Duration
	if durations {
		for i, part := range parts {
			v, err := time.ParseDuration(part)
			if err != nil {
				durations = false
				break
			}
			d[i] = v
			x[i] = float64(v)
		}
	}
	if !numbers && !durations {
		return []string{item}, nil
	}
	lo, hi, step := x[0], x[1], x[2]
	switch {
	case step <= 0:
		return nil, fmt.Errorf("range %s: the step must be above 0", item)
	case hi < lo:
		return nil, fmt.Errorf("range %s: the end is below the start", item)
	case (hi-lo)/step >= maxSweepValues:
		return nil, fmt.Errorf("range %s: more than %d values", item, maxSweepValues)
	}
	n := int(math.Floor((hi-lo)/step+1e-9)) + 1
	out := make([]string, n)
	for k := range n {
		v := lo + float64(k)*step
		if durations {
			out[k] = (d[0] + time.Duration(k)*d[2]).String()
			continue
		}
		// Twelve significant digits drop the float error of lo + k*step.
		v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
		out[k] = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return out, nil
}

// set is one assignment of a sweep: a path and its value; fixed if it is
// the same at every point (--set).
type set struct {
	param *SweepParam
	value string
	fixed bool
}

// patch sets each path of sets to its value in the document under root.
func patch(root *yaml.Node, sets []set) error {
	for _, s := range sets {
		if err := setPath(root, s.param.keys, s.value); err != nil {
			flag := "--param"
			if s.fixed {
				flag = "--set"
			}
			return fmt.Errorf("%s %s: %w", flag, s.param.Path, err)
		}
	}
	return nil
}

// setPath walks keys from n, adding the mapping keys that are missing, and
// replaces the node at their end with value read as YAML.
func setPath(n *yaml.Node, keys []pathKey, value string) error {
	v, err := valueNode(value)
	if err != nil {
		return err
	}
	var walked strings.Builder // the path so far, as the parser names it
	where := func() string {
		if walked.Len() == 0 {
			return "the top level"
		}
		return walked.String()
	}
	for i, k := range keys {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			// An empty section ("scheduler:"): a mapping to fill.
			n.Kind, n.Tag, n.Value, n.Style = yaml.MappingNode, "!!map", "", 0
		}
		var slot **yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			if k.bracketed {
				return fmt.Errorf("[%s]: %s is a section, not a list: name its key after a dot", k.name, where())
			}
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == k.name {
					slot = &n.Content[j+1]
					break
				}
			}
			if slot == nil {
				// A key left out: add it, a section if the path goes on.
				key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.name, Line: n.Line, Column: n.Column}
				val := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
				n.Content = append(n.Content, key, val)
				slot = &n.Content[len(n.Content)-1]
			}
			if walked.Len() > 0 {
				walked.WriteByte('.')
			}
			walked.WriteString(k.name)
		case yaml.SequenceNode:
			j, err := entry(n, k.name, where())
			if err != nil {
				return err
			}
			slot = &n.Content[j]
			fmt.Fprintf(&walked, "[%d]", j)
		default:
			return fmt.Errorf("%s: %s is a value (%s), not a section or a list", k.name, where(), specyaml.Describe(n))
		}
		if i == len(keys)-1 {
			place(v, *slot)
			*slot = v
			return nil
		}
		n = *slot
	}
	return nil
}

// entry finds the entry of list n that sel chooses: an index, or the entry
// whose name key is sel.
func entry(n *yaml.Node, sel, where string) (int, error) {
	if i, err := strconv.Atoi(sel); err == nil {
		if i < 0 || i >= len(n.Content) {
			return 0, fmt.Errorf("%s has %d entries: index %d is out of range (from 0)", where, len(n.Content), i)
		}
		return i, nil
	}
	var names []string
	for i, item := range n.Content {
		if item.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(item.Content); j += 2 {
			if item.Content[j].Value == "name" {
				if item.Content[j+1].Value == sel {
					return i, nil
				}
				names = append(names, item.Content[j+1].Value)
			}
		}
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("%s is a list without names: choose its entry by index, from 0 to %d", where, len(n.Content)-1)
	}
	return 0, fmt.Errorf("%s has no entry named %q%s", where, sel, specyaml.Suggest(sel, names, "the names are"))
}

// valueNode reads a value as the YAML it would be in the file.
func valueNode(value string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		_, msg := specyaml.SyntaxLine(err)
		return nil, fmt.Errorf("value %q is not YAML: %s", value, msg)
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}, nil
	}
	return doc.Content[0], nil
}

// place gives n and everything under it the line and column of at, so
// that the parser's errors about a swept value point where it is set.
func place(n, at *yaml.Node) {
	n.Line, n.Column = at.Line, at.Column
	for _, c := range n.Content {
		place(c, at)
	}
}

// SweepPoint is one point of a sweep: a value of each parameter, and the
// scenario with them set.
type SweepPoint struct {
	Values   []string // one per parameter, in order
	Scenario *Scenario
}

// LoadSweep reads the scenario file at path and returns every combination
// of the params' values, the first parameter's varying slowest, each
// scenario parsed and validated with sets (from ParseSet) and its values
// set. Its error names the parameters and their values, then the parser's
// error.
func LoadSweep(path string, params, sets []SweepParam) ([]SweepPoint, error) {
	if len(params) == 0 {
		return nil, errors.New("no --param: give one or two, such as --param workload.arrivals.load=0.4,0.6,0.8")
	}
	all := append(slices.Clone(params), sets...)
	for i := range all {
		for j := range i {
			if all[i].Path == all[j].Path {
				return nil, fmt.Errorf("%s set twice: give each key once, a parameter with all its values", all[i].Path)
			}
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	read := besideFile(path)
	var points []SweepPoint
	idx := make([]int, len(params))
	for {
		sets := make([]set, len(params))
		values := make([]string, len(params))
		for i := range params {
			sets[i] = set{param: &params[i], value: params[i].Values[idx[i]]}
			values[i] = sets[i].value
		}
		sc, err := loadPoint(path, data, read, all[len(params):], sets)
		if err != nil {
			return nil, err
		}
		points = append(points, SweepPoint{Values: values, Scenario: sc})
		// The next combination, the last parameter fastest.
		i := len(params) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(params[i].Values) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return points, nil
		}
	}
}
