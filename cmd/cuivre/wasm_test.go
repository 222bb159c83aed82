package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/protocol/jobspec"
)

// TestWasmRunSpec: the spec wasm run builds from its flags, and that it
// parses as a job spec; each bad flag is refused saying how to write it.
func TestWasmRunSpec(t *testing.T) {
	for _, c := range []struct {
		name   string
		flags  wasmFlags
		module string
		args   []string
		want   jobspec.Document
		err    string
	}{
		{name: "defaults", module: "build/Hello_World.wasm",
			want: jobspec.Document{Version: 1, Name: "hello-world", Task: jobspec.TaskDocument{Module: "./build/Hello_World.wasm"}}},
		{name: "a CID stays a CID", module: "bafkreig2zz43ijxol2slld5noldq5mpeqx6bjadqreq6grtxhwnynency4",
			want: jobspec.Document{Version: 1, Name: "bafkreig2zz43ijxol2slld5noldq5mpeqx6bjadqreq6grtxhwnynency4", Task: jobspec.TaskDocument{Module: "bafkreig2zz43ijxol2slld5noldq5mpeqx6bjadqreq6grtxhwnynency4"}}},
		{name: "a name of digits alone", module: "/tmp/42.wasm", want: jobspec.Document{Version: 1, Name: "wasm", Task: jobspec.TaskDocument{Module: "/tmp/42.wasm"}}},
		{name: "every flag", module: "wordfreq.wasm", args: []string{"corpus", "--top", "3"},
			flags: wasmFlags{name: "words", cpu: "250m", memory: "64Mi", scratch: "1Mi", timeout: 90_000_000_000,
				env: []string{"LANG=fr", "EMPTY="}, inputs: []string{"../corpus/", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi:ref"},
				results: []string{"words.txt"}, constraints: []string{"jurisdiction in (fr, be)"}, count: 2, replicas: 3},
			want: jobspec.Document{Version: 1, Name: "words", Count: 2, Replicas: 3, Constraints: []string{"jurisdiction in (fr, be)"},
				Task: jobspec.TaskDocument{Module: "./wordfreq.wasm", Args: []string{"corpus", "--top", "3"}, Env: map[string]string{"LANG": "fr", "EMPTY": ""},
					Inputs:    []jobspec.InputDocument{{Path: "corpus", Source: "../corpus/"}, {Path: "ref", Source: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"}},
					Outputs:   []string{"words.txt"},
					Resources: jobspec.ResourcesDocument{CPU: "250m", Memory: "64Mi", Scratch: "1Mi", Timeout: "1m30s"}}}},
		{name: "env without =", module: "a.wasm", flags: wasmFlags{env: []string{"LANG"}}, err: `--env "LANG": write it NAME=VALUE`},
		{name: "a CID input needs a name", module: "a.wasm", flags: wasmFlags{inputs: []string{"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"}}, err: "name where it is mounted"},
		{name: "an empty input name", module: "a.wasm", flags: wasmFlags{inputs: []string{"data:"}}, err: "the name after ':' is empty"},
		{name: "the root as input", module: "a.wasm", flags: wasmFlags{inputs: []string{"/"}}, err: "name where it is mounted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.flags.spec(c.module, c.args)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Fatalf("spec (-want +got):\n%s", diff)
			}
			b, err := got.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jobspec.ParseJobSpec(b); err != nil {
				t.Fatalf("the spec does not parse: %v\n%s", err, b)
			}
		})
	}
}

// TestWasmRunArgs: arguments for the module go after --.
func TestWasmRunArgs(t *testing.T) {
	_, _, err := execute("wasm", "run", "hello.wasm", "--dry-run", "world")
	if err == nil || !strings.Contains(err.Error(), "after --") {
		t.Fatalf("arguments before --: %v, want a refusal", err)
	}
	out, _, err := execute("wasm", "run", "--dry-run", "hello.wasm", "--", "--name", "world")
	if err != nil || !strings.Contains(out, "args:\n    - --name\n    - world\n") {
		t.Fatalf("arguments after --: %v\n%s", err, out)
	}
}
