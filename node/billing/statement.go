package billing

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// Side is what the node was to a receipt: the provider that earned it, or
// the customer (requester) that spent it.
type Side string

const (
	Earnings Side = "earnings" // the node was the provider
	Spend    Side = "spend"    // the node was the requester
)

// UnknownOperator is the operator of a spend row whose leased offer the
// requester no longer holds. Parentheses are not allowed in a label value
// (SPEC 5), so it never reads as a real operator's name.
const UnknownOperator = "(unknown)"

// Statement is a node's statement of account over a window: one row per
// receipt, then the totals. Its JSON is what GET /v1/billing answers; every
// amount in it is an exact integer of nano-units written as a string, so
// that no JSON reader rounds it, beside the same amount as a decimal.
type Statement struct {
	Node    string     `json:"node"` // the node's peer ID
	Since   *time.Time `json:"since,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
	Rows    []Row      `json:"rows"`
	Totals  []Total    `json:"totals"`
	Skipped []Skipped  `json:"skipped,omitempty"`
	// Slices are the rents of the slices the node granted as a site or
	// rents as a retailer, within the window (SPEC 4.5, 6.7); Margins a
	// retailer's, per currency.
	Slices  []SliceRow `json:"slices"`
	Margins []Margin   `json:"margins"`
}

// Row is one receipt as billed: one lease epoch's run.
type Row struct {
	Side     Side   `json:"side"`
	LeaseID  string `json:"lease_id"` // hex
	Epoch    uint64 `json:"epoch"`
	JobCID   string `json:"job_cid"`
	Customer string `json:"customer"` // the requester's peer ID
	Provider string `json:"provider"` // the provider's peer ID
	// Operator is the operator label of the offer leased, as the requester
	// kept it; on spend rows only, UnknownOperator when it is not known.
	Operator    string    `json:"operator,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at"`
	CPUMillis   uint64    `json:"cpu_millis"`
	MemoryBytes uint64    `json:"memory_bytes"`
	Currency    string    `json:"currency"`
	AmountNanos uint64    `json:"amount_nanos,string"`
	Amount      string    `json:"amount"` // e.g. "0.000170625 EUR"
	// Countersigned says the requester's countersignature is kept beside
	// the receipt and verifies; Note says why one kept does not.
	Countersigned bool   `json:"countersigned"`
	Note          string `json:"note,omitempty"`
	// Leg is the receipt's place in a wholesale chain (SPEC 6.7): LegRetail,
	// LegSlice, or "" for a provider's own run.
	Leg string `json:"leg,omitempty"`
}

// Skipped is a stored receipt left out of the statement, and why.
type Skipped struct {
	LeaseID string `json:"lease_id"`
	Epoch   uint64 `json:"epoch"`
	Reason  string `json:"reason"`
}

// Input is what a statement is built from: the node's own peer ID (binary,
// as in the receipts), and copies of the receipts and the requester's jobs
// in its store, the jobs for the operators of the offers it leased.
type Input struct {
	Self     string
	Receipts []store.Receipt
	Jobs     []store.Job
	Grants   []store.Grant // the slices it granted or rents
}

// Build makes the statement of the receipts of in that ended within w. It
// reads nothing else and keeps nothing of in; the statement is the
// caller's.
func Build(in Input, w Window) Statement {
	st := Statement{Node: peer.ID(in.Self).String(), Rows: []Row{}}
	if !w.Since.IsZero() {
		st.Since = &w.Since
	}
	if !w.Until.IsZero() {
		st.Until = &w.Until
	}
	ops := operators(in.Jobs)
	for _, r := range in.Receipts {
		rows, err := rowsOf(r, in.Self, ops)
		if err != nil {
			st.Skipped = append(st.Skipped, Skipped{LeaseID: hex.EncodeToString([]byte(r.LeaseID)), Epoch: r.Epoch, Reason: err.Error()})
			continue
		}
		for _, row := range rows {
			if w.Holds(row.EndedAt) {
				st.Rows = append(st.Rows, row)
			}
		}
	}
	slices.SortFunc(st.Rows, compareRows)
	st.Totals = totals(st.Rows)
	st.Slices = sliceRows(in.Grants, w)
	st.Margins = margins(st.Rows, st.Slices)
	return st
}

// compareRows orders rows by side (earnings first), then by when they
// ended, then by lease epoch: a stable order for a statement read twice.
func compareRows(a, b Row) int {
	return cmp.Or(cmp.Compare(sideOrder(a.Side), sideOrder(b.Side)), a.EndedAt.Compare(b.EndedAt),
		cmp.Compare(a.LeaseID, b.LeaseID), cmp.Compare(a.Epoch, b.Epoch))
}

func sideOrder(s Side) int {
	if s == Earnings {
		return 0
	}
	return 1
}

// leaseEpoch names one lease epoch.
type leaseEpoch struct {
	id    string
	epoch uint64
}

// leased is what a requester kept of the offer a lease epoch took.
type leased struct {
	provider, operator string
}

// operators maps each lease epoch the jobs hold to its provider and the
// operator label of its offer. A slot keeps its current epoch's only: an
// older epoch's offer is gone, and its operator is unknown rather than
// guessed from a later offer, which another operator may have made.
func operators(jobs []store.Job) map[leaseEpoch]leased {
	m := map[leaseEpoch]leased{}
	for _, j := range jobs {
		for _, s := range j.Slots {
			if op, ok := s.Labels.Get("operator"); ok && s.Epoch > 0 {
				m[leaseEpoch{s.LeaseID, s.Epoch}] = leased{provider: s.Provider, operator: op}
			}
		}
	}
	return m
}

// rowsOf opens a stored receipt and makes its rows: an earning if self is
// its provider, a spend if self is its requester.
func rowsOf(r store.Receipt, self string, ops map[leaseEpoch]leased) ([]Row, error) {
	rc, err := record.OpenReceipt(r.Envelope)
	if err != nil {
		return nil, fmt.Errorf("the receipt does not open: %w", err)
	}
	if string(rc.LeaseId) != r.LeaseID || rc.Epoch != r.Epoch {
		return nil, fmt.Errorf("the receipt is of lease %x epoch %d, stored as lease %x epoch %d", rc.LeaseId, rc.Epoch, r.LeaseID, r.Epoch)
	}
	if rc.EndedAtMs < rc.StartedAtMs {
		return nil, fmt.Errorf("the receipt ends at %d ms, before it starts at %d ms", rc.EndedAtMs, rc.StartedAtMs)
	}
	row := baseRow(rc)
	row.Countersigned, row.Note = countersigned(r, rc)
	var rows []Row
	if string(rc.Provider) == self {
		earn := row
		earn.Side = Earnings
		rows = append(rows, earn)
	}
	if string(rc.Requester) == self {
		spend := row
		spend.Side, spend.Operator = Spend, UnknownOperator
		if l, ok := ops[leaseEpoch{r.LeaseID, r.Epoch}]; ok && l.provider == string(rc.Provider) {
			spend.Operator = l.operator
		}
		rows = append(rows, spend)
	}
	if rows == nil {
		return nil, fmt.Errorf("the receipt names provider %s and requester %s, neither of them this node", peerString(rc.Provider), peerString(rc.Requester))
	}
	return rows, nil
}

// baseRow is a receipt's row, without its side.
func baseRow(rc *pb.UsageReceipt) Row {
	a := rc.GetAmount()
	return Row{
		LeaseID: hex.EncodeToString(rc.LeaseId), Epoch: rc.Epoch, JobCID: cidString(rc.JobCid),
		Customer: peerString(rc.Requester), Provider: peerString(rc.Provider),
		StartedAt: protocol.FromUnixMs(rc.StartedAtMs), EndedAt: protocol.FromUnixMs(rc.EndedAtMs),
		CPUMillis: rc.GetReserved().GetCpuMillis(), MemoryBytes: rc.GetReserved().GetMemoryBytes(),
		Currency: a.GetCurrency(), AmountNanos: a.GetNanos(), Amount: protocol.FormatAmount(a), Leg: legOf(rc),
	}
}

// legOf is a receipt's place in a wholesale chain.
func legOf(rc *pb.UsageReceipt) string {
	switch {
	case rc.OnSlice && len(rc.JobCid) == 0:
		return LegRent
	case rc.OnSlice:
		return LegSlice
	case len(rc.SiteReceipt) > 0:
		return LegRetail
	}
	return ""
}

// countersigned checks the countersignature kept beside a receipt as its
// provider does when it takes one (SPEC 6.4, the provider's steps 2 and 3),
// and says why one kept does not count.
func countersigned(r store.Receipt, rc *pb.UsageReceipt) (bool, string) {
	if len(r.Countersignature) == 0 {
		return false, ""
	}
	cs, err := record.OpenCountersignature(r.Countersignature)
	switch {
	case err != nil:
		return false, fmt.Sprintf("the countersignature kept does not open: %v", err)
	case string(cs.Requester) != string(rc.Requester):
		return false, fmt.Sprintf("the countersignature kept is signed by %s, not the receipt's requester", peerString(cs.Requester))
	case !bytes.Equal(cs.ReceiptHash, conv.ReceiptHash(r.Envelope)):
		return false, "the countersignature kept covers another receipt"
	}
	return true, ""
}

// peerString writes a binary peer ID as text, or as hex if it is not one.
func peerString(b []byte) string {
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return hex.EncodeToString(b)
	}
	return id.String()
}

// cidString writes a binary CID as text, or as hex if it is not one.
func cidString(b []byte) string {
	c, err := cid.Cast(b)
	if err != nil {
		return hex.EncodeToString(b)
	}
	return c.String()
}
