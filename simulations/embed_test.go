package simulations

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEmbedded: every scenario file is embedded, and parses as from disk.
func TestEmbedded(t *testing.T) {
	files, _ := filepath.Glob("scenarios/*.yaml")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		disk, err := LoadScenario(f)
		if err != nil {
			t.Fatal(err)
		}
		emb, err := LoadEmbedded(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(disk.Classes, emb.Classes); diff != "" || disk.Workload.Jobs != emb.Workload.Jobs {
			t.Errorf("%s embedded differs from the file:\n%s", name, diff)
		}
	}
	sc, err := BenchScenario()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range sc.Classes {
		n += c.Count
	}
	if n != 10_000 || sc.Workload.Jobs != 40_000 {
		t.Errorf("bench scenario: %d providers, %d jobs", n, sc.Workload.Jobs)
	}
	if _, err := LoadEmbedded("nowhere"); err == nil {
		t.Error("a scenario that is not embedded loads")
	}
}
