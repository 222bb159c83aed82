package exec_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol/wire"
)

// BenchmarkRunCached instantiates and runs a module already compiled: the
// cost of starting a job on a node that knows its module (goal: p50 <= 1 ms
// to the guest's first instruction). "tiny" is a module whose _start
// returns at once, so its time is the executor's own; "hello" adds the Go
// runtime's start-up and a real program. p50-ns and p99-ns are per run.
func BenchmarkRunCached(b *testing.B) {
	for _, bc := range []struct {
		name string
		bin  func(testing.TB) []byte
		spec exec.RunSpec
	}{
		{name: "tiny", bin: func(testing.TB) []byte { return tinyModule }},
		{
			name: "hello", bin: func(tb testing.TB) []byte { return exectest.Module(tb, "hello") },
			spec: exec.RunSpec{Args: []string{"hello", "--name", "bench"}, Stdin: []byte("a\nb\n"), ScratchBytes: 1 << 20},
		},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newExecutor(b, exec.Config{})
			spec := bc.spec
			spec.Module = add(b, e, bc.bin(b))
			var stdout bytes.Buffer
			spec.Stdout = &stdout
			ctx := context.Background()
			times := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				stdout.Reset()
				start := time.Now()
				res, err := e.Run(ctx, spec)
				times = append(times, time.Since(start))
				res.Scratch.Close()
				if err != nil || res.Reason != exec.ReasonExit || res.ExitCode != 0 {
					b.Fatalf("reason %q, exit %d, %v", res.Reason, res.ExitCode, err)
				}
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

// BenchmarkCompile measures Add of the 2.8 MB hello module: "cold" compiles
// it in a fresh executor with no cache, with one worker (the default) and
// with two; "cachedir" is a restarted node, loading it from a warm
// Config.CacheDir.
func BenchmarkCompile(b *testing.B) {
	hello := exectest.Module(b, "hello")
	c := wire.SumCID(hello)
	ctx := context.Background()
	addFresh := func(b *testing.B, cfg exec.Config) {
		e, err := exec.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close(ctx)
		if err := e.Add(ctx, c, hello); err != nil {
			b.Fatal(err)
		}
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("cold/workers=%d", workers), func(b *testing.B) {
			for b.Loop() {
				addFresh(b, exec.Config{CompileWorkers: workers})
			}
		})
	}
	b.Run("cachedir", func(b *testing.B) {
		dir := b.TempDir()
		addFresh(b, exec.Config{CacheDir: dir}) // warm it
		for b.Loop() {
			addFresh(b, exec.Config{CacheDir: dir})
		}
	})
}

// BenchmarkInstantiate measures how long wazero takes, with the executor's
// runtime settings, to instantiate the compiled hello module up to the call
// of its _start: the time to the guest's first instruction, which the
// executor cannot go below. The rest of BenchmarkRunCached/hello is the Go
// runtime starting inside the guest.
func BenchmarkInstantiate(b *testing.B) {
	hello := exectest.Module(b, "hello")
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true).WithDebugInfoEnabled(false))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	compiled, err := rt.CompileModule(ctx, hello)
	if err != nil {
		b.Fatal(err)
	}
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions() // do not call _start
	times := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		mod, err := rt.InstantiateModule(ctx, compiled, cfg)
		times = append(times, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		mod.Close(ctx)
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
}
