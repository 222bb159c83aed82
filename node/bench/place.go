package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/cuivre/cuivre/node/requester"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// benchSpec is the job of every placement measure: small enough for any
// provider, with the constraint of node's BenchmarkPlacement20, so that
// candidates are looked up under one facet (jurisdiction=fr, 5 providers
// in 8 of the devnet's mix).
const benchSpec = `version: 1
name: bench
task:
  module: m.wasm
  resources: {cpu: 10m, memory: 2Mi, scratch: 0, timeout: 5s}
constraints:
  - jurisdiction = fr
`

const (
	warmUp   = 20 // jobs before the warm measure: connections, caches, the compiled module
	coldRuns = 5  // fresh requesters of the cold measure
	inFlight = 64 // jobs at once in the throughput measure
	jobWait  = 30 * time.Second
)

// placer signs jobs as a customer and submits them.
type placer struct {
	spec *jobspec.JobSpec
	key  crypto.PrivKey
}

func newPlacer() (*placer, error) {
	spec, err := jobspec.ParseJobSpecFile("bench.yaml", []byte(benchSpec))
	if err != nil {
		return nil, err
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &placer{spec: spec, key: key}, nil
}

// submit signs a new job running module and submits it to n, as `cuivre job
// run` does (the module given along). It returns the job's key and the
// instant just before the submission.
func (p *placer) submit(n *node.Node, module []byte) (string, time.Time, error) {
	j, err := p.spec.Job(func(string) (cid.Cid, error) { return wire.SumCID(module), nil })
	if err != nil {
		return "", time.Time{}, err
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(j.Nonce)
	sj, err := record.SealJob(p.key, j)
	if err != nil {
		return "", time.Time{}, err
	}
	t0 := time.Now()
	key, err := n.Submit(sj.Envelope, module, "bench.yaml")
	return key, t0, err
}

// wait waits for a job's end, and fails unless it succeeded.
func wait(ctx context.Context, n *node.Node, key string) (requester.JobView, error) {
	ctx, cancel := context.WithTimeout(ctx, jobWait)
	defer cancel()
	v, err := n.Wait(ctx, key)
	if err != nil {
		return v, fmt.Errorf("job %s: %w", key, err)
	}
	if v.State != "succeeded" {
		return v, fmt.Errorf("job %s %s: %s", key, v.State, v.Reason)
	}
	return v, nil
}

// run submits a job and waits for its end.
func (p *placer) run(ctx context.Context, n *node.Node, module []byte) (requester.JobView, error) {
	key, _, err := p.submit(n, module)
	if err != nil {
		return requester.JobView{}, err
	}
	return wait(ctx, n, key)
}

// warm measures placement once connections are up and lookups cached: a
// warm-up, then jobs one after another.
func (b *bench) warm(ctx context.Context, d *devnet.Devnet, p *placer) error {
	for range warmUp {
		if _, err := p.run(ctx, d.Requester, writeModule); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	lat := make([]float64, 0, b.o.Jobs)
	for range b.o.Jobs {
		v, err := p.run(ctx, d.Requester, writeModule)
		if err != nil {
			return fmt.Errorf("warm placement: %w", err)
		}
		lat = append(lat, v.PlacedMs)
	}
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	b.add("warm_placement_p50_ms", p50)
	b.add("warm_placement_p90_ms", percentile(lat, 90))
	b.add("warm_placement_p99_ms", p99)
	rtts := b.values["stream_rtt_ms"]
	b.add("warm_p50_over_rtt", p50/rtts[len(rtts)-1])
	b.logf("warm placement: p50 %.2f ms, p99 %.2f ms over %d jobs", p50, p99, b.o.Jobs)
	return nil
}

// cold measures the first placement of requesters that have just joined:
// their DHT routing table is filled (a requester that is up), but they have
// no lookup cached and have never asked a provider for an offer, so the
// placement pays its DHT lookups, and the new streams to providers it has
// never spoken cuivre's protocols with.
func (b *bench) cold(ctx context.Context, d *devnet.Devnet, p *placer) error {
	var lat []float64
	for range coldRuns {
		n, err := d.NewRequester(ctx)
		if err == nil {
			// Joined: as many routing-table peers as a k-bucket holds, or
			// as the devnet has.
			want := min(len(d.Providers), 20)
			err = devnet.WaitFor(ctx, 10*time.Second, func() bool { return n.RoutingTableSize() >= want })
		}
		if err != nil {
			return err
		}
		v, err := p.run(ctx, n, writeModule)
		if err != nil {
			return fmt.Errorf("cold placement: %w", err)
		}
		lat = append(lat, v.PlacedMs)
	}
	b.add("cold_placement_ms", percentile(lat, 50))
	b.logf("cold placement: p50 %.2f ms over %d fresh requesters", percentile(lat, 50), coldRuns)
	return nil
}

// throughput submits o.Jobs jobs to the requester with inFlight at once,
// and measures placements per second (jobs over the time from the first
// submission to the last lease accepted) and jobs per second (to the last
// job ended).
func (b *bench) throughput(ctx context.Context, d *devnet.Devnet, p *placer) error {
	var (
		mu        sync.Mutex
		lastPlace time.Time
		firstErr  error
		wg        sync.WaitGroup
	)
	sem := make(chan struct{}, inFlight)
	start := time.Now()
	for range b.o.Jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v, err := p.run(ctx, d.Requester, writeModule)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if at := v.Submitted.Add(time.Duration(v.PlacedMs * float64(time.Millisecond))); at.After(lastPlace) {
				lastPlace = at
			}
		})
	}
	wg.Wait()
	end := time.Now()
	if firstErr != nil {
		return fmt.Errorf("throughput: %w", firstErr)
	}
	placed, finished := float64(b.o.Jobs)/lastPlace.Sub(start).Seconds(), float64(b.o.Jobs)/end.Sub(start).Seconds()
	b.add("placements_per_s", placed)
	b.add("jobs_per_s", finished)
	b.logf("throughput: %.0f placements/s, %.0f jobs/s, %d jobs with %d in flight", placed, finished, b.o.Jobs, inFlight)
	return nil
}

// firstInstruction measures the time from submission to the first
// instruction and to the result, with the module cached, then new, over
// half of o.Jobs jobs each, one after another.
func (b *bench) firstInstruction(ctx context.Context, d *devnet.Devnet, p *placer) error {
	for _, kind := range []string{"cached", "uncached"} {
		var first, result []float64
		for range max(b.o.Jobs/2, 1) {
			module := writeModule
			if kind == "uncached" {
				module = uncachedModule()
			}
			f, r, err := p.firstByte(ctx, d.Requester, module)
			if err != nil {
				return fmt.Errorf("first instruction, module %s: %w", kind, err)
			}
			first, result = append(first, f), append(result, r)
		}
		b.add("first_instruction_"+kind+"_p50_ms", percentile(first, 50))
		b.add("first_instruction_"+kind+"_p99_ms", percentile(first, 99))
		b.add("result_"+kind+"_p50_ms", percentile(result, 50))
		b.add("result_"+kind+"_p99_ms", percentile(result, 99))
		b.logf("module %s: first instruction p50 %.2f ms, result p50 %.2f ms", kind, percentile(first, 50), percentile(result, 50))
	}
	return nil
}

// firstByte submits a job of module and returns the time from the
// submission to its first stdout byte, as the requester receives it, and to
// its end, in milliseconds.
func (p *placer) firstByte(ctx context.Context, n *node.Node, module []byte) (first, result float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, jobWait)
	defer cancel()
	key, t0, err := p.submit(n, module)
	if err != nil {
		return 0, 0, err
	}
	for first == 0 {
		stdout, _, changed, done, _ := n.Logs(key)
		switch {
		case len(stdout) > 0:
			first = ms(time.Since(t0))
		case done:
			v, _ := n.Job(key)
			return 0, 0, fmt.Errorf("job %s ended (%s) without output", key, v.State)
		default:
			select {
			case <-changed:
			case <-ctx.Done():
				return 0, 0, fmt.Errorf("job %s: no output: %w", key, ctx.Err())
			}
		}
	}
	if _, err := wait(ctx, n, key); err != nil {
		return 0, 0, err
	}
	return first, ms(time.Since(t0)), nil
}
