package bacalhau

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/protocol/jobspec"
)

// TestConvert: realistic Bacalhau jobs become the cuivre spec that runs the
// same module, and every field that is not carried over is named, once, in
// the order of the document; jobs with no cuivre equivalent are refused
// saying why. Each converted spec parses as a cuivre spec.
func TestConvert(t *testing.T) {
	for _, c := range []struct {
		file, module string
		want         jobspec.Document
		notes        []string // the Field of each note, in order
		err          string
	}{
		{file: "wasm-full.yaml",
			want: jobspec.Document{Version: 1, Name: "word-count", Count: 2, PlacementTimeout: "1h0m0s",
				Constraints: []string{"region = eu-west", "jurisdiction in (fr, be)"},
				Task: jobspec.TaskDocument{Module: "./build/wordfreq.wasm", Args: []string{"/inputs", "--top", "10"}, Env: map[string]string{"LANG": "fr"},
					Inputs:    []jobspec.InputDocument{{Path: "inputs", Source: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"}},
					Outputs:   []string{"outputs"},
					Resources: jobspec.ResourcesDocument{CPU: "500m", Memory: "1G", Scratch: "512Mi", Timeout: "10m0s"}}},
			notes: []string{"Name", "Namespace", "Priority", "Meta", "Labels", "Constraints[2]", "Constraints[3]",
				"Tasks[0].InputSources[0]", "Tasks[0].InputSources[1]", "Tasks[0].InputSources[2]", "Tasks[0].Env.API_KEY",
				"Tasks[0].ResultPaths[0]", "Tasks[0].Publisher", "Tasks[0].Resources.GPU", "Tasks[0].Network",
				"Tasks[0].Timeouts.TotalTimeout", "Tasks[0].Meta"}},
		{file: "wasm-v1.4.json",
			want: jobspec.Document{Version: 1, Name: "hello", Count: 1, PlacementTimeout: "24h0m0s",
				Task: jobspec.TaskDocument{Module: "bafkreig2zz43ijxol2slld5noldq5mpeqx6bjadqreq6grtxhwnynency4", Args: []string{"--name", "world"},
					Env: map[string]string{"GREETING": "bonjour"}, Resources: jobspec.ResourcesDocument{CPU: "0.5", Memory: "128M", Timeout: "30s"}}},
			notes: []string{"Tasks[0].Engine.Params.EntryPoint", "Tasks[0].Engine.Params.ImportModules", "Tasks[0].Timeouts.QueueTimeout"}},
		{file: "url-module.yaml", module: "main.wasm",
			want:  jobspec.Document{Version: 1, Name: "remote", Task: jobspec.TaskDocument{Module: "main.wasm"}},
			notes: []string{"Type", "Count", "Tasks[0].ResultPaths[0]", "Tasks[0].Resources.CPU", "Tasks[0].Resources.Memory"}},
		{file: "url-module.yaml", err: "Tasks[0].InputSources[0]: the module: a URL (https://example.org/main.wasm) cuivre does not download; give it as a file or a CID with --module"},
		{file: "docker.yaml", err: "Tasks[0].Engine: docker: cuivre runs WebAssembly modules (WASI preview 1) only"},
		{file: "legacy.yaml", err: "a job spec of Bacalhau before v1.0"},
		{file: "two-tasks.yaml", err: "Tasks: 2 tasks: a cuivre job runs one module"},
		{file: "typo.yaml", err: "line 6: field Resource not found"},
	} {
		t.Run(c.file+c.module, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			doc, notes, err := Convert(data, c.module)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, doc); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			var fields []string
			for _, n := range notes {
				fields = append(fields, n.Field)
			}
			if diff := cmp.Diff(c.notes, fields); diff != "" {
				t.Errorf("notes' fields (-want +got):\n%s\nnotes:\n%s", diff, notesText(notes))
			}
			b, err := doc.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jobspec.ParseJobSpec(b); err != nil {
				t.Fatalf("the spec does not parse: %v\n%s", err, b)
			}
		})
	}
}

func notesText(notes []Note) string {
	var b strings.Builder
	for _, n := range notes {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}
