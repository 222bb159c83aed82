package scheduler

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/cuivre/cuivre/protocol"
)

// PricePolicy is how a provider prices its capacity: plain config, written in
// the market section of a node's YAML file.
//
// With LoadFactorPermille zero the price is static: every quote is at Base.
// Otherwise it is load-based: each unit price of Base (CPU, memory and egress)
// is multiplied by
//
//	1 + LoadFactorPermille/1000 * u^2
//
// where u in [0, 1] is the provider's utilisation once the quoted reservation is
// counted: the larger over CPU and memory of (committed + reserved + asked) /
// capacity. A factor of 1000 thus doubles the price at full load and adds a
// quarter at half load, while a lightly loaded provider stays near Base: the
// square keeps the price flat where capacity is plentiful and steep where it is
// scarce, which spreads load without punishing the first jobs.
//
// The arithmetic is integer only, so every platform quotes the same price. u is
// taken in whole permille, rounded up (see PriceAt), and each unit price is
// rounded up to the nano-unit, so both roundings are upward: a quoted unit price
// is never below the formula in exact arithmetic, and exceeds it by less than
// one nano-unit per resource-second plus what one permille of utilisation adds.
type PricePolicy struct {
	// Base is the price of an idle provider, per resource-second (per GiB for
	// egress). Its currency is required: a 3-letter upper-case ISO 4217 code.
	Base Price `yaml:"base"`
	// LoadFactorPermille is how much dearer full load is than idle, in
	// thousandths of Base; 0 (the default) is static pricing.
	LoadFactorPermille uint32 `yaml:"load_factor_permille"`
}

// Validate reports what is wrong with the policy: a missing or malformed
// currency, or unit prices so high that full load would overflow a uint64 of
// nano-units.
func (p PricePolicy) Validate() error {
	var errs []error
	if !protocol.IsCurrencyCode(p.Base.Currency) {
		errs = append(errs, fmt.Errorf("base.currency %q is not a currency: use a 3-letter upper-case ISO 4217 code such as EUR", p.Base.Currency))
	}
	if p.LoadFactorPermille != 0 {
		m := loadMultiplier(p.LoadFactorPermille, 1000)
		for _, u := range []struct {
			name  string
			price uint64
		}{
			{"base.cpu_nanos_per_second", p.Base.CPUNanosPerSecond},
			{"base.memory_nanos_per_gib_second", p.Base.MemoryNanosPerGiBSecond},
			{"base.egress_nanos_per_gib", p.Base.EgressNanosPerGiB},
		} {
			if _, ok := scalePrice(u.price, m); !ok {
				errs = append(errs, fmt.Errorf("%s: %d overflows a uint64 of nano-units at full load with load_factor_permille %d: lower one of them", u.name, u.price, p.LoadFactorPermille))
			}
		}
	}
	return errors.Join(errs...)
}

// PriceAt returns the unit prices the policy quotes at a utilisation of
// loadPermille thousandths (values above 1000 count as 1000). A unit price that
// would overflow, which Validate rules out, saturates at the largest uint64.
func (p PricePolicy) PriceAt(loadPermille uint32) Price {
	if p.LoadFactorPermille == 0 {
		return p.Base
	}
	m := loadMultiplier(p.LoadFactorPermille, loadPermille)
	scale := func(x uint64) uint64 {
		y, ok := scalePrice(x, m)
		if !ok {
			return math.MaxUint64
		}
		return y
	}
	return Price{
		Currency:                p.Base.Currency,
		CPUNanosPerSecond:       scale(p.Base.CPUNanosPerSecond),
		MemoryNanosPerGiBSecond: scale(p.Base.MemoryNanosPerGiBSecond),
		EgressNanosPerGiB:       scale(p.Base.EgressNanosPerGiB),
	}
}

// multiplierDen is the denominator of loadMultiplier: factor/1000 * (u/1000)^2
// puts 1e9 under the product.
const multiplierDen = 1_000_000_000

// loadMultiplier returns the price multiplier 1 + factor/1000 * (u/1000)^2 as
// a numerator over multiplierDen. It cannot overflow: at most
// 1e9 + (2^32-1) * 1e6 < 2^53.
func loadMultiplier(factorPermille, loadPermille uint32) uint64 {
	u := uint64(min(loadPermille, 1000))
	return multiplierDen + uint64(factorPermille)*u*u
}

// scalePrice returns ceil(x * m / multiplierDen), and false if it does not fit
// in a uint64.
func scalePrice(x, m uint64) (uint64, bool) {
	hi, lo := bits.Mul64(x, m)
	if hi >= multiplierDen {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, multiplierDen)
	if r != 0 {
		if q == math.MaxUint64 {
			return 0, false
		}
		q++
	}
	return q, true
}

// UtilisationPermille returns the larger over CPU and memory of used/capacity,
// in permille rounded up and capped at 1000, so that any use at all shows and
// a full provider reads exactly 1000. Scratch is not counted: it is disk, cheap
// and rarely the scarce resource, and a provider may sell none. A zero capacity
// counts as full if anything of it is used.
func UtilisationPermille(used, capacity Resources) uint32 {
	return max(permille(used.CPUMillis, capacity.CPUMillis), permille(used.MemoryBytes, capacity.MemoryBytes))
}

func permille(used, capacity uint64) uint32 {
	if used == 0 {
		return 0
	}
	if used >= capacity {
		return 1000
	}
	// used < capacity, so used*1000/capacity < 1000 and the quotient fits.
	hi, lo := bits.Mul64(used, 1000)
	q, r := bits.Div64(hi, lo, capacity)
	if r != 0 {
		q++
	}
	return uint32(q)
}
