package simulations

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkMillionProviders builds a federation of a million providers (the
// markets, labels and DHT index the simulator holds) and reports the heap
// each takes, and what the whole federation holds. The goal is a few KiB a
// provider, 8 GiB in all.
func BenchmarkMillionProviders(b *testing.B) {
	sc, err := LoadScenario("scenarios/large.yaml")
	if err != nil {
		b.Fatal(err)
	}
	// Ten times the providers of the large scenario, in the same proportions.
	for i := range sc.Classes {
		sc.Classes[i].Count *= 10
	}
	for b.Loop() {
		s, err := newSim(sc, nil, 1, true)
		if err != nil {
			b.Fatal(err)
		}
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		b.ReportMetric(s.bytesPer, "B/provider")
		b.ReportMetric(float64(m.HeapAlloc)/(1<<30), "GiB-heap")
		b.ReportMetric(float64(len(s.providers)), "providers")
		runtime.KeepAlive(s)
	}
}

// BenchmarkSmall runs the small scenario and reports events per second.
func BenchmarkSmall(b *testing.B) {
	sc, err := LoadScenario("scenarios/small.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var events uint64
	start := time.Now()
	for b.Loop() {
		r, err := runOne(sc, nil, sc.Seed, nil, false)
		if err != nil {
			b.Fatal(err)
		}
		events += r.Events
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
}
