package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol/specyaml"
)

// EnvPrefix starts the name of every environment variable Load reads.
const EnvPrefix = "CUIVRE_"

// FieldError is one setting that is wrong: its path, why, and, when Load
// knows it, where the value came from.
type FieldError struct {
	// Source is where the value was set: "config.yaml:12:3" (file, line,
	// column), an environment variable such as "CUIVRE_LABELS_REGION", or
	// "flag". Empty for a default, and in errors from Validate.
	Source string
	// Path names the setting as in the YAML file: "labels.jurisdiction",
	// "listen[1]", `labels.extra["tier"]`; "" for the file as a whole.
	Path string
	// Msg says what is wrong and what to do.
	Msg string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads the configuration: Default, then the YAML file at path (skipped
// when path is ""), then the environment, then overrides, each layer
// replacing the settings it names; then it validates the result.
//
// The file is strict: an unknown or repeated key is an error at its line, and
// so is a value of the wrong shape. env is in os.Environ form ("KEY=value");
// Load reads the variables named EnvName(path) for each setting, such as
// CUIVRE_API_LISTEN for api.listen (the first of a repeated name wins, as with
// os.Getenv), and ignores every other variable, so CUIVRE_DIR and the CLI's own
// variables can share the environment. Lists are comma-separated
// ("a,b"), maps comma-separated key=value pairs ("tier=gold,rack=b2"), and an
// empty value sets an empty string, list or map, or unsets an override.
// overrides come from flags, keyed by path ("api.listen"), in the same
// spelling as the environment; an unknown path is an error.
//
// Every error found is reported, joined, each a *FieldError naming the source,
// the setting and the reason; on error the returned Config is the zero value.
func Load(path string, env []string, overrides map[string]string) (Config, error) {
	c := Default()
	l := loader{cfg: reflect.ValueOf(&c).Elem(), sources: map[string]string{}}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Config{}, fmt.Errorf("config file %s does not exist: create it with `cuivre init`, or name another one: %w", path, err)
			}
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		l.file(path, data)
	}
	l.env(env)
	l.overrides(overrides)
	if err := c.Validate(); err != nil {
		for _, e := range unjoin(err) {
			var fe *FieldError
			if errors.As(e, &fe) && fe.Source == "" {
				fe.Source = l.sourceOf(fe.Path)
			}
			l.errs = append(l.errs, e)
		}
	}
	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return c, nil
}

// EnvName returns the environment variable Load reads for the setting at
// path: EnvPrefix and the path upper-cased, dots as underscores
// ("api.listen" is CUIVRE_API_LISTEN). It returns "" for a path that is not a
// setting.
func EnvName(path string) string {
	if _, ok := settingByPath[path]; !ok {
		return ""
	}
	return envName(path)
}

func envName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Paths returns the path of every setting, in the order of the file. The
// caller owns the slice.
func Paths() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.path
	}
	return out
}

// setting is one leaf of Config: a value an operator sets.
type setting struct {
	path  string // "capacity.reserve.cpu"
	index []int  // reflect field index from Config
}

var (
	settings      = walkSettings(reflect.TypeFor[Config](), "", nil)
	settingByPath = indexSettings(settings)
	textUnmarshal = reflect.TypeFor[encoding.TextUnmarshaler]()
	stringSlice   = reflect.TypeFor[[]string]()
	stringMap     = reflect.TypeFor[map[string]string]()
)

const (
	msgNeedsValue = "empty: write a value, or remove the line to keep the default"
	msgAlias      = "anchors and aliases are not supported: write the value out"
)

func indexSettings(ss []setting) map[string]setting {
	m := make(map[string]setting, len(ss))
	for _, s := range ss {
		m[s.path] = s
	}
	return m
}

// isSection reports whether t is a group of settings rather than one value.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshal)
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func walkSettings(t reflect.Type, prefix string, index []int) []setting {
	var out []setting
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" || name == "-" {
			continue
		}
		idx := append(slices.Clone(index), i)
		path := specyaml.JoinPath(prefix, name)
		if isSection(f.Type) {
			out = append(out, walkSettings(f.Type, path, idx)...)
		} else {
			out = append(out, setting{path: path, index: idx})
		}
	}
	return out
}

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func keyPath(path, key string) string { return fmt.Sprintf("%s[%q]", path, key) }

// loader applies the layers of Load to one Config, remembering where each
// setting came from so validation errors can point there.
type loader struct {
	cfg     reflect.Value
	sources map[string]string // path (or path[i]) -> source
	errs    []error
}

func (l *loader) fail(source, path, format string, args ...any) {
	l.errs = append(l.errs, &FieldError{Source: source, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// setSource records that path (and everything under it) now comes from source.
func (l *loader) setSource(path, source string) {
	for p := range l.sources {
		if strings.HasPrefix(p, path+"[") {
			delete(l.sources, p)
		}
	}
	l.sources[path] = source
}

// sourceOf returns where the value at path came from: path itself, or the
// nearest enclosing list, map or setting.
func (l *loader) sourceOf(path string) string {
	for {
		if s, ok := l.sources[path]; ok {
			return s
		}
		i := strings.LastIndexAny(path, "[.")
		if i < 0 {
			return ""
		}
		path = path[:i]
	}
}

// file decodes a YAML document over the config.
func (l *loader) file(name string, data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return // an empty file: every default stands
		}
		msg, where := strings.TrimPrefix(err.Error(), "yaml: "), name
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if line, after, ok := strings.Cut(rest, ": "); ok && digits(line) {
				msg, where = after, name+":"+line
			}
		}
		l.fail(where, "", "not valid YAML: %s", msg)
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		l.fail(fmt.Sprintf("%s:%d", name, extra.Line), "", "a second YAML document: a config file holds one")
		return
	}
	if len(doc.Content) == 0 {
		return
	}
	l.section(name, doc.Content[0], l.cfg, "")
}

func pos(name string, n *yaml.Node) string { return fmt.Sprintf("%s:%d:%d", name, n.Line, n.Column) }

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.Value)
}

// section decodes a mapping of settings into the struct v.
func (l *loader) section(name string, n *yaml.Node, v reflect.Value, path string) {
	switch {
	case n.Kind == yaml.AliasNode:
		l.fail(pos(name, n), path, "%s", msgAlias)
		return
	case isNull(n):
		return // "nat:" with nothing under it keeps the defaults
	case n.Kind != yaml.MappingNode:
		what := "the file"
		if path != "" {
			what = path
		}
		l.fail(pos(name, n), path, "found %s: %s is a mapping of settings (key: value)", describe(n), what)
		return
	}
	t := v.Type()
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.fail(pos(name, k), path, "found %s as a key: keys are setting names", describe(k))
			continue
		}
		p := specyaml.JoinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			l.fail(pos(name, k), p, "repeated: already set at line %d", line)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fieldByName(t, k.Value)
		if !ok {
			l.fail(pos(name, k), p, "unknown setting%s", suggest(k.Value, fieldNames(t)))
			continue
		}
		fv := v.Field(fi)
		if isSection(fv.Type()) {
			l.section(name, val, fv, p)
		} else {
			l.leaf(name, val, fv, p)
		}
	}
}

func fieldByName(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if yamlName(t.Field(i)) == name {
			return i, true
		}
	}
	return 0, false
}

func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if n := yamlName(t.Field(i)); n != "" && n != "-" {
			out = append(out, n)
		}
	}
	return out
}

// leaf decodes one setting from the file.
func (l *loader) leaf(name string, n *yaml.Node, v reflect.Value, path string) {
	at := pos(name, n)
	if n.Kind == yaml.AliasNode {
		l.fail(at, path, "%s", msgAlias)
		return
	}
	l.setSource(path, at)
	switch v.Type() {
	case stringSlice:
		if isNull(n) {
			v.Set(reflect.ValueOf([]string{}))
			return
		}
		if n.Kind != yaml.SequenceNode {
			l.fail(at, path, "found %s: write a list, such as [a, b], or one item per line after \"- \"", describe(n))
			return
		}
		items := make([]string, 0, len(n.Content))
		for i, item := range n.Content {
			if item.Kind != yaml.ScalarNode || isNull(item) {
				l.fail(pos(name, item), indexPath(path, i), "found %s: list items are single values", describe(item))
				continue
			}
			l.sources[indexPath(path, i)] = pos(name, item)
			items = append(items, item.Value)
		}
		v.Set(reflect.ValueOf(items))
	case stringMap:
		if isNull(n) {
			v.Set(reflect.ValueOf(map[string]string{}))
			return
		}
		if n.Kind != yaml.MappingNode {
			l.fail(at, path, "found %s: write a mapping, such as {key: value}", describe(n))
			return
		}
		m := make(map[string]string, len(n.Content)/2)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || val.Kind != yaml.ScalarNode || isNull(k) {
				l.fail(pos(name, k), path, "found %s: %s: entries are key: value, both single values", describe(k), describe(val))
				continue
			}
			kp := keyPath(path, k.Value)
			if line, dup := seen[k.Value]; dup {
				l.fail(pos(name, k), kp, "repeated: already set at line %d", line)
				continue
			}
			seen[k.Value] = k.Line
			l.sources[kp] = pos(name, k)
			m[k.Value] = val.Value
		}
		v.Set(reflect.ValueOf(m))
	default:
		if n.Kind != yaml.ScalarNode {
			l.fail(at, path, "found %s: write a single value", describe(n))
			return
		}
		if isNull(n) {
			switch v.Kind() {
			case reflect.Pointer, reflect.String:
				v.SetZero()
			default:
				l.fail(at, path, "%s", msgNeedsValue)
			}
			return
		}
		if err := setText(v, n.Value); err != nil {
			l.fail(at, path, "%v", err)
		}
	}
}

// env applies the CUIVRE_* variables that name a setting.
func (l *loader) env(env []string) {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			continue
		}
		if _, dup := vars[k]; !dup {
			vars[k] = v
		}
	}
	for _, s := range settings {
		name := envName(s.path)
		if v, ok := vars[name]; ok {
			l.set(name, s, v)
		}
	}
}

// overrides applies flag values, in path order so errors come out sorted.
func (l *loader) overrides(o map[string]string) {
	paths := make([]string, 0, len(o))
	for p := range o {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		s, ok := settingByPath[p]
		if !ok {
			var under []string
			for _, s := range settings {
				if strings.HasPrefix(s.path, p+".") {
					under = append(under, s.path)
				}
			}
			if len(under) > 0 {
				l.fail("flag", p, "a section, not a setting: name one of %s", strings.Join(under, ", "))
			} else {
				l.fail("flag", p, "no such setting%s", suggest(p, Paths()))
			}
			continue
		}
		l.set("flag", s, o[p])
	}
}

// set applies one setting written as text, from the environment or a flag.
func (l *loader) set(source string, s setting, text string) {
	v := l.cfg.FieldByIndex(s.index)
	l.setSource(s.path, source)
	switch v.Type() {
	case stringSlice:
		v.Set(reflect.ValueOf(splitList(text)))
	case stringMap:
		m := map[string]string{}
		for _, kv := range splitList(text) {
			k, val, ok := strings.Cut(kv, "=")
			if !ok {
				l.fail(source, s.path, "bad entry %q: write key=value pairs separated by commas", kv)
				continue
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
	default:
		if err := setText(v, text); err != nil {
			l.fail(source, s.path, "%v", err)
		}
	}
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items; "" is the empty list.
func splitList(s string) []string {
	out := []string{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// setText sets a single-valued setting from its text. For an override (a
// pointer), "" unsets it.
func setText(v reflect.Value, s string) error {
	if v.Kind() == reflect.Pointer {
		if s == "" {
			v.SetZero()
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := setText(p.Elem(), s); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("bad boolean %q: use true or false", s)
		}
		v.SetBool(b)
	case reflect.Uint32:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("bad number %q: use a whole number from 0 to %d", s, uint32(1<<32-1))
		}
		v.SetUint(n)
	default:
		panic(fmt.Sprintf("config: no text form for a setting of type %s", v.Type()))
	}
	return nil
}

// suggest returns ` (did you mean "x"?)` for the closest of names to s, if one
// is close enough to be a typo, else "".
func suggest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := specyaml.EditDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// unjoin returns the errors an errors.Join put together, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
