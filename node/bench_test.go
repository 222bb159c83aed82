package node

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/exec/exectest"
)

// BenchmarkPlacement20 measures placement on a federation of 20 providers on
// loopback (real libp2p, DHT, stores with fsync, executor): the latency from
// submission to the first lease accepted, warm (connections up), sequential
// (p50, p99), then placements per second with 16 jobs in flight. Each job
// runs an empty module, so the measure is the market, not the run. The
// federation is the benchmark's own: a failed setup fails it, and its nodes
// close with it.
func BenchmarkPlacement20(b *testing.B) {
	regions := make([]string, 20)
	for i := range regions {
		regions[i] = []string{"fr-par", "fr-lyo", "de-fra", "be-bru"}[i%4]
	}
	req, _ := federation(b, regions)
	spec := "version: 1\nname: empty\ntask:\n  module: m.wasm\n  resources: {cpu: 10m, memory: 2Mi, scratch: 0, timeout: 5s}\nconstraints:\n  - jurisdiction = fr\n"
	empty := exectest.Empty()
	ctx := context.Background()
	placed := func() (float64, bool) {
		key := submit(b, req, spec, empty)
		v, err := req.Wait(ctx, key)
		if err != nil || v.State != "succeeded" {
			b.Errorf("job: %+v %v", v, err)
			return 0, false
		}
		return v.PlacedMs, true
	}
	for range 20 { // warm up: connections, the compiled module
		if _, ok := placed(); !ok {
			b.FailNow()
		}
	}
	b.ResetTimer()
	var lat []float64
	for b.Loop() {
		ms, ok := placed()
		if !ok {
			b.FailNow()
		}
		lat = append(lat, ms)
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
