package protocol

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
)

func TestCost(t *testing.T) {
	price := &pb.Price{Currency: "EUR", CpuNanosPerSecond: 10_000, MemoryNanosPerGibSecond: 2_000}
	tests := []struct {
		name string
		res  *pb.Resources
		d    time.Duration
		want uint64
	}{
		{"one vCPU one GiB one second", &pb.Resources{CpuMillis: 1000, MemoryBytes: 1 << 30}, time.Second, 12_000},
		{"half a vCPU, 256 MiB, a minute", &pb.Resources{CpuMillis: 500, MemoryBytes: 256 << 20}, time.Minute, 300_000 + 30_000},
		{"rounds up", &pb.Resources{CpuMillis: 1}, time.Millisecond, 1},
		{"nothing", &pb.Resources{}, time.Hour, 0},
	}
	for _, tt := range tests {
		got, err := Cost(tt.res, price, tt.d)
		if err != nil || got.Nanos != tt.want || got.Currency != "EUR" {
			t.Errorf("%s: Cost = %v, %v; want %d EUR", tt.name, got, err, tt.want)
		}
	}
	huge := &pb.Price{CpuNanosPerSecond: math.MaxUint64}
	if _, err := Cost(&pb.Resources{CpuMillis: math.MaxUint64}, huge, time.Hour); err == nil {
		t.Error("Cost did not report an overflow")
	}
}

func TestFormatAmountRoundTrip(t *testing.T) {
	for _, s := range []string{"0 EUR", "0.05 EUR", "12 CHF", "0.000000001 USD", "18446744073.709551615 EUR"} {
		a, err := ParsePrice(s)
		if err != nil {
			t.Fatalf("ParsePrice(%q): %v", s, err)
		}
		if got := FormatAmount(a); got != s {
			t.Errorf("FormatAmount(ParsePrice(%q)) = %q", s, got)
		}
	}
}

// TestCostNanosAgainstBig checks the 128-bit fast path against plain big-integer
// arithmetic on random and edge-case inputs.
func TestCostNanosAgainstBig(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	edges := []uint64{0, 1, 999, 1000, 1 << 30, 1<<32 - 1, 1 << 32, 1 << 40, 1<<63 - 1, math.MaxUint64}
	pick := func() uint64 {
		if r.IntN(3) == 0 {
			return edges[r.IntN(len(edges))]
		}
		return r.Uint64() >> r.IntN(64)
	}
	for i := range 200_000 {
		cpu, mem, cp, mp := pick(), pick(), pick(), pick()
		d := time.Duration(pick()>>1) % (1000 * time.Hour)
		got, err := CostNanos(cpu, mem, cp, mp, d)
		want, werr := costBig(cpu, mem, cp, mp, uint64(d.Milliseconds()))
		if (err != nil) != (werr != nil) || got != want {
			t.Fatalf("case %d: CostNanos(%d, %d, %d, %d, %s) = %d, %v; want %d, %v", i, cpu, mem, cp, mp, d, got, err, want, werr)
		}
	}
}

func BenchmarkCostNanos(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CostNanos(500, 128<<20, 11_000, 1_500, 30*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFormatBytesRoundTrip(t *testing.T) {
	for _, n := range []uint64{0, 1, 1000, 1023, 1024, 1536, 128 << 20, 1 << 40, 3 << 40} {
		got, err := ParseQuantity(FormatBytes(n))
		if err != nil || got != n {
			t.Errorf("ParseQuantity(FormatBytes(%d) = %q) = %d, %v", n, FormatBytes(n), got, err)
		}
	}
}

// TestPerSecond checks that an hourly price becomes a price per second
// rounded down, never up: 1 nano-unit a second is 3600 an hour, and 7199 an
// hour is still 1 a second.
func TestPerSecond(t *testing.T) {
	tests := []struct{ perHour, want uint64 }{
		{0, 0},
		{1, 0},
		{1799, 0},
		{1800, 0}, // half a nano-unit a second: rounding to the nearest would give 1
		{3599, 0},
		{3600, 1},
		{5399, 1},
		{5400, 1},
		{7199, 1},
		{7200, 2},
		{40_000_000, 11_111}, // 0.04 an hour
		{5_000_000, 1_388},   // 0.005 an hour: 1388.9 a second
		{math.MaxUint64, math.MaxUint64 / 3600},
	}
	for _, tt := range tests {
		if got := PerSecond(tt.perHour); got != tt.want {
			t.Errorf("PerSecond(%d) = %d, want %d", tt.perHour, got, tt.want)
		}
		if got := PerSecond(tt.perHour); got*3600 > tt.perHour {
			t.Errorf("PerSecond(%d) = %d charges more than the hourly price", tt.perHour, got)
		}
	}
}

func TestEgressNanos(t *testing.T) {
	for _, tc := range []struct {
		n, price, want uint64
		err            bool
	}{
		{0, 10_000_000, 0, false},
		{1 << 30, 10_000_000, 10_000_000, false},
		{1, 10_000_000, 1, false}, // rounded up
		{3 << 29, 3, 5, false},    // 4.5 -> 5
		{1 << 62, 1 << 40, 0, true},
	} {
		got, err := EgressNanos(tc.n, tc.price)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("EgressNanos(%d, %d) = %d, %v; want %d, error %v", tc.n, tc.price, got, err, tc.want, tc.err)
		}
	}
}

func TestReceiptAmount(t *testing.T) {
	price := &pb.Price{Currency: "EUR", CpuNanosPerSecond: 10_000, MemoryNanosPerGibSecond: 2_000, EgressNanosPerGib: 1 << 30}
	res := &pb.Resources{CpuMillis: 1000, MemoryBytes: 1 << 30}
	rc := func(start, end, egress uint64) *pb.UsageReceipt {
		return &pb.UsageReceipt{Reserved: res, Price: price, StartedAtMs: start, EndedAtMs: end, EgressBytes: egress}
	}
	tests := []struct {
		name  string
		rc    *pb.UsageReceipt
		total uint64
		want  uint64
		fails bool
	}{
		{"one second", rc(1000, 2000, 0), 1 << 40, 12_000, false},
		{"the elapsed time is ended minus started, in ms", rc(999, 1001, 0), 1 << 40, 24, false},
		{"capped at the total", rc(0, 3_600_000, 0), 5_000, 5_000, false},
		{"egress on top of the cap", rc(0, 3_600_000, 3), 5_000, 5_003, false},
		{"no time held", rc(7, 7, 0), 1 << 40, 0, false},
		{"ends before it starts", rc(8, 7, 0), 1 << 40, 0, true},
		{"sum overflows", rc(0, 1000, math.MaxUint64), math.MaxUint64, 0, true},
	}
	for _, tt := range tests {
		got, err := ReceiptAmount(tt.rc, tt.total)
		if (err != nil) != tt.fails || got != tt.want {
			t.Errorf("%s: ReceiptAmount = %d, %v; want %d, fails %v", tt.name, got, err, tt.want, tt.fails)
		}
	}
}
