package specyaml

import (
	"bytes"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Reader reads the nodes of one YAML document, reporting each mistake
// through Fail. It is not safe for concurrent use.
type Reader struct {
	// Fail reports a mistake at a node, or in the whole document when at is
	// nil. path names the field as it is written ("task.resources.memory").
	Fail func(at *yaml.Node, path, format string, args ...any)
	// Seen, if set, is called by Object with the path and key of each known
	// field, null value or not: how a parser remembers where fields are.
	Seen func(path string, key *yaml.Node)
}

// Field is one known field of a mapping, and how to read its value. at is the
// node to report errors at: the field's key.
type Field struct {
	Name string
	Read func(at, v *yaml.Node, path string)
}

// Document decodes data, which must hold one YAML document without aliases,
// and returns its root. It reports an empty document with the message empty,
// a second document naming the first with what ("a job spec"), and every
// alias, since an alias would let a small document stand for a huge one; the
// root is nil then. A syntax error is returned, with a nil root, for the
// caller to report (see SyntaxLine).
func (r *Reader) Document(data []byte, what, empty string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case err == io.EOF:
		r.Fail(nil, "", "%s", empty)
		return nil, nil
	case err != nil:
		return nil, err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, err
	default:
		r.Fail(&extra, "", "a second YAML document: %s is one document, remove the '---' and what follows", what)
		return nil, nil
	}
	if len(doc.Content) != 1 || doc.Content[0].ShortTag() == "!!null" {
		r.Fail(nil, "", "%s", empty)
		return nil, nil
	}
	if root := doc.Content[0]; r.noAliases(root) {
		return root, nil
	}
	return nil, nil
}

// noAliases reports every alias under n, and returns whether there was none.
func (r *Reader) noAliases(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		r.Fail(n, "", "alias *%s: aliases are not supported, write the value out", n.Value)
		return false
	}
	ok := true
	for _, c := range n.Content {
		ok = r.noAliases(c) && ok
	}
	return ok
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// SyntaxLine splits an error of the YAML decoder into the line it names, 0
// if none, and its message without the "yaml: line N: " prefix.
func SyntaxLine(err error) (line int, msg string) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(err.Error(), "yaml: ")
}

// Object reads a mapping of known fields in document order and returns the
// key nodes of those present with a non-null value, by name; nil if n is not
// a mapping. A null value ("count:" or "count: null") means the field is left
// out.
func (r *Reader) Object(at, n *yaml.Node, path string, fields ...Field) map[string]*yaml.Node {
	present := make(map[string]*yaml.Node)
	ok := r.mapping(at, n, path, "a mapping of fields (name: value)", false, func(k, v *yaml.Node, path string) {
		i := slices.IndexFunc(fields, func(f Field) bool { return f.Name == k.Value })
		if i < 0 {
			names := make([]string, len(fields))
			for j, f := range fields {
				names[j] = f.Name
			}
			r.Fail(k, path, "unknown field%s", Suggest(k.Value, names, "the fields here are"))
			return
		}
		if r.Seen != nil {
			r.Seen(path, k)
		}
		if v.ShortTag() != "!!null" {
			present[k.Value] = k
			fields[i].Read(k, v, path)
		}
	})
	if !ok {
		return nil
	}
	return present
}

// Pairs reads a mapping with free keys (region names, label keys), calling
// read for each key in document order; a key that is not a plain string, or
// repeats, is reported instead. what names the expected content in the
// message when n is not a mapping; Pairs then returns false.
func (r *Reader) Pairs(at, n *yaml.Node, path, what string, read func(k, v *yaml.Node, path string)) bool {
	return r.mapping(at, n, path, what, true, read)
}

// mapping is Object and Pairs: with free keys a null key is reported too,
// and keys are named "key" rather than "field".
func (r *Reader) mapping(at, n *yaml.Node, path, what string, free bool, read func(k, v *yaml.Node, path string)) bool {
	if n.Kind != yaml.MappingNode {
		r.Fail(at, path, "want %s, got %s", what, Describe(n))
		return false
	}
	name, key := "field name", "field"
	if free {
		name, key = "key", "key"
	}
	keys := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || free && k.ShortTag() == "!!null" {
			r.Fail(k, path, "a %s must be a plain string, got %s", name, Describe(k))
			continue
		}
		kpath := JoinPath(path, k.Value)
		if first, dup := keys[k.Value]; dup {
			r.Fail(k, kpath, "duplicate %s, first set at line %d: keep one", key, first.Line)
			continue
		}
		keys[k.Value] = k
		read(k, v, kpath)
	}
	return true
}

// Str reads a string: a quoted or plain YAML string, not a number or a boolean.
func (r *Reader) Str(at, v *yaml.Node, path string) (string, bool) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		r.Fail(at, path, "want a string, got %s", Describe(v))
		return "", false
	}
	return v.Value, true
}

// Text reads any scalar as the text it is written as, so that "2", 2 and 2.0
// all do as a quantity, and 8080 and true as an environment value.
func (r *Reader) Text(at, v *yaml.Node, path string) (string, bool) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		r.Fail(at, path, "want a value, got %s", Describe(v))
		return "", false
	}
	return v.Value, true
}

// Integer reads a whole number in [lo, hi].
func (r *Reader) Integer(at, v *yaml.Node, path string, lo, hi int64) (int64, bool) {
	var n int64
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&n) != nil {
		r.Fail(at, path, "want a whole number, got %s", Describe(v))
		return 0, false
	}
	if n < lo || n > hi {
		r.Fail(at, path, "%d is out of range: use %d to %d", n, lo, hi)
		return 0, false
	}
	return n, true
}

// List reads a sequence.
func (r *Reader) List(at, v *yaml.Node, path string) []*yaml.Node {
	if v.Kind != yaml.SequenceNode {
		r.Fail(at, path, "want a list, got %s", Describe(v))
		return nil
	}
	return v.Content
}
