package protocol

import (
	"fmt"
	"math/big"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
)

// Cost returns what reserving res for d costs at price p, rounded up to the
// nano-unit (SPEC 5.5):
//
//	ceil(cpu_millis * cpu_nanos_per_second * ms / 1e6
//	   + memory_bytes * memory_nanos_per_gib_second * ms / (2^30 * 1e3))
//
// where ms is d in whole milliseconds. It fails only if the sum does not fit in
// a uint64.
func Cost(res *pb.Resources, p *pb.Price, d time.Duration) (*pb.Amount, error) {
	ms := new(big.Int).SetInt64(d.Milliseconds())
	cpu := new(big.Int).SetUint64(res.GetCpuMillis())
	cpu.Mul(cpu, new(big.Int).SetUint64(p.GetCpuNanosPerSecond()))
	cpu.Mul(cpu, ms)
	mem := new(big.Int).SetUint64(res.GetMemoryBytes())
	mem.Mul(mem, new(big.Int).SetUint64(p.GetMemoryNanosPerGibSecond()))
	mem.Mul(mem, ms)
	// Bring both terms over the common denominator 2^30 * 1e6.
	cpu.Lsh(cpu, 30)
	mem.Mul(mem, big.NewInt(1000))
	sum := cpu.Add(cpu, mem)
	den := new(big.Int).Lsh(big.NewInt(1_000_000), 30)
	q, r := new(big.Int).QuoRem(sum, den, new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsUint64() {
		return nil, fmt.Errorf("cost overflows: %s nano-units", q)
	}
	return &pb.Amount{Currency: p.GetCurrency(), Nanos: q.Uint64()}, nil
}
