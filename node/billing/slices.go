package billing

import (
	"cmp"
	"encoding/hex"
	"math/big"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// Legs of a receipt row, in a wholesale chain (SPEC 6.7).
const (
	// LegRetail is a retailer's receipt to its customer, for a run on a
	// site it names.
	LegRetail = "retail"
	// LegSlice is a site's receipt to a retailer for a run on its slice:
	// metered, billed nothing, the slice being paid whole.
	LegSlice = "slice"
	// LegRent is a site's bill of a slice's rent to its retailer.
	LegRent = "rent"
)

// SliceRow is one slice's rent within the window: a slice is paid whole
// for its period, used or not (SPEC 4.5), so its part of the window is
// billed at its grant's price, whatever ran on it.
type SliceRow struct {
	// Role is what the node is to the slice: "site" (it earns the rent)
	// or "retailer" (it pays it).
	Role        string    `json:"role"`
	Grant       string    `json:"grant"` // hex grant ID
	Site        string    `json:"site"`
	Grantee     string    `json:"grantee"`
	From        time.Time `json:"from"`  // the part of the slice within the window
	Until       time.Time `json:"until"` // the slice's end within the window: the grant's, or a withdrawal's or release's
	CPUMillis   uint64    `json:"cpu_millis"`
	MemoryBytes uint64    `json:"memory_bytes"`
	Currency    string    `json:"currency"`
	AmountNanos uint64    `json:"amount_nanos,string"`
	Amount      string    `json:"amount"`
}

// Margin is a retailer's margin in one currency: what its customers were
// billed for runs on slices (retail receipts), less the rent of its slices
// over the window. It may be negative.
type Margin struct {
	Currency    string `json:"currency"`
	RetailNanos string `json:"retail_nanos"`
	Retail      string `json:"retail"`
	SlicesNanos string `json:"slices_nanos"`
	Slices      string `json:"slices"`
	MarginNanos string `json:"margin_nanos"`
	Margin      string `json:"margin"`
}

// sliceRows are the rents of the grants within w, the grants refused as
// off terms left out (their slices were never held).
func sliceRows(grants []store.Grant, w Window) []SliceRow {
	out := []SliceRow{}
	for _, sg := range grants {
		g := new(pb.SliceGrant)
		if _, _, err := record.Open(sg.Envelope, g); err != nil || sg.OffTerms {
			continue
		}
		end := g.EndAtMs
		if wd, err := record.OpenWithdrawal(sg.Withdrawal); err == nil && !sg.WithdrawalRefused {
			end = min(end, wd.EndAtMs)
		}
		if rl, err := record.OpenRelease(sg.Release); err == nil {
			end = min(end, rl.EndAtMs)
		}
		from, until := protocol.FromUnixMs(g.StartAtMs), protocol.FromUnixMs(end)
		if !w.Since.IsZero() && from.Before(w.Since) {
			from = w.Since
		}
		if !w.Until.IsZero() && until.After(w.Until) {
			until = w.Until
		}
		if !from.Before(until) {
			continue
		}
		res, price := conv.ResourcesFromPB(g.Resources), conv.PriceFromPB(g.Price)
		nanos, err := price.Cost(res, until.Sub(from))
		if err != nil {
			continue
		}
		role := "retailer"
		if sg.Made {
			role = "site"
		}
		out = append(out, SliceRow{Role: role, Grant: hex.EncodeToString(g.GrantId), Site: peer.ID(g.Site).String(), Grantee: peer.ID(g.Grantee).String(),
			From: from, Until: until, CPUMillis: res.CPUMillis, MemoryBytes: res.MemoryBytes, Currency: price.Currency,
			AmountNanos: nanos, Amount: protocol.FormatAmount(&pb.Amount{Currency: price.Currency, Nanos: nanos})})
	}
	slices.SortFunc(out, func(a, b SliceRow) int { return cmp.Or(a.From.Compare(b.From), cmp.Compare(a.Grant, b.Grant)) })
	return out
}

// margins are a retailer's margins, per currency: its retail receipts' sum
// less its slices' rent. A node that neither sells retail nor rents a slice
// has none.
func margins(rows []Row, rents []SliceRow) []Margin {
	retail, paid := map[string]*big.Int{}, map[string]*big.Int{}
	add := func(m map[string]*big.Int, curr string, n uint64) {
		if m[curr] == nil {
			m[curr] = new(big.Int)
		}
		m[curr].Add(m[curr], new(big.Int).SetUint64(n))
	}
	for _, r := range rows {
		if r.Side == Earnings && r.Leg == LegRetail {
			add(retail, r.Currency, r.AmountNanos)
		}
	}
	for _, s := range rents {
		if s.Role == "retailer" {
			add(paid, s.Currency, s.AmountNanos)
		}
	}
	var currs []string
	for c := range retail {
		currs = append(currs, c)
	}
	for c := range paid {
		if retail[c] == nil {
			currs = append(currs, c)
		}
	}
	slices.Sort(currs)
	out := []Margin{}
	for _, c := range currs {
		r, p := orZero(retail[c]), orZero(paid[c])
		m := new(big.Int).Sub(r, p)
		out = append(out, Margin{Currency: c, RetailNanos: r.String(), Retail: formatNanos(r, c), SlicesNanos: p.String(), Slices: formatNanos(p, c),
			MarginNanos: m.String(), Margin: formatSigned(m, c)})
	}
	return out
}

func orZero(n *big.Int) *big.Int {
	if n == nil {
		return new(big.Int)
	}
	return n
}

// formatSigned is formatNanos for an amount that may be negative.
func formatSigned(n *big.Int, currency string) string {
	if n.Sign() < 0 {
		return "-" + formatNanos(new(big.Int).Neg(n), currency)
	}
	return formatNanos(n, currency)
}
