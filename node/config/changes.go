package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// Change is one setting whose value differs between two configs, its values
// written as config.yaml takes them.
type Change struct {
	Path string // "pricing.cpu_per_hour"
	Old  string
	New  string
}

func (c Change) String() string {
	return fmt.Sprintf("%s %s -> %s", c.Path, orEmpty(c.Old), orEmpty(c.New))
}

func orEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// Changes lists the settings whose values differ from old to new, in the
// order of the file. A nil list and an empty one are the same value.
func Changes(old, new Config) []Change {
	a, b := reflect.ValueOf(old), reflect.ValueOf(new)
	var out []Change
	for _, s := range settings {
		x, y := settingText(a.FieldByIndex(s.index)), settingText(b.FieldByIndex(s.index))
		if x != y {
			out = append(out, Change{Path: s.path, Old: x, New: y})
		}
	}
	return out
}

// Reloadable says whether a running daemon applies a change of the setting
// at path on SIGHUP: its prices and labels. Every other setting is read once,
// at start.
func Reloadable(path string) bool {
	return strings.HasPrefix(path, "pricing.") || strings.HasPrefix(path, "labels.")
}

// settingText writes one setting's value: a quantity as its text, a list
// comma-separated, a map as sorted key=value pairs, an unset override
// (a nil pointer) as "".
func settingText(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, err := m.MarshalText()
		if err != nil {
			return fmt.Sprint(v.Interface())
		}
		return string(b)
	}
	switch v.Kind() {
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = settingText(v.Index(i))
		}
		return strings.Join(items, ", ")
	case reflect.Map:
		m := make(map[string]string, v.Len())
		for it := v.MapRange(); it.Next(); {
			m[fmt.Sprint(it.Key().Interface())] = settingText(it.Value())
		}
		var pairs []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			pairs = append(pairs, k+"="+m[k])
		}
		return strings.Join(pairs, ", ")
	}
	return fmt.Sprint(v.Interface())
}
