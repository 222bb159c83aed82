package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/cuivre/cuivre/protocol/wire"
)

// TestWriteModule: the hand-assembled module writes "x" to stdout, and so
// does each uncached copy, under a CID of its own.
func TestWriteModule(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	a, b := uncachedModule(), uncachedModule()
	for i, m := range [][]byte{writeModule, a, b} {
		var out bytes.Buffer
		mod, err := r.InstantiateWithConfig(ctx, m, wazero.NewModuleConfig().WithStdout(&out).WithName(""))
		if err != nil {
			t.Fatalf("module %d: %v", i, err)
		}
		mod.Close(ctx)
		if out.String() != "x" {
			t.Errorf("module %d wrote %q, want \"x\"", i, out.String())
		}
	}
	if wire.SumCID(a) == wire.SumCID(b) || wire.SumCID(a) == wire.SumCID(writeModule) {
		t.Error("uncached modules share a CID")
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}} {
		if got := percentile(v, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("p50 of nothing")
	}
	u := []float64{3, 1, 2}
	if got := Percentile(u, 50); got != 2 || !slices.Equal(u, []float64{3, 1, 2}) {
		t.Errorf("Percentile(%v, 50) = %v, and must leave its values unsorted", u, got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("Percentile of nothing is not NaN")
	}
}

// TestNewFigure: min, median and max over the repeats; the goal is judged on
// the median; a figure without a goal has no verdict in its JSON.
func TestNewFigure(t *testing.T) {
	f := NewFigure("warm_placement_p50_ms", []float64{3, 1, 2.5})
	if f.Min != 1 || f.Median != 2.5 || f.Max != 3 || f.Met == nil || *f.Met {
		t.Errorf("got %+v", f)
	}
	if f := NewFigure("placements_per_s", []float64{900, 1100}); !*f.Met || f.Median != 1000 {
		t.Errorf("got %+v", f)
	}
	b, _ := json.Marshal(NewFigure("jobs_per_s", []float64{1}))
	if strings.Contains(string(b), "met") || strings.Contains(string(b), "goal") {
		t.Errorf("a figure without a goal: %s", b)
	}
	for _, d := range Defs {
		if d.Goal != "" {
			meets(1, d.Goal) // panics on a malformed goal
		}
	}
}

// TestSchedCore: the synchronous driver places jobs one after another without
// filling the markets.
func TestSchedCore(t *testing.T) {
	perSec, allocs, err := schedCore(2000)
	if err != nil {
		t.Fatal(err)
	}
	if perSec <= 0 || allocs <= 0 {
		t.Fatalf("%v placements/s, %v allocs each", perSec, allocs)
	}
}
