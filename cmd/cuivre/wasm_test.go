package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/requester"
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
			if !wantErr(t, err, c.err) {
				return
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

// TestWasmRunDaemons: against two daemons, wasm run places the module it is
// given and follows it to its output, as job run would; the job is then
// found by a prefix of its CID and by its name, through the data dir and
// through --api; a second run of the same name makes the name ambiguous.
func TestWasmRunDaemons(t *testing.T) {
	a, _ := twoDaemons(t)
	hello := filepath.Join(t.TempDir(), "hello.wasm")
	if err := os.WriteFile(hello, exectest.Module(t, "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--cpu", "500m", "--memory", "64Mi", "--constraint", "jurisdiction = fr"}
	out, errOut, code := runCode(t, append(append([]string{"wasm", "run", "--data-dir", a.dir}, flags...), hello, "--", "--name", "wasm")...)
	if code != 0 || out != "hello, wasm! (0 lines on stdin)\n" {
		t.Fatalf("wasm run: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	out, errOut, code = runCode(t, "job", "list", "--data-dir", a.dir, "--name", "hello", "-o", "json")
	var jobs []requester.JobView
	if err := json.Unmarshal([]byte(out), &jobs); code != 0 || err != nil || len(jobs) != 1 || jobs[0].State != "succeeded" {
		t.Fatalf("job list --name hello: exit %d, %v, %+v\n%s", code, err, jobs, errOut)
	}
	cid := jobs[0].CID

	token := filepath.Join(a.dir, "api.token")
	addr, err := os.ReadFile(filepath.Join(a.dir, "api"))
	if err != nil {
		t.Fatal(err)
	}
	api := []string{"--api", strings.TrimSpace(string(addr)), "--api-token-file", token}
	for _, args := range [][]string{
		{"--data-dir", a.dir, cid[:len(cid)-6]},
		{"--data-dir", a.dir, "hello"},
		append(api, "--data-dir", t.TempDir(), cid[:20]),
	} {
		out, errOut, code := runCode(t, append([]string{"job", "status", "-o", "json"}, args...)...)
		var v requester.JobView
		if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.CID != cid || v.State != "succeeded" {
			t.Errorf("job status %s: exit %d, %v, %+v\n%s", strings.Join(args, " "), code, err, v, errOut)
		}
	}

	// Through --api, signed with the data dir's key: the same module again,
	// and the name now names two jobs.
	if out, errOut, code := runCode(t, append(append(append([]string{"wasm", "run", "--data-dir", a.dir}, api...), flags...), hello)...); code != 0 || out != "hello, world! (0 lines on stdin)\n" {
		t.Fatalf("wasm run --api: exit %d, stdout %q, stderr:\n%s", code, out, errOut)
	}
	_, errOut, code = runCode(t, "job", "status", "--data-dir", a.dir, "hello")
	if code != 1 || !strings.Contains(errOut, `"hello" names 2 jobs`) || !strings.Contains(errOut, cid) {
		t.Fatalf("job status of an ambiguous name: exit %d, stderr:\n%s", code, errOut)
	}
}
