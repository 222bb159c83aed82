package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/cuivre/cuivre/node/devnet"
)

// Options of a benchmark run. The zero value of each field means its
// default.
type Options struct {
	Nodes  int           // providers in the devnet; default 50
	Jobs   int           // jobs of each placement measure; default 500
	Repeat int           // repeats of each measure; default 3
	Idle   time.Duration // the idle daemon's time, split into Repeat windows; default 30 s
	// TransferBytes is the size of the DAG moved between two providers;
	// default 256 MiB.
	TransferBytes int64
	// Executable is a cuivre binary to run the idle daemon from; empty
	// skips the daemon's figures.
	Executable string
	// Dir holds the nodes' data; default a new temporary dir, removed after.
	Dir string
	// Progress, if not nil, is told what is being measured, a line at a time.
	Progress io.Writer
	// Sim, if not nil, runs the simulator's benchmark scenario once and
	// returns the events it processed, its wall time and the heap per
	// provider. The node room does not hold the simulator; the caller does.
	Sim func() (events uint64, wall time.Duration, bytesPerProvider float64, err error)
}

func (o Options) withDefaults() Options {
	if o.Nodes <= 0 {
		o.Nodes = 50
	}
	if o.Jobs <= 0 {
		o.Jobs = 500
	}
	if o.Repeat <= 0 {
		o.Repeat = 3
	}
	if o.Idle <= 0 {
		o.Idle = 30 * time.Second
	}
	if o.TransferBytes <= 0 {
		o.TransferBytes = 256 << 20
	}
	return o
}

// Report is a benchmark's result: where and how it ran, and its figures.
type Report struct {
	Machine Machine   `json:"machine"`
	Commit  string    `json:"commit"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Options Settings  `json:"options"`
	Figures []Figure  `json:"figures"`
}

// Settings are the options a report was measured with.
type Settings struct {
	Nodes  int    `json:"nodes"`
	Jobs   int    `json:"jobs"`
	Repeat int    `json:"repeat"`
	Idle   string `json:"idle"`
	Daemon bool   `json:"daemon"` // whether the idle daemon was measured
}

// Machine is what the figures were measured on.
type Machine struct {
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"`
	MemoryBytes uint64 `json:"memory_bytes"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Go          string `json:"go"`
}

// ThisMachine describes the machine the process runs on; what cannot be
// read is left empty.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	if cs, err := cpu.Info(); err == nil && len(cs) > 0 {
		m.CPU = cs[0].ModelName
	}
	if v, err := mem.VirtualMemory(); err == nil {
		m.MemoryBytes = v.Total
	}
	return m
}

// Run measures, and returns the figures in the order of Defs. The
// scheduler's core and the simulator run first, with no devnet yet, so that
// the allocations and heap counted are their own; then a devnet of o.Nodes
// providers and a requester, each of its measures o.Repeat times; then the
// idle daemon, with nothing else running.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	r := &Report{Machine: ThisMachine(), Started: time.Now().UTC(),
		Options: Settings{Nodes: o.Nodes, Jobs: o.Jobs, Repeat: o.Repeat, Idle: o.Idle.String(), Daemon: o.Executable != ""}}
	b := &bench{o: o, start: time.Now(), values: map[string][]float64{}}

	for i := range o.Repeat {
		perSec, allocs, err := schedCore(50_000)
		if err != nil {
			return nil, fmt.Errorf("scheduler core: %w", err)
		}
		b.add("sched_placements_per_s", perSec)
		b.add("sched_allocs_per_placement", allocs)
		b.logf("scheduler core %d/%d: %.0f placements/s, %.1f allocs each", i+1, o.Repeat, perSec, allocs)
	}

	for i := range o.Repeat {
		if o.Sim != nil {
			events, wall, perProvider, err := o.Sim()
			if err != nil {
				return nil, fmt.Errorf("simulator: %w", err)
			}
			b.add("sim_events_per_s", float64(events)/wall.Seconds())
			b.add("sim_bytes_per_provider", perProvider)
			b.logf("simulator %d/%d: %d events in %s, %.0f bytes a provider", i+1, o.Repeat, events, wall.Round(time.Millisecond), perProvider)
		}
	}

	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "cuivre-bench")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	before := memInUse()
	t0 := time.Now()
	d, err := devnet.Start(ctx, devnet.Options{N: o.Nodes, Dir: filepath.Join(dir, "devnet")})
	if err != nil {
		return nil, fmt.Errorf("devnet of %d nodes: %w", o.Nodes, err)
	}
	defer d.Close()
	perNode := float64(memInUse()-before) / float64(o.Nodes+1) / (1 << 20)
	b.add("devnet_mib_per_node", perNode)
	b.logf("devnet of %d providers and a requester up in %s, %.1f MiB a node", o.Nodes, time.Since(t0).Round(time.Millisecond), perNode)

	p, err := newPlacer()
	if err != nil {
		return nil, err
	}
	for i := range o.Repeat {
		b.logf("repeat %d/%d", i+1, o.Repeat)
		if err := b.floors(ctx, d); err != nil {
			return nil, err
		}
		for _, measure := range []func(context.Context, *devnet.Devnet, *placer) error{b.warm, b.cold, b.throughput, b.firstInstruction} {
			if err := measure(ctx, d, p); err != nil {
				return nil, err
			}
		}
		if err := b.transfer(ctx, d, i); err != nil {
			return nil, fmt.Errorf("transfer: %w", err)
		}
	}

	if o.Executable != "" {
		if err := b.daemon(ctx, d, filepath.Join(dir, "daemon")); err != nil {
			return nil, fmt.Errorf("idle daemon: %w", err)
		}
	}
	for _, def := range Defs {
		if v, ok := b.values[def.Name]; ok {
			r.Figures = append(r.Figures, NewFigure(def.Name, v))
		}
	}
	return r, nil
}

// bench is one run's state: its options and the values measured so far,
// one per repeat, by figure name.
type bench struct {
	o      Options
	start  time.Time
	values map[string][]float64
}

func (b *bench) add(name string, v float64) { b.values[name] = append(b.values[name], v) }

func (b *bench) logf(format string, args ...any) {
	if b.o.Progress != nil {
		fmt.Fprintf(b.o.Progress, "bench %6.1fs  %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
	}
}

// memInUse is the Go heap and goroutine stacks in use, after a collection.
func memInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
