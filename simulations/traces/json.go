package traces

import (
	"bytes"
	"encoding/json"
	"strings"
)

// gJSON is an instance event as a line of JSON. BigQuery writes 64-bit
// integers as strings ("time":"600000000"), which flexText takes as well
// as numbers; fields not used here are ignored.
type gJSON struct {
	Time            flexText  `json:"time"`
	Type            flexText  `json:"type"`
	CollectionID    flexText  `json:"collection_id"`
	InstanceIndex   flexText  `json:"instance_index"`
	CollectionType  flexText  `json:"collection_type"`
	ResourceRequest *gRequest `json:"resource_request"`
}

type gRequest struct {
	CPUs   flexText `json:"cpus"`
	Memory flexText `json:"memory"`
}

// decodeEvent reads a line of JSON: by the quick scanner below when it can,
// or by encoding/json, which also says what is wrong with a bad line.
func decodeEvent(b []byte, j *gJSON) error {
	*j = gJSON{}
	if quickEvent(b, j) {
		return nil
	}
	*j = gJSON{}
	return json.Unmarshal(b, j)
}

// quickEvent reads the fields of an event from a well-formed object of JSON
// without reflection, which is most of the time taken by encoding/json.
// It gives up (false) on anything unusual: an escape in a string, a key
// differing from a field's name in case only, bad syntax; encoding/json
// then decides.
func quickEvent(b []byte, j *gJSON) bool {
	return quickObject(b, func(key, val []byte) bool {
		switch string(key) {
		case "time":
			return quickText(val, &j.Time)
		case "type":
			return quickText(val, &j.Type)
		case "collection_id":
			return quickText(val, &j.CollectionID)
		case "instance_index":
			return quickText(val, &j.InstanceIndex)
		case "collection_type":
			return quickText(val, &j.CollectionType)
		case "resource_request":
			if string(val) == "null" {
				j.ResourceRequest = nil
				return true
			}
			if len(val) == 0 || val[0] != '{' {
				return false
			}
			if j.ResourceRequest == nil {
				j.ResourceRequest = &gRequest{}
			}
			r := j.ResourceRequest
			return quickObject(val, func(key, val []byte) bool {
				switch string(key) {
				case "cpus":
					return quickText(val, &r.CPUs)
				case "memory":
					return quickText(val, &r.Memory)
				}
				return !foldsTo(key, "cpus", "memory")
			})
		}
		return !foldsTo(key, "time", "type", "collection_id", "instance_index", "collection_type", "resource_request")
	})
}

func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if len(key) == len(n) && strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}

// quickText sets t from a JSON number, or a string of printable ASCII
// without escapes; null leaves it be, as encoding/json does.
func quickText(val []byte, t *flexText) bool {
	switch {
	case string(val) == "null":
	case len(val) >= 2 && val[0] == '"':
		for _, c := range val[1 : len(val)-1] {
			if c < 0x20 || c >= 0x80 || c == '\\' {
				return false // encoding/json rejects, replaces or unescapes these
			}
		}
		*t = flexText{s: string(val[1 : len(val)-1]), set: true}
	case len(val) > 0 && (val[0] == '-' || val[0] >= '0' && val[0] <= '9'):
		*t = flexText{s: string(val), set: true}
	default:
		return false
	}
	return true
}

// quickObject calls f with each member of the object b, which must be all
// of b but for white space; false if it is not, or f says false. A key
// with an escape makes it give up.
func quickObject(b []byte, f func(key, val []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end := skipString(b, i)
		if end < 0 || bytes.IndexByte(b[i:end], '\\') >= 0 {
			return false
		}
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		end = skipValue(b, i, 0)
		if end < 0 || !f(key, b[i:end]) {
			return false
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// maxDepth bounds the nesting skipValue follows, as encoding/json's does.
const maxDepth = 1000

// skipValue returns the index after the JSON value starting at b[i], or -1
// if it is not one, by JSON's grammar.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) || depth > maxDepth {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i = skipString(b, i); i < 0 {
				return -1
			}
			if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
				return -1
			}
			if i = skipValue(b, skipSpace(b, i+1), depth+1); i < 0 {
				return -1
			}
			switch i = skipSpace(b, i); {
			case i < len(b) && b[i] == ',':
				i = skipSpace(b, i+1)
			case i < len(b) && b[i] == '}':
				return i + 1
			default:
				return -1
			}
		}
	case c == '[':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1
		}
		for {
			if i = skipValue(b, i, depth+1); i < 0 {
				return -1
			}
			switch i = skipSpace(b, i); {
			case i < len(b) && b[i] == ',':
				i = skipSpace(b, i+1)
			case i < len(b) && b[i] == ']':
				return i + 1
			default:
				return -1
			}
		}
	case c == 't':
		return skipWord(b, i, "true")
	case c == 'f':
		return skipWord(b, i, "false")
	case c == 'n':
		return skipWord(b, i, "null")
	}
	return skipNumber(b, i)
}

func skipWord(b []byte, i int, w string) int {
	if len(b)-i >= len(w) && string(b[i:i+len(w)]) == w {
		return i + len(w)
	}
	return -1
}

// skipString returns the index after the string starting at b[i], or -1
// if it is not a JSON string (a control character, a bad escape).
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i <= 4 {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// skipNumber returns the index after the number starting at b[i], or -1:
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) int {
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return -1
		}
	}
	return i
}
