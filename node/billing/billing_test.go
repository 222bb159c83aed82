package billing

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// party is a test peer that signs.
type party struct {
	key crypto.PrivKey
	id  string // binary peer ID
}

func newParty(t *testing.T) party {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	var id peer.ID
	if err == nil {
		id, err = peer.IDFromPrivateKey(k)
	}
	if err != nil {
		t.Fatal(err)
	}
	return party{k, string(id)}
}

func (p party) text() string { return peer.ID(p.id).String() }

// t0 is when the test's receipts start: 2026-12-01T00:00:00Z.
var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// bill is one receipt of a test: who, when it ended (minutes after t0),
// how much, and whether the requester countersigned it.
type bill struct {
	prov, req     party
	endMin        int
	currency      string
	nanos         uint64
	countersigned bool
}

// receipt seals b's receipt, as its provider would, and its
// countersignature, as its requester would.
func receipt(t *testing.T, b bill) store.Receipt {
	t.Helper()
	id := make([]byte, protocol.LeaseIDSize)
	nonce := make([]byte, protocol.NonceSize)
	rand.Read(id)
	rand.Read(nonce)
	end := t0.Add(time.Duration(b.endMin) * time.Minute)
	rc := &pb.UsageReceipt{LeaseId: id, Epoch: 1, Provider: []byte(b.prov.id), Requester: []byte(b.req.id), JobCid: []byte("not a cid"),
		Reserved:    &pb.Resources{CpuMillis: 500, MemoryBytes: 64 << 20},
		StartedAtMs: protocol.UnixMs(end.Add(-time.Minute)), EndedAtMs: protocol.UnixMs(end),
		Price: &pb.Price{Currency: b.currency}, Amount: &pb.Amount{Currency: b.currency, Nanos: b.nanos}, Nonce: nonce}
	env, err := record.Seal(b.prov.key, rc)
	if err != nil {
		t.Fatal(err)
	}
	r := store.Receipt{LeaseID: string(id), Epoch: 1, Envelope: env}
	if b.countersigned {
		r.Countersignature = countersign(t, b.req, env)
	}
	return r
}

func countersign(t *testing.T, by party, env []byte) []byte {
	t.Helper()
	cs, err := record.Seal(by.key, &pb.Countersignature{ReceiptHash: conv.ReceiptHash(env), Requester: []byte(by.id), SignedAtMs: 1})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// total finds one total of a statement.
func total(t *testing.T, st Statement, side Side, by, key, currency string) Total {
	t.Helper()
	for _, x := range st.Totals {
		if x.Side == side && x.By == by && x.Key == key && x.Currency == currency {
			return x
		}
	}
	t.Fatalf("no total of %s by %s %s in %s; totals: %+v", side, by, key, currency, st.Totals)
	return Total{}
}

// TestEarnings: a provider's receipts add up per customer and currency,
// exactly, past 64 bits too; one not countersigned, one whose
// countersignature was made by someone else and one whose countersignature
// covers another receipt are shown, marked, and left out of the
// countersigned totals.
func TestEarnings(t *testing.T) {
	prov, alice, bob, mallory := newParty(t), newParty(t), newParty(t), newParty(t)
	big1 := uint64(math.MaxUint64 - 1)
	rs := []store.Receipt{
		receipt(t, bill{prov, alice, 1, "EUR", 170_625, true}),
		receipt(t, bill{prov, alice, 2, "EUR", 1_000_000_001, false}),
		receipt(t, bill{prov, bob, 3, "EUR", big1, true}),
		receipt(t, bill{prov, bob, 4, "EUR", big1, true}),
		receipt(t, bill{prov, bob, 5, "CHF", 5, true}),
	}
	forged := receipt(t, bill{prov, bob, 6, "CHF", 7, false})
	forged.Countersignature = countersign(t, mallory, forged.Envelope)
	other := receipt(t, bill{prov, bob, 7, "CHF", 11, false})
	other.Countersignature = countersign(t, bob, rs[4].Envelope)
	rs = append(rs, forged, other)

	st := Build(Input{Self: prov.id, Receipts: rs}, Window{})
	if len(st.Rows) != 7 || len(st.Skipped) != 0 {
		t.Fatalf("%d rows, skipped %v; want 7 rows, none skipped", len(st.Rows), st.Skipped)
	}
	for i, r := range st.Rows {
		if r.Side != Earnings || r.Operator != "" || r.Provider != prov.text() {
			t.Errorf("row %d: %+v, want an earning of %s", i, r, prov.text())
		}
	}
	if st.Rows[5].Countersigned || !strings.Contains(st.Rows[5].Note, "not the receipt's requester") {
		t.Errorf("the countersignature by another peer: %+v", st.Rows[5])
	}
	if st.Rows[6].Countersigned || !strings.Contains(st.Rows[6].Note, "covers another receipt") {
		t.Errorf("the countersignature of another receipt: %+v", st.Rows[6])
	}
	twice := new(big.Int).Mul(new(big.Int).SetUint64(big1), big.NewInt(2)).String()
	want := []Total{
		{Side: Earnings, By: "customer", Key: alice.text(), Currency: "EUR", Receipts: 2, NotCountersigned: 1,
			AllNanos: "1000170626", All: "1.000170626 EUR", CountersignedNanos: "170625", Countersigned: "0.000170625 EUR"},
		{Side: Earnings, By: "customer", Key: bob.text(), Currency: "CHF", Receipts: 3, NotCountersigned: 2,
			AllNanos: "23", All: "0.000000023 CHF", CountersignedNanos: "5", Countersigned: "0.000000005 CHF"},
		{Side: Earnings, By: "customer", Key: bob.text(), Currency: "EUR", Receipts: 2,
			AllNanos: twice, All: "36893488147.419103228 EUR", CountersignedNanos: twice, Countersigned: "36893488147.419103228 EUR"},
		{Side: Earnings, By: "currency", Key: "CHF", Currency: "CHF", Receipts: 3, NotCountersigned: 2,
			AllNanos: "23", All: "0.000000023 CHF", CountersignedNanos: "5", Countersigned: "0.000000005 CHF"},
	}
	if alice.text() > bob.text() {
		want[0], want[1], want[2] = want[1], want[2], want[0]
	}
	eur := new(big.Int).Add(new(big.Int).SetUint64(2*170_625+1_000_000_001-170_625), new(big.Int).Mul(new(big.Int).SetUint64(big1), big.NewInt(2)))
	eurCS := new(big.Int).Add(big.NewInt(170_625), new(big.Int).Mul(new(big.Int).SetUint64(big1), big.NewInt(2)))
	want = append(want, Total{Side: Earnings, By: "currency", Key: "EUR", Currency: "EUR", Receipts: 4, NotCountersigned: 1,
		AllNanos: eur.String(), All: formatNanos(eur, "EUR"), CountersignedNanos: eurCS.String(), Countersigned: formatNanos(eurCS, "EUR")})
	if d := cmp.Diff(want, st.Totals); d != "" {
		t.Errorf("totals (-want +got):\n%s", d)
	}
}

// TestSpend: a requester's receipts add up per provider, per operator (the
// label of the offer its job's slot kept for that lease epoch, else
// UnknownOperator) and per currency.
func TestSpend(t *testing.T) {
	me, p1, p2 := newParty(t), newParty(t), newParty(t)
	a := receipt(t, bill{p1, me, 1, "EUR", 100, true})
	b := receipt(t, bill{p1, me, 2, "EUR", 200, true})
	c := receipt(t, bill{p2, me, 3, "EUR", 400, true})
	d := receipt(t, bill{p2, me, 4, "EUR", 800, true})
	ops := func(v string) scheduler.Labels {
		return scheduler.NewLabels(scheduler.Label{Key: "operator", Value: v})
	}
	jobs := []store.Job{{CID: "j1", Slots: []store.Slot{
		{LeaseID: a.LeaseID, Epoch: 1, Provider: p1.id, Labels: ops("atelier")},
		{LeaseID: b.LeaseID, Epoch: 2, Provider: p1.id, Labels: ops("atelier")}, // a later epoch: b's offer is gone
		{LeaseID: c.LeaseID, Epoch: 1, Provider: p1.id, Labels: ops("atelier")}, // another provider's offer
		{LeaseID: d.LeaseID, Epoch: 1, Provider: p2.id, Labels: ops("kiez")},
	}}}
	st := Build(Input{Self: me.id, Receipts: []store.Receipt{a, b, c, d}, Jobs: jobs}, Window{})
	var got []string
	for _, r := range st.Rows {
		got = append(got, r.Operator)
		if r.Side != Spend || r.Customer != me.text() {
			t.Errorf("row %+v: want a spend of %s", r, me.text())
		}
	}
	if d := cmp.Diff([]string{"atelier", UnknownOperator, UnknownOperator, "kiez"}, got); d != "" {
		t.Errorf("operators (-want +got):\n%s", d)
	}
	for _, c := range []struct {
		by, key string
		nanos   string
	}{
		{"provider", p1.text(), "300"}, {"provider", p2.text(), "1200"},
		{"operator", "atelier", "100"}, {"operator", "kiez", "800"}, {"operator", UnknownOperator, "600"},
		{"currency", "EUR", "1500"},
	} {
		if x := total(t, st, Spend, c.by, c.key, "EUR"); x.AllNanos != c.nanos || x.CountersignedNanos != c.nanos {
			t.Errorf("spend by %s %s: %+v, want %s nano-EUR, all countersigned", c.by, c.key, x, c.nanos)
		}
	}
}

// TestSkipped: a stored receipt that does not open, one stored under
// another lease, and one of two other peers are left out, each with its
// reason, and count in no total.
func TestSkipped(t *testing.T) {
	me, p, q := newParty(t), newParty(t), newParty(t)
	good := receipt(t, bill{me, p, 1, "EUR", 10, true})
	broken := receipt(t, bill{me, p, 2, "EUR", 20, true})
	broken.Envelope = append([]byte(nil), broken.Envelope...)
	broken.Envelope[len(broken.Envelope)-1] ^= 1
	moved := receipt(t, bill{me, p, 3, "EUR", 40, true})
	moved.Epoch = 2
	others := receipt(t, bill{p, q, 4, "EUR", 80, true})
	st := Build(Input{Self: me.id, Receipts: []store.Receipt{good, broken, moved, others}}, Window{})
	if len(st.Rows) != 1 || total(t, st, Earnings, "currency", "EUR", "EUR").AllNanos != "10" {
		t.Fatalf("rows %+v, totals %+v: want the good receipt alone", st.Rows, st.Totals)
	}
	var reasons []string
	for _, s := range st.Skipped {
		reasons = append(reasons, s.Reason)
	}
	for i, want := range []string{"does not open", "stored as lease", "neither of them this node"} {
		if i >= len(reasons) || !strings.Contains(reasons[i], want) {
			t.Errorf("skipped %d: %q, want it to say %q", i, reasons, want)
		}
	}
}

// TestWindow: receipts are selected by when they ended, since inclusive,
// until exclusive, a date as until taking its whole day.
func TestWindow(t *testing.T) {
	prov, req := newParty(t), newParty(t)
	var rs []store.Receipt
	for _, m := range []int{0, 10, 24 * 60, 24*60 + 1, 2 * 24 * 60} { // Dec 1 00:00, 00:10, Dec 2 00:00, 00:01, Dec 3 00:00
		rs = append(rs, receipt(t, bill{prov, req, m, "EUR", uint64(m + 1), true}))
	}
	for _, c := range []struct {
		since, until string
		want         string // nano-EUR: the sum of m+1 of the receipts in
	}{
		{"", "", "5776"},
		{"2026-12-01", "2026-12-01", "12"},                             // Dec 1, all day
		{"2026-12-01T00:10:00Z", "", "5775"},                           // since is inclusive
		{"", "2026-12-01T00:10:00Z", "1"},                              // until is exclusive
		{"2026-12-02", "2026-12-02", "2883"},                           // Dec 2
		{"2026-12-01T01:00:00+01:00", "2026-12-01T00:00:00.001Z", "1"}, // offsets and milliseconds
		{"2026-12-04", "", "0"},
	} {
		w, err := ParseWindow(c.since, c.until)
		if err != nil {
			t.Fatalf("%q..%q: %v", c.since, c.until, err)
		}
		st := Build(Input{Self: prov.id, Receipts: rs}, w)
		got := "0"
		if len(st.Totals) > 0 {
			got = total(t, st, Earnings, "currency", "EUR", "EUR").AllNanos
		}
		if got != c.want {
			t.Errorf("--since %q --until %q: %s nano-EUR, want %s", c.since, c.until, got, c.want)
		}
		// What the CLI sends reads back as the same window.
		back, err := ParseWindow(w.Query().Get("since"), w.Query().Get("until"))
		if err != nil || !back.Since.Equal(w.Since) || !back.Until.Equal(w.Until) {
			t.Errorf("window %+v sent as %v reads back as %+v, %v", w, w.Query(), back, err)
		}
	}
}

// TestBadWindow: bounds that are not dates or RFC 3339 times, and a window
// that holds nothing, are errors that name the flag and say what to write.
func TestBadWindow(t *testing.T) {
	for _, c := range []struct{ since, until, want string }{
		{"yesterday", "", `--since "yesterday": write a date (2026-12-01, UTC) or an RFC 3339 time`},
		{"", "2026-13-01", `--until "2026-13-01": write a date`},
		{"2026-12-1", "", `--since "2026-12-1"`},
		{"2026-12-01 08:00", "", `--since "2026-12-01 08:00"`},
		{"1764547200", "", `--since "1764547200"`},
		{"2026-12-02", "2026-12-01", "is not before --until"},
		{"2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z", "no receipt can end in that window"},
	} {
		_, err := ParseWindow(c.since, c.until)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--since %q --until %q: %v, want an error saying %q", c.since, c.until, err, c.want)
		}
	}
	var f Format
	if err := f.Set("xml"); err == nil || !strings.Contains(err.Error(), "use table, wide, csv, json") {
		t.Errorf("-o xml: %v, want the formats named", err)
	}
	if err := Write(&bytes.Buffer{}, "yaml", Statement{}); err == nil {
		t.Error("Write in yaml: no error")
	}
}

// TestFormats: the CSV is one table whose amounts add up to its totals,
// the JSON reads back as the statement, and the table shows both totals.
func TestFormats(t *testing.T) {
	prov, req := newParty(t), newParty(t)
	rs := []store.Receipt{
		receipt(t, bill{prov, req, 1, "EUR", 1_500_000_000, true}),
		receipt(t, bill{prov, req, 2, "EUR", 170_625, false}),
		receipt(t, bill{req, prov, 3, "CHF", 7, true}),
	}
	st := Build(Input{Self: prov.id, Receipts: rs}, Window{})

	var b bytes.Buffer
	if err := WriteCSV(&b, st); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(csvHeader, recs[0]); d != "" {
		t.Fatalf("header (-want +got):\n%s", d)
	}
	col := func(rec []string, name string) string {
		for i, h := range csvHeader {
			if h == name {
				return rec[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	var kinds []string
	for _, rec := range recs[1:] {
		kinds = append(kinds, col(rec, "kind")+" "+col(rec, "side")+" "+col(rec, "by")+" "+col(rec, "currency")+" "+col(rec, "amount")+" "+col(rec, "countersigned_amount"))
	}
	want := []string{
		"receipt earnings  EUR 1.5 1.5",
		"receipt earnings  EUR 0.000170625 0",
		"receipt spend  CHF 0.000000007 0.000000007",
		"total earnings customer EUR 1.500170625 1.5",
		"total earnings currency EUR 1.500170625 1.5",
		"total spend provider CHF 0.000000007 0.000000007",
		"total spend operator CHF 0.000000007 0.000000007",
		"total spend currency CHF 0.000000007 0.000000007",
	}
	if d := cmp.Diff(want, kinds); d != "" {
		t.Errorf("CSV rows (-want +got):\n%s", d)
	}
	if got := col(recs[4], "customer"); got != req.text() {
		t.Errorf("the total by customer names %q in its customer column, want %s", got, req.text())
	}

	b.Reset()
	if err := Write(&b, "json", st); err != nil {
		t.Fatal(err)
	}
	var back Statement
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(st, back); d != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", d)
	}
	if !strings.Contains(b.String(), `"amount_nanos": "1500000000"`) {
		t.Errorf("JSON amounts are not strings of nano-units:\n%s", b.String())
	}

	b.Reset()
	if err := Write(&b, "table", st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Earnings: this node as a provider", "1.500170625 EUR  1.5 EUR", "NO", "Spend: this node as a customer", UnknownOperator} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestDecimal(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "1": "0.000000001", "170625": "0.000170625", "1000000000": "1",
		"1500000000": "1.5", "36893488147419103228": "36893488147.419103228"} {
		if got := decimal(in); got != want {
			t.Errorf("decimal(%s) = %s, want %s", in, got, want)
		}
		n, _ := new(big.Int).SetString(in, 10)
		if got := formatNanos(n, "EUR"); got != want+" EUR" {
			t.Errorf("formatNanos(%s) = %s, want %s EUR", in, got, want)
		}
	}
}
