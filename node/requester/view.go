package requester

import (
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// JobView is a job as the API shows it. Reasons come as a code and its text:
// a code below 1000 is the protocol's (SPEC 2.5), one from 1000 the
// scheduler's own (scheduler.Reason); programs branch on the code, people
// read the text.
type JobView struct {
	CID     string        `json:"cid"`
	Name    string        `json:"name"`
	Spec    string        `json:"spec,omitempty"`
	State   string        `json:"state"`
	Code    int32         `json:"code,omitempty"`
	Reason  string        `json:"reason,omitempty"`
	Slots   []SlotView    `json:"slots"`
	Asked   []OutcomeView `json:"asked,omitempty"`
	History []string      `json:"history,omitempty"`
	// Events say when each lease epoch was acknowledged, declared lost and
	// ended: what detection and re-placement times are measured from.
	Events    []EventView `json:"events,omitempty"`
	Submitted time.Time   `json:"submitted"`
	// PlacedMs is the time from submission to the first lease accepted.
	PlacedMs float64 `json:"placed_ms,omitempty"`
	// Outputs are the distinct outputs its runs produced: one when the
	// replicas agree.
	Outputs []OutputView `json:"outputs,omitempty"`
	// Billed is what its runs' receipts charge, every epoch's: what the
	// runs used, not what was quoted (SPEC 5.5). Empty until a receipt
	// comes.
	Billed string `json:"billed,omitempty"`
}

// SlotView is one lease slot.
type SlotView struct {
	Provider string `json:"provider,omitempty"`
	// Site is where it ran when the provider is a retailer selling a
	// slice of a site (SPEC 6.7); empty otherwise.
	Site  string `json:"site,omitempty"`
	Epoch uint64 `json:"epoch"`
	State string `json:"state"`
	// Run is what the lease's provider last said its run does while the slot
	// is running: fetching (the module and inputs) or running.
	Run   string `json:"run,omitempty"`
	Price string `json:"price,omitempty"` // the offer's quote for the whole run
	// Billed is what the receipt of this slot's run charges: the time it
	// ran, at the quoted price; empty while it runs, or if no receipt came.
	Billed string `json:"billed,omitempty"`
	// ReceiptRefused says why this requester refused the receipt of the
	// slot's run and did not countersign it (SPEC 6.4): the provider's
	// bill disagrees with the offer or with SPEC 5.5. Billed is then empty.
	ReceiptRefused string `json:"receipt_refused,omitempty"`
	ExitCode       int32  `json:"exit_code"`
	Output         string `json:"output_cid,omitempty"`
	// StdoutCut and StderrCut say the provider cut a stream at the log
	// limit (SPEC 7): the output kept is a prefix.
	StdoutCut bool `json:"stdout_truncated,omitempty"`
	StderrCut bool `json:"stderr_truncated,omitempty"`
	// Scores say why the slot's offer won: each scorer's part in its rank.
	Scores []ScoreView `json:"scores,omitempty"`
	Total  int64       `json:"score,omitempty"`
}

// EventView is one turn in the life of a slot's lease epoch.
type EventView struct {
	At       time.Time `json:"at"`
	Slot     int       `json:"slot"`
	Epoch    uint64    `json:"epoch"`
	Provider string    `json:"provider"`
	Kind     string    `json:"kind"` // leased, lost or ended
}

// ScoreView is one scorer's part in an offer's rank (scheduler.Score).
type ScoreView struct {
	Scorer string `json:"scorer"`
	Weight int64  `json:"weight"`
	Value  int64  `json:"value"`
}

func scoresView(s scheduler.Scores) []ScoreView {
	var out []ScoreView
	for _, x := range s {
		out = append(out, ScoreView{Scorer: x.Scorer, Weight: x.Weight, Value: x.Value})
	}
	return out
}

// OutcomeView is what came of asking one provider.
type OutcomeView struct {
	Provider string      `json:"provider"`
	Code     int32       `json:"code"`
	Reason   string      `json:"reason"`
	Detail   string      `json:"detail,omitempty"`
	Scores   []ScoreView `json:"scores,omitempty"` // how its offer ranked, if it made one
	Total    int64       `json:"score,omitempty"`
}

func (j *job) view(key string) JobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.status
	v := JobView{CID: key, Name: j.name, Submitted: j.submitted, Spec: j.spec, PlacedMs: float64(j.placed.Microseconds()) / 1000, State: st.State.String(), Code: int32(st.Code), Reason: st.Reason, History: append([]string(nil), j.history...)}
	for _, e := range j.turns {
		v.Events = append(v.Events, EventView{At: e.At, Slot: e.Slot, Epoch: e.Epoch, Provider: peer.ID(e.Provider).String(), Kind: e.Kind.String()})
	}
	if st.State == 0 {
		v.State = "submitted"
	}
	for _, s := range st.Slots {
		sv := SlotView{Provider: peer.ID(s.Provider).String(), Site: siteOf(s.Site), Epoch: s.Epoch, State: s.State.String(), ExitCode: s.ExitCode,
			Scores: scoresView(s.Scores), Total: s.Scores.Total()}
		if s.Provider == "" {
			sv.Provider = ""
		}
		if st, ok := j.runs[runKey{s.LeaseID, s.Epoch}]; ok && s.State == scheduler.SlotRunning {
			sv.Run = strings.ToLower(strings.TrimPrefix(st.String(), "LEASE_STATE_"))
		}
		if r := j.results[runKey{s.LeaseID, s.Epoch}]; r != nil {
			sv.StdoutCut, sv.StderrCut = r.StdoutTruncated, r.StderrTruncated
			sv.ReceiptRefused = j.refused[runKey{s.LeaseID, s.Epoch}]
			if a := billed(r); a != nil && sv.ReceiptRefused == "" {
				sv.Billed = protocol.FormatAmount(a)
			}
		}
		if s.Price.Currency != "" {
			sv.Price = protocol.FormatAmount(&pb.Amount{Currency: s.Price.Currency, Nanos: s.Price.Nanos})
		}
		if c, err := cid.Cast([]byte(s.OutputCID)); err == nil {
			sv.Output = c.String()
		}
		v.Slots = append(v.Slots, sv)
	}
	for key, o := range j.outputs {
		c, _ := cid.Cast([]byte(key))
		ov := OutputView{CID: c.String(), Size: o.size, Held: o.held, Error: o.err}
		for _, p := range o.holders {
			ov.Providers = append(ov.Providers, peer.ID(p).String())
		}
		v.Outputs = append(v.Outputs, ov)
	}
	if len(j.outputs) == 0 {
		// A job shown from its records: its outputs are those its
		// succeeded slots name, not known to be held here.
		for _, sl := range st.Slots {
			c, err := cid.Cast([]byte(sl.OutputCID))
			if err != nil || sl.State != scheduler.SlotSucceeded {
				continue
			}
			i := slices.IndexFunc(v.Outputs, func(o OutputView) bool { return o.CID == c.String() })
			if i < 0 {
				v.Outputs = append(v.Outputs, OutputView{CID: c.String(), Size: j.results[runKey{sl.LeaseID, sl.Epoch}].GetOutputSize()})
				i = len(v.Outputs) - 1
			}
			v.Outputs[i].Providers = append(v.Outputs[i].Providers, peer.ID(sl.Provider).String())
		}
	}
	slices.SortFunc(v.Outputs, func(a, b OutputView) int { return strings.Compare(a.CID, b.CID) })
	var total *pb.Amount
	for k, r := range j.results {
		a := billed(r)
		switch {
		case a == nil || j.refused[k] != "":
		case total == nil:
			total = &pb.Amount{Currency: a.Currency, Nanos: a.Nanos}
		case total.Currency == a.Currency:
			total.Nanos += a.Nanos
		}
	}
	if total != nil {
		v.Billed = protocol.FormatAmount(total)
	}
	for _, o := range st.Asked {
		v.Asked = append(v.Asked, OutcomeView{Provider: peer.ID(o.Provider).String(), Code: int32(o.Reason), Reason: o.Reason.String(), Detail: o.Detail,
			Scores: scoresView(o.Scores), Total: o.Scores.Total()})
	}
	return v
}

// billed is the amount a result's receipt charges, or nil without one that
// opens.
func billed(r *pb.Result) *pb.Amount {
	if len(r.GetReceipt()) == 0 {
		return nil
	}
	rc, err := record.OpenReceipt(r.Receipt)
	if err != nil || rc.GetAmount().GetCurrency() == "" {
		return nil
	}
	return rc.Amount
}

// siteOf writes a retailer's site, a binary peer ID, as text; "" for none.
func siteOf(site string) string {
	if site == "" {
		return ""
	}
	return peer.ID(site).String()
}
