package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/protocol"
)

// runCode runs a command line in this process as main does, and returns
// its standard output, its standard error and its exit code.
func runCode(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	stdout, stderr, err := execute(args...)
	if err != nil {
		stderr += "cuivre: " + err.Error() + "\n"
	}
	return stdout, stderr, exitCode(err)
}

// TestOutputFormats: every command that prints data, in every format, against
// two daemons. Its JSON parses, its YAML holds the same document (the same
// keys, the same values), and its exit code is the same whatever the format,
// for a job run that succeeds, fails or is not placed too.
func TestOutputFormats(t *testing.T) {
	a, _ := twoDaemons(t)
	dir := t.TempDir()
	for name, module := range map[string][]byte{"ok.wasm": exectest.Empty(), "fail.wasm": exectest.Exit(3)} {
		if err := os.WriteFile(filepath.Join(dir, name), module, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := func(name, module, constraint string) string {
		p := filepath.Join(dir, name+".yaml")
		writeFile(t, p, "version: 1\nname: "+name+"\ntask:\n  module: "+module+"\n  resources: {cpu: 250m, memory: 16Mi}\nconstraints:\n  - "+constraint+"\n")
		return p
	}
	ok, fail, unplaced := spec("ok", "ok.wasm", "jurisdiction = fr"), spec("fail", "fail.wasm", "jurisdiction = fr"), spec("unplaced", "ok.wasm", "certification exists")
	out, errOut, code := runCode(t, "job", "run", "-o", "json", "--data-dir", a.dir, ok)
	var ran requester.JobView
	if err := json.Unmarshal([]byte(out), &ran); code != 0 || err != nil {
		t.Fatalf("job run -o json: exit %d (%v)\n%s%s", code, err, out, errOut)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"id", []string{"id"}, 0},
		{"peers", []string{"peers"}, 0},
		{"node status", []string{"node", "status"}, 0},
		{"node list", []string{"node", "list"}, 0},
		{"job list", []string{"job", "list"}, 0},
		{"job status", []string{"job", "status", ran.CID}, 0},
		{"job offers", []string{"job", "offers", ok}, 0},
		{"job run", []string{"job", "run", ok}, 0},
		{"job run, the job fails", []string{"job", "run", fail}, 1},
		{"job run, the job is not placed", []string{"job", "run", "--placement-timeout", "1s", unplaced}, 2},
		{"billing export", []string{"billing", "export"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := slices.Concat(c.args, []string{"--data-dir", a.dir})
			docs := map[string]any{}
			for _, f := range formats {
				out, errOut, code := runCode(t, slices.Concat(args, []string{"-o", f})...)
				if code != c.code {
					t.Fatalf("-o %s: exit %d, want %d\n%s%s", f, code, c.code, out, errOut)
				}
				var doc any
				var err error
				switch f {
				case "json":
					err = json.Unmarshal([]byte(out), &doc)
				case "yaml":
					err = yaml.Unmarshal([]byte(out), &doc)
				}
				if err != nil {
					t.Fatalf("-o %s: %v\n%s", f, err, out)
				}
				docs[f] = doc
			}
			// Each run is another job, and a record ages: the keys are
			// what two runs share. TestWriteYAML compares values.
			if diff := cmp.Diff(keyPaths(docs["json"], ""), keyPaths(docs["yaml"], "")); diff != "" {
				t.Errorf("-o yaml has other keys than -o json (-json +yaml):\n%s", diff)
			}
		})
	}

	// wide shows the whole peer ID the table shortens.
	provider := ran.Slots[0].Provider
	for _, command := range [][]string{{"job", "list"}, {"billing", "export"}} {
		for f, want := range map[string]bool{"table": false, "wide": true} {
			out, _, _ := runCode(t, slices.Concat(command, []string{"-o", f, "--data-dir", a.dir})...)
			if strings.Contains(out, provider) != want || !strings.Contains(out, shortPeer(provider)) {
				t.Errorf("%s -o %s: whole ID %s shown %t, want %t:\n%s", strings.Join(command, " "), f, provider, !want, want, out)
			}
		}
	}
}

// keyPaths are the paths of every key in a parsed document, each once,
// sorted: "slots[].exit_code".
func keyPaths(v any, path string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			out = append(out, path+"."+k)
			out = append(out, keyPaths(x, path+"."+k)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, keyPaths(x, path+"[]")...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestOneGrammar: what every command answers before it asks a node: an
// unknown subcommand or -o is an error, exit 1, and --version is version.
func TestOneGrammar(t *testing.T) {
	for _, args := range [][]string{
		{"lsit"},
		{"job", "lst"},
		{"node", "stauts"},
		{"data", "ad"},
		{"sim", "rn"},
		{"bench", "vaildate"},
		{"conformance", "provder"},
	} {
		_, errOut, code := runCode(t, args...)
		if code != 1 || !strings.Contains(errOut, "unknown command") || !strings.Contains(errOut, "did you mean") {
			t.Errorf("%s: exit %d, want 1 with a suggestion:\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	if _, errOut, code := runCode(t, "job", "zzzz"); code != 1 || !strings.Contains(errOut, "its commands are") {
		t.Errorf("job zzzz: exit %d, want 1 with the commands of job:\n%s", code, errOut)
	}
	if out, _, code := runCode(t, "job"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("job alone: exit %d, want 0 and its help:\n%s", code, out)
	}

	dir := t.TempDir() // no node: the flag is refused before one is asked
	d := "--data-dir=" + dir
	for _, args := range [][]string{
		{"id", d}, {"peers", d}, {"node", "status", d}, {"node", "list", d}, {"job", "list", d},
		{"job", "status", "bafkreinone", d}, {"job", "run", "job.yaml", d}, {"job", "offers", "job.yaml", d},
		{"job", "inspect", "job.yaml"}, {"bench", "--nodes", "2"},
	} {
		_, errOut, code := runCode(t, append(args, "-o", "text")...)
		if code != 1 || !strings.Contains(errOut, "use table, wide, json, yaml") {
			t.Errorf("%s -o text: exit %d, want 1 naming the formats:\n%s", strings.Join(args, " "), code, errOut)
		}
	}

	// job inspect needs no node: its canonical job, in protobuf's JSON names.
	js, _, _ := runCode(t, "job", "inspect", "-o", "json", "../../examples/jobs/hello.yaml")
	ys, _, _ := runCode(t, "job", "inspect", "-o", "yaml", "../../examples/jobs/hello.yaml")
	var jv, yv any
	if err := errors.Join(json.Unmarshal([]byte(js), &jv), yaml.Unmarshal([]byte(ys), &yv)); err != nil || !strings.Contains(js, `"moduleCid"`) {
		t.Errorf("job inspect -o json, yaml: %v\n%s\n%s", err, js, ys)
	} else if diff := cmp.Diff(keyPaths(jv, ""), keyPaths(yv, "")); diff != "" {
		t.Errorf("job inspect: -o yaml has other keys than -o json (-json +yaml):\n%s", diff)
	}

	version, _, _ := runCode(t, "version")
	if out, _, code := runCode(t, "--version"); code != 0 || out != version {
		t.Errorf("--version: exit %d, printed\n%s\nwant what version prints:\n%s", code, out, version)
	}

	// Completion of job IDs fails quietly where no node runs.
	if out, _, code := runCode(t, "__complete", "job", "status", "--data-dir", dir, ""); code != 0 || strings.Contains(out, "bafk") {
		t.Errorf("completion without a node: exit %d:\n%s", code, out)
	}
	if out, _, code := runCode(t, "__complete", "job", "list", "-o", ""); code != 0 || !strings.Contains(out, "wide\njson\nyaml") {
		t.Errorf("completion of -o: exit %d:\n%s", code, out)
	}
	if out, _, code := runCode(t, "completion", "bash"); code != 0 || !strings.Contains(out, "__start_cuivre()") {
		t.Errorf("completion bash: exit %d:\n%.200s", code, out)
	}
}

// TestWriteYAML: -o yaml has the keys of -o json, and strings that YAML
// would read as something else stay strings.
func TestWriteYAML(t *testing.T) {
	v := requester.JobView{CID: "bafkrei", State: "true", PlacedMs: 12.5, Billed: "0.05 EUR",
		Slots: []requester.SlotView{{Provider: "12D3KooWabc", ExitCode: 3, Price: "0.1 EUR"}}}
	var b bytes.Buffer
	if err := writeYAML(&b, v); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"placed_ms: 12.5\n", "exit_code: 3\n", "state: \"true\"\n", "billed: 0.05 EUR\n", "submitted: \"0001-01-01T00:00:00Z\"\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("yaml lacks %q:\n%s", want, b.String())
		}
	}
	var back requester.JobView
	if err := json.Unmarshal(mustJSON(t, b.Bytes()), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, back); diff != "" {
		t.Errorf("yaml read back (-want +got):\n%s", diff)
	}
}

// mustJSON turns a YAML document into JSON.
func mustJSON(t *testing.T, y []byte) []byte {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHumanUnits(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{humanBytes(19361769062), "18.0 GiB"},
		{vcpu(1500), "1.5 vCPU"},
		{vcpu(4000), "4 vCPU"},
		{vcpu(250), "0.25 vCPU"},
		{price("0.0399996 EUR"), "0.0400 EUR"},
		{price("12.345 EUR"), "12.35 EUR"},
		{price("0.000011 CHF"), "0.0000110 CHF"},
		{price("0 EUR"), "0.00 EUR"},
		{price(""), "-"},
		{money(40_000_000, "EUR"), "0.0400 EUR"},
		{shortPeer("12D3KooWAxPaA4qM1LRjJLT3DqKFtJxP1Fo4XAE56GHnz16goSsQ"), "z16goSsQ"},
		{shortPeer("not a peer"), "not a peer"},
		{shortPeer(""), "-"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestShortPeerID: protocol.ShortPeerID, which the scheduler and the node
// write in messages, is the end of the text libp2p gives a peer ID.
func TestShortPeerID(t *testing.T) {
	for range 100 {
		_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		s := id.String()
		if got, want := protocol.ShortPeerID(string(id)), s[len(s)-8:]; got != want {
			t.Fatalf("%s: short %q, want %q", s, got, want)
		}
	}
}
