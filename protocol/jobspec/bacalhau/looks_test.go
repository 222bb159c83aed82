package bacalhau

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLooks: every Bacalhau job of the test data reads as one; cuivre's
// example specs and documents that are not jobs do not.
func TestLooks(t *testing.T) {
	jobs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(jobs) == 0 {
		t.Fatalf("no Bacalhau jobs in testdata: %v", err)
	}
	for _, f := range jobs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !Looks(b) {
			t.Errorf("%s does not read as a Bacalhau job", f)
		}
	}
	ours, _ := filepath.Glob("../../../examples/jobs/*.yaml")
	for _, f := range ours {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if Looks(b) {
			t.Errorf("cuivre's %s reads as a Bacalhau job", f)
		}
	}
	for _, doc := range []string{"", "- a list", "name: x\ntype: y", ":::"} {
		if Looks([]byte(doc)) {
			t.Errorf("%q reads as a Bacalhau job", doc)
		}
	}
}
