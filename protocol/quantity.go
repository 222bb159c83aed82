package protocol

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/cuivre/cuivre/protocol/pb"
)

// byteSuffixes are the unit suffixes of ParseQuantity, binary then decimal.
var byteSuffixes = []struct {
	suffix string
	mult   uint64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// maxNumberLen bounds the text of a number, so parsing it is cheap whatever
// the input.
const maxNumberLen = 40

// ParseQuantity reads an amount of bytes: a decimal number with an optional
// suffix Ki, Mi, Gi, Ti (powers of 1024) or k, M, G, T (powers of 1000), as in
// "128Mi", "1.5G" or "4096". The result must be a whole number of bytes that
// fits in a uint64.
func ParseQuantity(s string) (uint64, error) {
	bad := func(why string) error {
		return fmt.Errorf("bad quantity %s: %s", Quote(s), why)
	}
	num, mult := s, uint64(1)
	for _, u := range byteSuffixes {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, frac, ok := parseDecimal(num)
	if !ok {
		return 0, bad("use a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T")
	}
	n.Mul(n, new(big.Int).SetUint64(mult))
	q, r := n.QuoRem(n, pow10(frac), new(big.Int))
	if r.Sign() != 0 {
		return 0, bad("not a whole number of bytes")
	}
	if !q.IsUint64() {
		return 0, bad("too large")
	}
	return q.Uint64(), nil
}

// ParseCPU reads an amount of CPU as millicores: "500m" is 500, and a plain
// number counts vCPUs, so "0.5" is 500 and "2" is 2000.
func ParseCPU(s string) (uint64, error) {
	num, scale := s, 3
	if m, ok := strings.CutSuffix(s, "m"); ok {
		num, scale = m, 0
	}
	n, frac, ok := parseDecimal(num)
	if !ok {
		return 0, fmt.Errorf(`bad cpu %s: use vCPUs ("0.5", "2") or millicores ("500m")`, Quote(s))
	}
	if frac > scale {
		return 0, fmt.Errorf(`bad cpu %s: finer than a millicore: use at most 3 decimals, or whole millicores`, Quote(s))
	}
	n.Mul(n, pow10(scale-frac))
	if !n.IsUint64() {
		return 0, fmt.Errorf("bad cpu %s: too large", Quote(s))
	}
	return n.Uint64(), nil
}

// ParsePrice reads a sum of money written as a decimal amount and an ISO 4217
// currency code, such as "0.05 EUR", into nano-units: the amount as
// ParseAmount reads it.
func ParsePrice(s string) (*pb.Amount, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return nil, fmt.Errorf(`bad price %s: write an amount and a currency code, such as "0.05 EUR"`, Quote(s))
	}
	amount, currency := f[0], f[1]
	nanos, why := parseAmount(amount)
	if why != "" {
		return nil, fmt.Errorf("bad price %s: %s", Quote(s), why)
	}
	if !IsCurrencyCode(currency) {
		return nil, fmt.Errorf("bad price %s: currency %s is not a 3-letter upper-case ISO 4217 code, such as EUR", Quote(s), Quote(currency))
	}
	return &pb.Amount{Currency: currency, Nanos: nanos}, nil
}

// ParseAmount reads a sum of money without its currency, a decimal amount
// such as "0.05" or "12", into nano-units: at most 9 decimals, not negative,
// at most 18446744073.709551615 units, no sign, exponent or space.
func ParseAmount(s string) (uint64, error) {
	nanos, why := parseAmount(s)
	if why != "" {
		return 0, fmt.Errorf("bad amount %s: %s", Quote(s), why)
	}
	return nanos, nil
}

// parseAmount returns the nano-units of a decimal amount, or why it is not
// one, to follow "bad amount" or "bad price".
func parseAmount(s string) (uint64, string) {
	if strings.HasPrefix(s, "-") {
		return 0, "the amount must not be negative"
	}
	n, frac, ok := parseDecimal(s)
	if !ok {
		return 0, fmt.Sprintf(`%s is not a decimal amount: write it like "0.05"`, Quote(s))
	}
	if frac > 9 {
		return 0, "use at most 9 decimals"
	}
	n.Mul(n, pow10(9-frac))
	if !n.IsUint64() {
		return 0, "too large: at most 18446744073.709551615"
	}
	return n.Uint64(), ""
}

// parseDecimal reads "123" or "123.456" (no sign, no exponent, no spaces) as
// n / 10^frac.
func parseDecimal(s string) (n *big.Int, frac int, ok bool) {
	if s == "" || len(s) > maxNumberLen {
		return nil, 0, false
	}
	whole, fraction, dot := strings.Cut(s, ".")
	if whole == "" || dot && fraction == "" {
		return nil, 0, false
	}
	digits := whole + fraction
	for i := range len(digits) {
		if digits[i] < '0' || digits[i] > '9' {
			return nil, 0, false
		}
	}
	n, ok = new(big.Int).SetString(digits, 10)
	return n, len(fraction), ok
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// FormatAmount writes a sum of money as ParsePrice reads it, with the trailing
// zeros of the decimals dropped: {EUR, 50_000_000} is "0.05 EUR".
func FormatAmount(a *pb.Amount) string {
	whole, frac := a.GetNanos()/1e9, a.GetNanos()%1e9
	s := fmt.Sprintf("%d", whole)
	if frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%09d", frac), "0")
	}
	return s + " " + a.GetCurrency()
}

// FormatBytes writes n with the largest binary suffix that divides it exactly,
// as ParseQuantity reads it back: "128Mi", "1Ti", "1000".
func FormatBytes(n uint64) string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return fmt.Sprintf("%d", n)
}

// IsCurrencyCode reports whether s looks like an ISO 4217 code: three
// upper-case ASCII letters.
func IsCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
