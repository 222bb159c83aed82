package billing

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cuivre/cuivre/protocol"
)

// Format is how a statement is written: table (for people), wide (a table
// with whole peer and lease IDs), csv (for a spreadsheet) or json (for
// programs). It is a pflag.Value, so that -o refuses anything else before
// the command does anything.
type Format string

// Formats are the values of Format, the default first.
var Formats = []string{"table", "wide", "csv", "json"}

func (f *Format) String() string { return string(*f) }
func (f *Format) Type() string   { return "format" }

// Set takes one of Formats.
func (f *Format) Set(s string) error {
	if !slices.Contains(Formats, s) {
		return fmt.Errorf("%q: use %s", s, strings.Join(Formats, ", "))
	}
	*f = Format(s)
	return nil
}

// Write writes st in format f.
func Write(w io.Writer, f Format, st Statement) error {
	switch f {
	case "csv":
		return WriteCSV(w, st)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "table", "":
		return WriteTable(w, st, false)
	case "wide":
		return WriteTable(w, st, true)
	}
	return fmt.Errorf("format %q: use %s", string(f), strings.Join(Formats, ", "))
}

// timeLayout writes the receipts' times, which are whole milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// csvHeader is the one header of the CSV: receipts and totals share it, so
// that a spreadsheet reads one table it can filter by kind and side.
var csvHeader = []string{"kind", "side", "by", "lease_id", "epoch", "job_cid", "customer", "provider", "operator",
	"started_at", "ended_at", "cpu_millis", "memory_bytes", "currency", "amount", "amount_nanos",
	"countersigned", "countersigned_amount", "countersigned_nanos", "receipts", "not_countersigned", "note", "leg"}

// WriteCSV writes st as one CSV table with a header: first a row of kind
// "receipt" per receipt, then a row of kind "total" per total, whose "by"
// says what it sums over (customer, provider, operator or currency) and
// whose key is in the column of that name. Amounts are decimals without
// their currency, which has a column of its own, so that a spreadsheet
// reads them as numbers; the *_nanos columns are the same amounts as exact
// integers of nano-units.
func WriteCSV(w io.Writer, st Statement) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	for _, r := range st.Rows {
		cw.Write(csvReceipt(r))
	}
	for _, t := range st.Totals {
		cw.Write(csvTotal(t))
	}
	for _, s := range st.Slices {
		cw.Write(csvSlice(s))
	}
	for _, m := range st.Margins {
		rec := make([]string, len(csvHeader))
		set := func(col, v string) { rec[slices.Index(csvHeader, col)] = v }
		set("kind", "margin")
		set("currency", m.Currency)
		set("amount", decimal(m.MarginNanos))
		set("amount_nanos", m.MarginNanos)
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// csvReceipt is a receipt's CSV record; its countersigned amount is its
// amount or 0, so that a spreadsheet's sum of the column is the total.
func csvReceipt(r Row) []string {
	cs := uint64(0)
	if r.Countersigned {
		cs = r.AmountNanos
	}
	u := strconv.FormatUint
	return []string{"receipt", string(r.Side), "", r.LeaseID, u(r.Epoch, 10), r.JobCID, r.Customer, r.Provider, r.Operator,
		r.StartedAt.Format(timeLayout), r.EndedAt.Format(timeLayout), u(r.CPUMillis, 10), u(r.MemoryBytes, 10), r.Currency,
		decimal(u(r.AmountNanos, 10)), u(r.AmountNanos, 10), yesNo(r.Countersigned), decimal(u(cs, 10)), u(cs, 10), "1", notCount(r), r.Note, r.Leg}
}

// csvSlice is a slice's rent as a CSV record of kind "slice": side earnings
// for the site, spend for the retailer; customer the grantee, provider the
// site; the grant in lease_id.
func csvSlice(s SliceRow) []string {
	rec := make([]string, len(csvHeader))
	set := func(col, v string) { rec[slices.Index(csvHeader, col)] = v }
	side := Spend
	if s.Role == "site" {
		side = Earnings
	}
	u := strconv.FormatUint
	set("kind", "slice")
	set("side", string(side))
	set("lease_id", s.Grant)
	set("customer", s.Grantee)
	set("provider", s.Site)
	set("started_at", s.From.Format(timeLayout))
	set("ended_at", s.Until.Format(timeLayout))
	set("cpu_millis", u(s.CPUMillis, 10))
	set("memory_bytes", u(s.MemoryBytes, 10))
	set("currency", s.Currency)
	set("amount", decimal(u(s.AmountNanos, 10)))
	set("amount_nanos", u(s.AmountNanos, 10))
	set("leg", "slice rent")
	return rec
}

// csvTotal is a total's CSV record: its key in the column of what it sums
// over, the columns of a receipt's own fields empty.
func csvTotal(t Total) []string {
	rec := make([]string, len(csvHeader))
	set := func(col, v string) { rec[slices.Index(csvHeader, col)] = v }
	set("kind", "total")
	set("side", string(t.Side))
	set("by", t.By)
	if t.By != "currency" {
		set(t.By, t.Key)
	}
	set("currency", t.Currency)
	set("amount", decimal(t.AllNanos))
	set("amount_nanos", t.AllNanos)
	set("countersigned_amount", decimal(t.CountersignedNanos))
	set("countersigned_nanos", t.CountersignedNanos)
	set("receipts", strconv.Itoa(t.Receipts))
	set("not_countersigned", strconv.Itoa(t.NotCountersigned))
	return rec
}

func notCount(r Row) string {
	if r.Countersigned {
		return "0"
	}
	return "1"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// decimal writes an integer of nano-units, given in decimal, as units:
// "170625" is "0.000170625", "5000000000" is "5". It works on the digits,
// so a sum past 64 bits is written exactly too.
func decimal(nanos string) string {
	if len(nanos) <= 9 {
		nanos = strings.Repeat("0", 10-len(nanos)) + nanos
	}
	whole, frac := nanos[:len(nanos)-9], strings.TrimRight(nanos[len(nanos)-9:], "0")
	if frac == "" {
		return whole
	}
	return whole + "." + frac
}

// WriteTable writes st for people: per side, its receipts, then its totals
// by each grouping; peer IDs by their last 8 characters and lease IDs by
// their first 8, or whole if wide (-o csv and -o json give them whole too),
// amounts exact.
func WriteTable(w io.Writer, st Statement, wide bool) error {
	id := ids{wide}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Statement of node %s, receipts ended %s.\n", st.Node, window(st))
	for _, side := range []Side{Earnings, Spend} {
		tableSide(tw, st, side, id)
	}
	if len(st.Slices) > 0 {
		fmt.Fprintf(tw, "\nSlices: rent of the slices granted (site) or rented (retailer), for their part of the window, used or not\n")
		fmt.Fprintf(tw, "FROM\tUNTIL\tGRANT\tROLE\tSITE\tRETAILER\tCPU\tMEMORY\tAMOUNT\n")
		for _, s := range st.Slices {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%dm\t%s\t%s\n", s.From.Format(timeLayout), s.Until.Format(timeLayout), id.lease(s.Grant),
				s.Role, id.peer(s.Site), id.peer(s.Grantee), s.CPUMillis, protocol.FormatBytes(s.MemoryBytes), s.Amount)
		}
	}
	for _, m := range st.Margins {
		fmt.Fprintf(tw, "\nMargin in %s: %s billed to customers for runs on slices, less %s of slice rent: %s\n", m.Currency, m.Retail, m.Slices, m.Margin)
	}
	for _, s := range st.Skipped {
		fmt.Fprintf(tw, "\nLeft out: lease %s epoch %d: %s\n", s.LeaseID, s.Epoch, s.Reason)
	}
	return tw.Flush()
}

func window(st Statement) string {
	switch {
	case st.Since != nil && st.Until != nil:
		return "from " + st.Since.Format(time.RFC3339Nano) + " until before " + st.Until.Format(time.RFC3339Nano)
	case st.Since != nil:
		return "from " + st.Since.Format(time.RFC3339Nano)
	case st.Until != nil:
		return "before " + st.Until.Format(time.RFC3339Nano)
	}
	return "at any time"
}

var sideTitles = map[Side]string{
	Earnings: "Earnings: this node as a provider, per customer",
	Spend:    "Spend: this node as a customer, per provider and operator",
}

func tableSide(tw *tabwriter.Writer, st Statement, side Side, id ids) {
	fmt.Fprintf(tw, "\n%s\n", sideTitles[side])
	n := 0
	for _, r := range st.Rows {
		if r.Side != side {
			continue
		}
		if n == 0 {
			fmt.Fprintf(tw, "STARTED\tENDED\tLEASE\tEPOCH\tJOB\t%s\tCPU\tMEMORY\tAMOUNT\tCOUNTERSIGNED\n", counterparty[side])
		}
		n++
		who := id.peer(r.Customer)
		if side == Spend {
			who = id.peer(r.Provider) + "\t" + r.Operator
		}
		amount := r.Amount
		if r.Leg != "" {
			amount += " (" + r.Leg + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%dm\t%s\t%s\t%s\n", r.StartedAt.Format(timeLayout), r.EndedAt.Format(timeLayout),
			id.lease(r.LeaseID), r.Epoch, r.JobCID, who, r.CPUMillis, protocol.FormatBytes(r.MemoryBytes), amount, countersignedText(r))
	}
	if n == 0 {
		fmt.Fprintln(tw, "  no receipts")
		return
	}
	for _, by := range groupings[side] {
		head := strings.ToUpper(by) + "\t"
		if by == "currency" {
			head = ""
		}
		fmt.Fprintf(tw, "\nTotals by %s\n%sCURRENCY\tRECEIPTS\tALL\tCOUNTERSIGNED\tNOT COUNTERSIGNED\n", by, head)
		for _, t := range st.Totals {
			if t.Side == side && t.By == by {
				fmt.Fprintf(tw, "%s%s\t%d\t%s\t%s\t%d\n", totalKey(t, id), t.Currency, t.Receipts, t.All, t.Countersigned, t.NotCountersigned)
			}
		}
	}
}

// totalKey is the first column of a total in the table, with its tab: the
// customer, provider or operator it sums over, none for a currency (the
// next column says it).
func totalKey(t Total, id ids) string {
	switch t.By {
	case "currency":
		return ""
	case "customer", "provider":
		return id.peer(t.Key) + "\t"
	}
	return t.Key + "\t"
}

// counterparty are the columns that say whom a row is with.
var counterparty = map[Side]string{Earnings: "CUSTOMER", Spend: "PROVIDER\tOPERATOR"}

func countersignedText(r Row) string {
	if r.Countersigned {
		return "yes"
	}
	if r.Note != "" {
		return "NO: " + r.Note
	}
	return "NO"
}

// ids writes peer and lease IDs in a table: whole if wide, else short, a
// peer ID by its last 8 characters, which tell Ed25519 peer IDs apart (they
// all start 12D3KooW), and a lease ID by its first 8.
type ids struct{ wide bool }

func (i ids) peer(id string) string {
	if i.wide {
		return id
	}
	return id[max(len(id)-8, 0):]
}

func (i ids) lease(id string) string {
	if i.wide {
		return id
	}
	return id[:min(8, len(id))]
}
