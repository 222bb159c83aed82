package scheduler

import (
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
)

// TestBlocks: a waiting job holds back a later one only when the later can
// find no room the earlier could not.
func TestBlocks(t *testing.T) {
	base := Job{Executor: "wasm", Resources: Resources{CPUMillis: 2000, MemoryBytes: 1 << 30}, Timeout: time.Minute,
		Constraints: []Selector{{Key: "jurisdiction", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"fr"}}},
		MaxPrice:    Amount{Currency: "EUR", Nanos: 1000}}
	with := func(f func(*Job)) *Job {
		j := base
		j.Constraints = append([]Selector(nil), base.Constraints...)
		f(&j)
		return &j
	}
	for _, tt := range []struct {
		name  string
		later *Job
		want  bool
	}{
		{"the same", with(func(*Job) {}), true},
		{"larger", with(func(j *Job) { j.Resources.CPUMillis = 4000 }), true},
		{"longer", with(func(j *Job) { j.Timeout = time.Hour }), true},
		{"a lower ceiling", with(func(j *Job) { j.MaxPrice.Nanos = 10 }), true},
		{"one more constraint", with(func(j *Job) {
			j.Constraints = append(j.Constraints, Selector{Key: "region", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"fr-par"}})
		}), true},
		{"less CPU", with(func(j *Job) { j.Resources.CPUMillis = 1000 }), false},
		{"less memory", with(func(j *Job) { j.Resources.MemoryBytes = 1 << 20 }), false},
		{"shorter", with(func(j *Job) { j.Timeout = time.Second }), false},
		{"no ceiling", with(func(j *Job) { j.MaxPrice = Amount{} }), false},
		{"a higher ceiling", with(func(j *Job) { j.MaxPrice.Nanos = 2000 }), false},
		{"another currency", with(func(j *Job) { j.MaxPrice.Currency = "CHF" }), false},
		{"no constraint", with(func(j *Job) { j.Constraints = nil }), false},
		{"another value", with(func(j *Job) { j.Constraints[0].Values = []string{"de"} }), false},
		{"another executor", with(func(j *Job) { j.Executor = "oci" }), false},
	} {
		if got := Blocks(&base, tt.later); got != tt.want {
			t.Errorf("%s: Blocks = %v, want %v", tt.name, got, tt.want)
		}
	}
}
