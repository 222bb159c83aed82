// Package fuzzguard turns a fuzz input that runs too long into a crash the
// fuzzer keeps, as it keeps a panic: Go's fuzzer has no time limit of its
// own per input. It is armed only in a fuzzing worker (go test -fuzz), never
// for the seed corpus that go test runs, whose timing a busy machine sets.
package fuzzguard

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// Limit is the longest one input may run; CUIVRE_FUZZ_HANG (a Go duration)
// sets another.
var Limit = time.Second

func init() {
	if d, err := time.ParseDuration(os.Getenv("CUIVRE_FUZZ_HANG")); err == nil && d > 0 {
		Limit = d
	}
}

// Start arms the guard for one input and returns its disarming: call it
// as `defer fuzzguard.Start()()` first in a fuzz function.
func Start() (stop func()) {
	if f := flag.Lookup("test.fuzzworker"); f == nil || f.Value.String() != "true" {
		return func() {}
	}
	start := time.Now()
	t := time.AfterFunc(Limit, func() {
		panic(fmt.Sprintf("fuzzguard: one input ran over %s (a hang); started %s ago", Limit, time.Since(start).Round(time.Millisecond)))
	})
	return func() { t.Stop() }
}
