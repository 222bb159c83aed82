package billing

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// Total is the sum of the rows of one side that share a key and a currency.
// All adds every receipt; Countersigned only those countersigned, what an
// operator bills from. The sums are exact: decimal integers of nano-units,
// which may be past 64 bits, beside the same sums as decimals with their
// currency.
type Total struct {
	Side Side `json:"side"`
	// By is what the rows are grouped by: customer (earnings), provider
	// or operator (spend), or currency (both sides); Key is its value.
	By                 string `json:"by"`
	Key                string `json:"key"`
	Currency           string `json:"currency"`
	Receipts           int    `json:"receipts"`
	NotCountersigned   int    `json:"not_countersigned"`
	AllNanos           string `json:"all_nanos"`
	All                string `json:"all"`
	CountersignedNanos string `json:"countersigned_nanos"`
	Countersigned      string `json:"countersigned"`
}

// groupings are the totals of each side, in the order they are written.
var groupings = map[Side][]string{
	Earnings: {"customer", "currency"},
	Spend:    {"provider", "operator", "currency"},
}

// keyOf is the value a row is grouped by.
func keyOf(r Row, by string) string {
	switch by {
	case "customer":
		return r.Customer
	case "provider":
		return r.Provider
	case "operator":
		return r.Operator
	}
	return r.Currency
}

// sum is a total being added up.
type sum struct {
	receipts, pending  int
	all, countersigned big.Int
}

type sumKey struct {
	side          Side
	by, key, curr string
}

// totals adds rows up by each side's groupings and currency, in the order
// side, grouping, key, currency.
func totals(rows []Row) []Total {
	sums := map[sumKey]*sum{}
	for _, r := range rows {
		for _, by := range groupings[r.Side] {
			k := sumKey{r.Side, by, keyOf(r, by), r.Currency}
			s := sums[k]
			if s == nil {
				s = &sum{}
				sums[k] = s
			}
			s.add(r)
		}
	}
	out := make([]Total, 0, len(sums))
	for k, s := range sums {
		out = append(out, Total{Side: k.side, By: k.by, Key: k.key, Currency: k.curr, Receipts: s.receipts, NotCountersigned: s.pending,
			AllNanos: s.all.String(), All: formatNanos(&s.all, k.curr),
			CountersignedNanos: s.countersigned.String(), Countersigned: formatNanos(&s.countersigned, k.curr)})
	}
	slices.SortFunc(out, func(a, b Total) int {
		return cmp.Or(cmp.Compare(sideOrder(a.Side), sideOrder(b.Side)),
			cmp.Compare(slices.Index(groupings[a.Side], a.By), slices.Index(groupings[b.Side], b.By)),
			cmp.Compare(a.Key, b.Key), cmp.Compare(a.Currency, b.Currency))
	})
	return out
}

func (s *sum) add(r Row) {
	n := new(big.Int).SetUint64(r.AmountNanos)
	s.receipts++
	s.all.Add(&s.all, n)
	if r.Countersigned {
		s.countersigned.Add(&s.countersigned, n)
	} else {
		s.pending++
	}
}

var nanosPerUnit = big.NewInt(1_000_000_000)

// formatNanos writes n nano-units as protocol.FormatAmount does ("0.05
// EUR"), for sums that may not fit in 64 bits.
func formatNanos(n *big.Int, currency string) string {
	whole, frac := new(big.Int).QuoRem(n, nanosPerUnit, new(big.Int))
	s := whole.String()
	if frac.Sign() != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%09d", frac.Uint64()), "0")
	}
	return s + " " + currency
}
