package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/exec/exectest"
)

// TestDemo runs what `make run` shows, and checks its claims: every example
// job succeeded, the refused one was refused with its reason, the lost lease
// was rescheduled.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a federation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a bound on a hung demo, not a measure
	defer cancel()
	var out bytes.Buffer
	if err := Run(ctx, Options{Examples: "../../examples", Out: &out, CacheDir: exectest.CacheDir(t)}); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{"hello, world!", "348513 primes below 5000000", "45 distinct words in 2 files", "words.txt: 6 de, 5 la, 4 a", "bonjour, souverain!",
		"swiss-only is failed", ": constraint mismatch", "under epoch 2", "succeeded"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	// The swiss-only job's reason is that of its last round: every
	// provider found refused it ("constraint mismatch"), or, once they all
	// had, none was left to ask under its jurisdiction's facet. Which one
	// ends the two minutes depends on how fast the DHT answers; both
	// explain the refusal, and each provider asked is listed with its own.
	if !strings.Contains(s, "constraint mismatch") && !strings.Contains(s, "under jurisdiction=ch") {
		t.Errorf("the refusal is not explained:\n%s", s)
	}
	if strings.Contains(s, "failed: ") {
		t.Errorf("an example job failed:\n%s", s)
	}
}
