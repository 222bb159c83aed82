package main

import (
	"strings"
	"testing"
)

// TestBacalhauSpecHint: a Bacalhau job given where a cuivre spec is expected
// is refused with what to run to convert it.
func TestBacalhauSpecHint(t *testing.T) {
	const spec = "../../protocol/jobspec/bacalhau/testdata/wasm-full.yaml"
	_, _, err := execute("job", "inspect", spec)
	if err == nil || !strings.Contains(err.Error(), "looks like a Bacalhau job: convert it with `cuivre job import "+spec+"`") {
		t.Errorf("job inspect of a Bacalhau job: %v, want the hint to import it", err)
	}
}
