package exec

import (
	"context"
	"sync"
	"testing"

	"github.com/cuivre/cuivre/protocol/wire"
)

// TestAddCompilesOnce adds one module from many goroutines at once: each Add
// returns when it is compiled, and it is compiled once.
func TestAddCompilesOnce(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	// (module (func (export "_start")))
	bin := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" +
		"\x07\x0a\x01\x06_start\x00\x00" + "\x0a\x04\x01\x02\x00\x0b")
	c := wire.SumCID(bin)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := e.Add(ctx, c, bin); err != nil {
				t.Error(err)
			}
			if !e.Has(c) {
				t.Error("Add returned before the module was ready")
			}
		})
	}
	wg.Wait()
	if e.compiles != 1 {
		t.Errorf("compiled %d times, want 1", e.compiles)
	}
}
