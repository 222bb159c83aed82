package protocol

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
)

// PerSecond turns a price per hour, in nano-units, into the price per second
// that the wire carries (SPEC 5.5), rounded down: whoever writes a price per
// hour never quotes or pays more than it, and less by under 3600 nano-units an
// hour. Every hourly price, in the node's config and in the simulator's
// scenarios, is converted here.
func PerSecond(perHour uint64) uint64 { return perHour / secondsPerHour }

const secondsPerHour = uint64(time.Hour / time.Second)

// Cost returns what reserving res for d costs at price p, rounded up to the
// nano-unit (SPEC 5.5). It fails only if the sum does not fit in a uint64.
func Cost(res *pb.Resources, p *pb.Price, d time.Duration) (*pb.Amount, error) {
	n, err := CostNanos(res.GetCpuMillis(), res.GetMemoryBytes(), p.GetCpuNanosPerSecond(), p.GetMemoryNanosPerGibSecond(), d)
	if err != nil {
		return nil, err
	}
	return &pb.Amount{Currency: p.GetCurrency(), Nanos: n}, nil
}

// costDen is the common denominator of the two terms of the cost: 2^30 * 1e6.
const costDen = 1_000_000 << 30

// CostNanos is Cost on plain numbers:
//
//	ceil(cpu_millis * cpu_nanos_per_second * ms / 1e6
//	   + memory_bytes * memory_nanos_per_gib_second * ms / (2^30 * 1e3))
//
// where ms is d in whole milliseconds. It is exact, and allocates nothing unless
// an intermediate product exceeds 128 bits.
func CostNanos(cpuMillis, memoryBytes, cpuPrice, memPrice uint64, d time.Duration) (uint64, error) {
	ms := uint64(max(d.Milliseconds(), 0))
	// Over the denominator 2^30 * 1e6: cpu term * 2^30, memory term * 1e3.
	cpuHi, cpuLo, ok1 := mul3(cpuMillis, cpuPrice, ms, 1<<30)
	memHi, memLo, ok2 := mul3(memoryBytes, memPrice, ms, 1000)
	lo, carry := bits.Add64(cpuLo, memLo, 0)
	hi, over := bits.Add64(cpuHi, memHi, carry)
	if !ok1 || !ok2 || over != 0 || hi >= costDen {
		return costBig(cpuMillis, memoryBytes, cpuPrice, memPrice, ms)
	}
	q, r := bits.Div64(hi, lo, costDen)
	if r != 0 {
		if q == ^uint64(0) {
			return 0, fmt.Errorf("cost overflows a uint64 of nano-units")
		}
		q++
	}
	return q, nil
}

// mul3 returns a*b*c*k as 128 bits, and false if it does not fit.
func mul3(a, b, c, k uint64) (hi, lo uint64, ok bool) {
	h, l := bits.Mul64(a, b)
	if h != 0 {
		return 0, 0, false
	}
	h, l = bits.Mul64(l, c)
	h1, l1 := bits.Mul64(l, k)
	h2, l2 := bits.Mul64(h, k)
	if l2 != 0 && h2 == 0 {
		// (h*k) << 64 must fit in the high word.
		sum, carry := bits.Add64(h1, l2, 0)
		if carry != 0 {
			return 0, 0, false
		}
		return sum, l1, true
	}
	if h2 != 0 {
		return 0, 0, false
	}
	return h1, l1, true
}

// costBig is the slow, exact path for products beyond 128 bits.
func costBig(cpuMillis, memoryBytes, cpuPrice, memPrice, ms uint64) (uint64, error) {
	u := func(x uint64) *big.Int { return new(big.Int).SetUint64(x) }
	cpu := u(cpuMillis)
	cpu.Mul(cpu, u(cpuPrice)).Mul(cpu, u(ms)).Lsh(cpu, 30)
	mem := u(memoryBytes)
	mem.Mul(mem, u(memPrice)).Mul(mem, u(ms)).Mul(mem, big.NewInt(1000))
	sum := cpu.Add(cpu, mem)
	q, r := new(big.Int).QuoRem(sum, u(costDen), new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsUint64() {
		return 0, fmt.Errorf("cost overflows: %s nano-units", q)
	}
	return q.Uint64(), nil
}

// EgressNanos is what n bytes sent out cost at a price per GiB (SPEC 5.5):
//
//	ceil(n * egress_nanos_per_gib / 2^30)
func EgressNanos(n, nanosPerGiB uint64) (uint64, error) {
	hi, lo := bits.Mul64(n, nanosPerGiB)
	q := hi<<34 | lo>>30
	if hi>>30 != 0 {
		return 0, fmt.Errorf("egress cost overflows a uint64 of nano-units")
	}
	if lo&(1<<30-1) != 0 {
		if q == ^uint64(0) {
			return 0, fmt.Errorf("egress cost overflows a uint64 of nano-units")
		}
		q++
	}
	return q, nil
}

// ReceiptAmount is what a usage receipt must charge, in nano-units of its
// price's currency (SPEC 5.5, 6.4), computed from the receipt's own fields:
//
//	min(cost(reserved, price, ended_at_ms - started_at_ms), total) + egress_cost(egress_bytes, price)
//
// where total is the leased offer's total. A compute cost that overflows is
// capped at total like any other; an egress cost that overflows is not
// billed. It fails if ended_at_ms is before started_at_ms, or if the sum
// does not fit in a uint64. The provider bills with it and the requester
// checks with it, so both read the elapsed time from the same signed
// millisecond fields.
func ReceiptAmount(rc *pb.UsageReceipt, total uint64) (uint64, error) {
	start, end := rc.GetStartedAtMs(), rc.GetEndedAtMs()
	if end < start {
		return 0, fmt.Errorf("receipt ends at %d ms, before it starts at %d ms", end, start)
	}
	ms := end - start
	if ms > uint64(math.MaxInt64/int64(time.Millisecond)) {
		return 0, fmt.Errorf("receipt spans %d ms, too long to bill", ms)
	}
	p, r := rc.GetPrice(), rc.GetReserved()
	cost, err := CostNanos(r.GetCpuMillis(), r.GetMemoryBytes(), p.GetCpuNanosPerSecond(), p.GetMemoryNanosPerGibSecond(), time.Duration(ms)*time.Millisecond)
	if err != nil || cost > total {
		cost = total
	}
	egress, err := EgressNanos(rc.GetEgressBytes(), p.GetEgressNanosPerGib())
	if err != nil {
		egress = 0
	}
	sum, carry := bits.Add64(cost, egress, 0)
	if carry != 0 {
		return 0, fmt.Errorf("receipt amount overflows a uint64 of nano-units")
	}
	return sum, nil
}
