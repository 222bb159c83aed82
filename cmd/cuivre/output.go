package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol"
)

// format is the -o flag of every command that prints data. Its Set refuses
// anything but formats, so that a typo fails before the command does
// anything, with exit code 1.
type format string

// formats are the values of -o: table (the default, for people: short IDs,
// human units), wide (full IDs, more columns), json and yaml (for programs:
// exact values in base units, the same keys in both).
var formats = []string{"table", "wide", "json", "yaml"}

func (f *format) String() string { return string(*f) }
func (f *format) Type() string   { return "format" }

func (f *format) Set(s string) error {
	if !slices.Contains(formats, s) {
		return fmt.Errorf("use %s", strings.Join(formats, ", "))
	}
	*f = format(s)
	return nil
}

// machine reports whether f is for programs: nothing else may go to
// standard output then.
func (f format) machine() bool { return f == "json" || f == "yaml" }

// addOutput gives cmd the -o flag, at table, with its values for completion.
func addOutput(cmd *cobra.Command, f *format) {
	*f = "table"
	cmd.Flags().VarP(f, "output", "o", "table, wide (full IDs, more columns), json or yaml")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// render writes v as JSON or YAML, or calls table for table and wide.
func render(w io.Writer, f format, v any, table func(tw *tabwriter.Writer, wide bool)) error {
	switch f {
	case "json":
		return writeJSON(w, v)
	case "yaml":
		return writeYAML(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw, f == "wide")
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeYAML writes v as YAML with its JSON keys and values: yaml.v3 would
// ignore the json tags and name fields its own way (exitcode for exit_code).
// JSON is YAML, so the JSON document is read back as a YAML node, which
// keeps the keys' order, and written out in block style.
func writeYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	unstyle(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	return enc.Close()
}

// unstyle drops the flow and quoting styles a node read from JSON has, so
// that the encoder writes block YAML and quotes only what needs it.
func unstyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		unstyle(c)
	}
}

// shortPeer is a peer ID's text in its one short form, protocol.ShortPeerID:
// its last 8 characters. Text that is no peer ID is shown as it is.
func shortPeer(id string) string {
	p, err := peer.Decode(id)
	if err != nil {
		return orNone(id)
	}
	return protocol.ShortPeerID(string(p))
}

// peerID is a peer as a table shows it: short, or whole when wide.
func peerID(id string, wide bool) string {
	if wide {
		return orNone(id)
	}
	return shortPeer(id)
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// vcpu writes CPU millis as vCPUs: 1500 is "1.5 vCPU".
func vcpu(millis uint64) string {
	return strconv.FormatFloat(float64(millis)/1000, 'f', -1, 64) + " vCPU"
}

// money writes a sum for people: its currency and three significant digits,
// at least two decimals, so that 0.04 EUR an hour stored as 11111 nano-units
// a second reads 0.0400 EUR, not 0.0399996 EUR. JSON and YAML keep the
// exact amount.
func money(nanos uint64, currency string) string {
	v := float64(nanos) / 1e9
	decimals := 2
	if v > 0 && v < 1 {
		decimals = min(max(2, 2-int(math.Floor(math.Log10(v)))), 9)
	}
	return strconv.FormatFloat(v, 'f', decimals, 64) + " " + currency
}

// price writes an amount from the API ("0.0399996 EUR") as money does; an
// empty one is "-", and one that does not parse is shown as it came.
func price(s string) string {
	a, err := protocol.ParsePrice(s)
	if err != nil {
		return orNone(s)
	}
	return money(a.Nanos, a.Currency)
}

// keyValues writes a table of two columns, keys and values: the table of
// a document that is one thing, such as the node's status.
func keyValues(w io.Writer, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(w, "%s\t%s\n", kv[i], kv[i+1])
	}
}
