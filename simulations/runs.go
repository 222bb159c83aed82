package simulations

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// RunOptions says how many runs of a scenario to make, and how.
type RunOptions struct {
	Seed     uint64 // seed of the first run; run k uses Seed+k
	Runs     int    // runs of each variant; default 1
	Parallel int    // runs at once; default GOMAXPROCS. Each run is one goroutine.
	// Progress, if not nil, is called from the running goroutines, at each
	// sample of the time series, with the index of the run in the result.
	Progress func(i int, now time.Duration, ended, expected int)
}

// RunSpec names one run: a variant (nil for the scenario as written) and a
// seed.
type RunSpec struct {
	Variant *Variant
	Name    string
	Seed    uint64
}

// Plan lists the runs RunAll makes, in the order of its results: each
// variant in turn, each with seeds Seed, Seed+1, ...
func Plan(sc *Scenario, o RunOptions) []RunSpec {
	runs := max(1, o.Runs)
	var out []RunSpec
	if len(sc.Variants) == 0 {
		for k := range runs {
			out = append(out, RunSpec{Name: sc.Name, Seed: o.Seed + uint64(k)})
		}
		return out
	}
	for i := range sc.Variants {
		for k := range runs {
			out = append(out, RunSpec{Variant: &sc.Variants[i], Name: sc.Variants[i].Name, Seed: o.Seed + uint64(k)})
		}
	}
	return out
}

// RunAll makes every run of Plan, Parallel at a time. Runs share nothing, so
// each result is the same whatever the parallelism.
func RunAll(sc *Scenario, o RunOptions) ([]*Result, error) {
	plan := Plan(sc, o)
	par := o.Parallel
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	par = min(par, len(plan))
	results := make([]*Result, len(plan))
	errs := make([]error, len(plan))
	next := make(chan int)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for i := range next {
				var progress Progress
				if o.Progress != nil {
					progress = func(now time.Duration, ended, expected int) { o.Progress(i, now, ended, expected) }
				}
				results[i], errs[i] = runOne(sc, plan[i].Variant, plan[i].Seed, progress, par == 1)
			}
		})
	}
	for i := range plan {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s, seed %d: %w", plan[i].Name, plan[i].Seed, err)
		}
	}
	return results, nil
}
