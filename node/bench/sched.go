package bench

import (
	"fmt"
	"runtime"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// core is a synchronous driver of the scheduler (the fourth, after the
// node, the simulator and the test harness): 50 providers' markets and a
// facet index in memory, one placement at a time, every action answered at
// once on the same goroutine. It measures the core and nothing else.
type core struct {
	markets map[string]*scheduler.Market
	index   map[protocol.FacetKey][]string
	job     scheduler.Job
	now     time.Time
	queue   []scheduler.Event
}

const coreSpec = `version: 1
name: core
task:
  module: m.wasm
  resources: {cpu: 500m, memory: 128Mi, timeout: 30s}
constraints:
  - jurisdiction = fr
`

func newCore(providers int) (*core, error) {
	spec, err := jobspec.ParseJobSpecFile("core.yaml", []byte(coreSpec))
	if err != nil {
		return nil, err
	}
	module := wire.SumCID([]byte("core"))
	j, err := spec.Job(func(string) (cid.Cid, error) { return module, nil })
	if err != nil {
		return nil, err
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	job, err := scheduler.JobFromPB(string(wire.SumCID([]byte("job")).Bytes()), "requester", j)
	if err != nil {
		return nil, err
	}
	c := &core{markets: map[string]*scheduler.Market{}, index: map[protocol.FacetKey][]string{}, job: job,
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := range providers {
		cfg := scheduler.MarketConfig{
			Provider:  fmt.Sprintf("provider-%02d", i),
			Capacity:  scheduler.Resources{CPUMillis: 16_000, MemoryBytes: 64 << 30, ScratchBytes: 1 << 30},
			Labels:    scheduler.NewLabels(scheduler.Label{Key: "jurisdiction", Value: "fr"}, scheduler.Label{Key: "region", Value: "fr-par"}, scheduler.Label{Key: "operator", Value: fmt.Sprintf("op-%d", i)}),
			Executors: []string{"wasm"},
			Pricing:   scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: uint64(9_000 + 100*i), MemoryNanosPerGiBSecond: 1_400}},
		}
		cfg.Seed[0] = byte(i)
		m, err := scheduler.NewMarket(cfg)
		if err != nil {
			return nil, err
		}
		c.markets[cfg.Provider] = m
		for _, k := range scheduler.ProviderKeys(cfg.Provider, cfg.Labels, cfg.Executors, cfg.Capacity) {
			c.index[k] = append(c.index[k], cfg.Provider)
		}
	}
	return c, nil
}

// place runs placement i to its first lease accepted, then ends the lease
// (the run itself is not the core's), so the markets never fill.
func (c *core) place(i uint64) error {
	var seed [32]byte
	for k := range 8 {
		seed[k] = byte(i >> (8 * k))
	}
	p := scheduler.NewPlacement(scheduler.Config{}, c.job, seed)
	c.now = c.now.Add(time.Millisecond)
	var leased scheduler.SendLease
	q := append(c.queue[:0], scheduler.Start{})
	for next := 0; next < len(q); next++ {
		for _, a := range p.Step(c.now, q[next]) {
			switch a := a.(type) {
			case scheduler.Lookup:
				for _, k := range a.Keys {
					peers := c.index[k]
					q = append(q, scheduler.CandidatesFound{Key: k, Peers: peers[:min(len(peers), a.Want)], Done: true})
				}
			case scheduler.RequestOffer:
				o, err := c.markets[a.Provider].Quote(c.now, a.Request)
				if err != nil {
					q = append(q, scheduler.OfferRefused{Provider: a.Provider, RequestNonce: a.Request.Nonce, Code: protocol.CodeOf(err), Reason: err.Error()})
					continue
				}
				q = append(q, scheduler.OfferReceived{Offer: o})
			case scheduler.SendLease:
				if err := c.markets[a.Provider].Commit(c.now, a.Lease); err != nil {
					q = append(q, scheduler.LeaseRejected{Provider: a.Provider, LeaseID: a.Lease.ID, Epoch: a.Lease.Epoch, Code: protocol.CodeOf(err), Reason: err.Error()})
					continue
				}
				leased = a
				q = append(q, scheduler.LeaseAccepted{Provider: a.Provider, LeaseID: a.Lease.ID, Epoch: a.Lease.Epoch})
			case scheduler.DeclineOffer:
				c.markets[a.Provider].Decline(c.now, a.OfferNonce)
			}
		}
	}
	c.queue = q
	if p.State() != scheduler.JobRunning {
		return fmt.Errorf("placement %d ended %s: %s", i, p.State(), p.Status().Reason)
	}
	_, err := c.markets[leased.Provider].Release(c.now, leased.Lease.ID, leased.Lease.Epoch)
	return err
}

// schedCore places n jobs through the core on this goroutine and returns
// placements per second and heap allocations per placement.
func schedCore(n int) (perSec, allocs float64, err error) {
	c, err := newCore(50)
	if err != nil {
		return 0, 0, err
	}
	for i := range uint64(100) { // warm up: the maps, the queue, the caches
		if err := c.place(i); err != nil {
			return 0, 0, err
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	for i := range uint64(n) {
		if err := c.place(100 + i); err != nil {
			return 0, 0, err
		}
	}
	took := time.Since(t0)
	runtime.ReadMemStats(&after)
	return float64(n) / took.Seconds(), float64(after.Mallocs-before.Mallocs) / float64(n), nil
}
