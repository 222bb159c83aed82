package jobspec

import (
	"strings"
	"testing"
	"time"
)

// TestDocumentParses: a Document's YAML is a spec ParseJobSpec reads back
// to the same values.
func TestDocumentParses(t *testing.T) {
	d := Document{Version: 1, Name: "words", Count: 2, Replicas: 2, PlacementTimeout: "10m",
		Constraints: []string{"jurisdiction in (fr, be)"},
		Task: TaskDocument{Module: "bafkreig2zz43ijxol2slld5noldq5mpeqx6bjadqreq6grtxhwnynency4", Args: []string{"corpus"},
			Env: map[string]string{"LANG": "fr"}, Inputs: []InputDocument{{Path: "corpus", Source: "./corpus"}}, Outputs: []string{"words.txt"},
			Resources: ResourcesDocument{CPU: "250m", Memory: "64Mi", Scratch: "1Mi", Timeout: "30s"}}}
	b, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseJobSpec(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	r := s.Task.Resources
	if s.Name != "words" || s.Count != 2 || s.Replicas != 2 || s.PlacementTimeout != 10*time.Minute || len(s.Constraints) != 1 ||
		s.Task.Env["LANG"] != "fr" || s.Task.Inputs[0].Source != "./corpus" || s.Task.Outputs[0] != "words.txt" ||
		r.CPUMillis != 250 || r.MemoryBytes != 64<<20 || r.ScratchBytes != 1<<20 || r.Timeout != 30*time.Second {
		t.Fatalf("parsed back as %+v from\n%s", s, b)
	}
}

// TestNameFrom: a file name or a title becomes a job name the rules take.
func TestNameFrom(t *testing.T) {
	for in, want := range map[string]string{
		"hello":                        "hello",
		"Hello_World.v2":               "hello-world-v2",
		"2024 report!":                 "report",
		"--x--":                        "x",
		"42":                           "wasm",
		"été":                          "t",
		strings.Repeat("a", 70):        strings.Repeat("a", 63),
		strings.Repeat("a", 62) + "-b": strings.Repeat("a", 62),
	} {
		if got := NameFrom(in, "wasm"); got != want {
			t.Errorf("NameFrom(%q) = %q, want %q", in, got, want)
		}
	}
}
