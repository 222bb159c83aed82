package bacalhau

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzConvert: no Bacalhau document, however broken, makes Convert panic,
// and a document it converts can be written.
func FuzzConvert(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, _, err := Convert(data, "")
		if err != nil {
			return
		}
		if _, err := doc.YAML(); err != nil {
			t.Fatalf("converted, then not written: %v", err)
		}
	})
}
