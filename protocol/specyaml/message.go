package specyaml

import (
	"fmt"
	"math"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol"
)

// JoinPath is the document path of the field name inside path.
func JoinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Describe names the kind and value of a node for a message: "a list", "the
// integer 3", "the string \"x\"".
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch t := n.ShortTag(); t {
	case "!!str":
		return "the string " + protocol.Quote(n.Value)
	case "!!int":
		return "the integer " + Clip(n.Value)
	case "!!float":
		return "the number " + Clip(n.Value)
	case "!!bool":
		return "the boolean " + n.Value
	case "!!null":
		return "null"
	default:
		return Clip(t) + " " + protocol.Quote(n.Value)
	}
}

// Clip cuts an unquoted value for a message, as protocol.Quote does.
func Clip(s string) string {
	if q := protocol.Quote(s); strings.HasSuffix(q, "...") {
		return q[1:len(q)-4] + "..."
	}
	return s
}

// Suggest names the closest of names, if it is close enough to be a typing
// mistake (": did you mean x?"), or lists them all after intro.
func Suggest(name string, names []string, intro string) string {
	best, dist := "", min(3, len(name)/2+1)
	for _, n := range names {
		if d := EditDistance(name, n); d < dist {
			best, dist = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf(": did you mean %s?", best)
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(": %s %s", intro, strings.Join(names, ", "))
}

// EditDistance is the Levenshtein distance of two short strings, in bytes
// (math.MaxInt past 64 bytes): how "did you mean" suggestions are chosen.
func EditDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
