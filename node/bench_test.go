package node

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// emptyModule is the smallest WASI command: _start returns at once. It keeps
// the run out of a placement's measure.
var emptyModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: () -> ()
	0x03, 0x02, 0x01, 0x00, // one function of type 0
	0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00, // export _start
	0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // its body: end
}

// BenchmarkPlacement20 measures placement on a federation of 20 providers on
// loopback (real libp2p, DHT, stores with fsync, executor): the latency from
// submission to the first lease accepted, warm (connections up), sequential
// (p50, p99), then placements per second with 16 jobs in flight. Each job
// runs an empty module, so the measure is the market, not the run.
func BenchmarkPlacement20(b *testing.B) {
	t := &testing.T{}
	regions := make([]string, 20)
	for i := range regions {
		regions[i] = []string{"fr-par", "fr-lyo", "de-fra", "be-bru"}[i%4]
	}
	req, _ := federation(t, regions)
	spec := "version: 1\nname: empty\ntask:\n  module: m.wasm\n  resources: {cpu: 10m, memory: 2Mi, scratch: 0, timeout: 5s}\nconstraints:\n  - jurisdiction = fr\n"
	ctx := context.Background()
	placed := func() float64 {
		key := submit(t, req, spec, emptyModule)
		v, err := req.Wait(ctx, key)
		if err != nil || v.State != "succeeded" {
			b.Fatalf("job: %+v %v", v, err)
		}
		return v.PlacedMs
	}
	for range 20 { // warm up: connections, the compiled module
		placed()
	}
	b.ResetTimer()
	var lat []float64
	for b.Loop() {
		lat = append(lat, placed())
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")

	const inFlight, total = 16, 256
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, inFlight)
	for range total {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			placed()
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "jobs/s")

}
