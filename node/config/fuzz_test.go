package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cuivre/cuivre/internal/fuzzguard"
)

// FuzzLoadFile feeds config files to the file layer of Load: whatever the
// bytes, neither it nor validating and pricing what it accepts may panic.
func FuzzLoadFile(f *testing.F) {
	f.Add(Template())
	profiles, _ := filepath.Glob("../../examples/nodes/*.yaml")
	for _, p := range profiles {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{"", "nat: [1]", "labels: {extra: {a: *x}}", "listen: &a [*a]", "a: b\n---\nc: d", "capacity: {cpu: ~, memory: 1e9}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Start()()
		c := Default()
		l := loader{cfg: reflect.ValueOf(&c).Elem(), sources: map[string]string{}}
		l.file("fuzz.yaml", data)
		if len(l.errs) > 0 {
			return
		}
		_ = c.Validate()
		_, _ = c.Market("p", machine)
	})
}
