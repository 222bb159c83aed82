package jobspec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/specyaml"
	"github.com/cuivre/cuivre/protocol/wire"
)

var cmpProto = protocmp.Transform()

// testResolve is the module resolver of the tests: the CID of the path itself.
func testResolve(path string) (cid.Cid, error) { return wire.SumCID([]byte(path)), nil }

// lines joins document lines, so that a test can count them: the n-th
// argument is line n.
func lines(l ...string) string { return strings.Join(l, "\n") + "\n" }

// head is the smallest valid spec; what a test appends starts at line 5.
var head = []string{"version: 1", "name: hello", "task:", "  module: ./m.wasm"}

func withHead(l ...string) string { return lines(append(head[:len(head):len(head)], l...)...) }

// specDefaults is what the defaults make of head.
func specDefaults() *JobSpec {
	return &JobSpec{
		Version: 1, Name: "hello", Type: "batch", Count: 1, Replicas: 1, Entropy: "derived",
		Task: TaskSpec{
			Engine: "wasm", Module: "./m.wasm",
			Resources: ResourcesSpec{CPUMillis: 1000, MemoryBytes: 256 << 20, ScratchBytes: 64 << 20, Timeout: 5 * time.Minute},
		},
	}
}

// fullYAML uses every field of a job spec.
const fullYAML = `# every field
version: 1
name: sovereign
type: service
count: 3
replicas: 2
task:
  engine: wasm
  module: ../wasm/hello.wasm
  args: [--name, world, 42]
  env:
    PORT: 8080
    GREETING: bonjour
    DEBUG: true
  stdin: "line\n"
  resources:
    cpu: 1.5
    memory: 1Gi
    scratch: 1G
    timeout: 1h30m
constraints:
  - jurisdiction == fr
  - region in (fr-par, be-bru, fr-par)
  - key: certification
    op: exists
  - {key: tier, op: notin, values: [bronze]}
  - tier != silver
affinities:
  - {key: region, op: "=", values: [fr-par], weight: 50}
  - key: operator
    op: in
    values: [b, a]
    weight: -10
spread:
  - {attribute: operator, weight: 100}
max_price: "0.05 EUR"
heartbeat: 2s
`

// fullJSON is fullYAML in JSON, keys in another order.
const fullJSON = `{
	"name": "sovereign", "version": 1, "type": "service", "count": 3, "replicas": 2,
	"task": {
		"engine": "wasm", "module": "../wasm/hello.wasm", "args": ["--name", "world", "42"],
		"env": {"DEBUG": "true", "GREETING": "bonjour", "PORT": "8080"},
		"stdin": "line\n",
		"resources": {"cpu": "1500m", "memory": "1073741824", "scratch": "1000M", "timeout": "90m"}
	},
	"constraints": [
		"jurisdiction = fr",
		{"key": "region", "op": "in", "values": ["be-bru", "fr-par"]},
		"certification exists",
		"tier notin (bronze)",
		{"key": "tier", "op": "!=", "values": ["silver"]}
	],
	"affinities": [
		{"key": "region", "op": "=", "values": ["fr-par"], "weight": 50},
		{"weight": -10, "key": "operator", "op": "in", "values": ["a", "b"]}
	],
	"spread": [{"attribute": "operator", "weight": 100}],
	"max_price": "0.050 EUR",
	"heartbeat": "2000ms"
}`

func TestParseJobSpec(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		edit func(s *JobSpec) // applied to specDefaults
	}{
		{"defaults", withHead(), func(*JobSpec) {}},
		{"defaults in JSON", `{"version": 1, "name": "hello", "task": {"module": "./m.wasm"}}`, func(*JobSpec) {}},
		{"null means left out", withHead("  resources: null", "type:", "count: ~", "constraints: []"), func(*JobSpec) {}},
		{"module as a CID", lines("version: 1", "name: hello", "task:", "  module: "+wire.SumCID([]byte("m")).String()), func(s *JobSpec) {
			s.Task.Module = wire.SumCID([]byte("m")).String()
		}},
		{"quantities", withHead("  resources:", "    cpu: 250m", "    memory: 1.5Gi", "    scratch: 0", "    timeout: 1500ms"), func(s *JobSpec) {
			s.Task.Resources = ResourcesSpec{CPUMillis: 250, MemoryBytes: 3 << 29, ScratchBytes: 0, Timeout: 1500 * time.Millisecond}
		}},
		{"integer cpu", withHead("  resources: {cpu: 2}"), func(s *JobSpec) { s.Task.Resources.CPUMillis = 2000 }},
		{"empty stdin and env value", withHead(`  stdin: ""`, `  env: {A: ""}`), func(s *JobSpec) { s.Task.Env = map[string]string{"A": ""} }},
		{"full", fullYAML, func(s *JobSpec) {
			*s = JobSpec{
				Version: 1, Name: "sovereign", Type: "service", Count: 3, Replicas: 2, Entropy: "derived",
				Task: TaskSpec{
					Engine: "wasm", Module: "../wasm/hello.wasm", Args: []string{"--name", "world", "42"},
					Env:       map[string]string{"PORT": "8080", "GREETING": "bonjour", "DEBUG": "true"},
					Stdin:     "line\n",
					Resources: ResourcesSpec{CPUMillis: 1500, MemoryBytes: 1 << 30, ScratchBytes: 1e9, Timeout: 90 * time.Minute},
				},
				Constraints: []ConstraintSpec{
					{Key: "jurisdiction", Op: opEq, Values: []string{"fr"}},
					{Key: "region", Op: opIn, Values: []string{"fr-par", "be-bru", "fr-par"}},
					{Key: "certification", Op: opExists},
					{Key: "tier", Op: opNotIn, Values: []string{"bronze"}},
					{Key: "tier", Op: opNotEq, Values: []string{"silver"}},
				},
				Affinities: []AffinitySpec{
					{Key: "region", Op: opEq, Values: []string{"fr-par"}, Weight: 50},
					{Key: "operator", Op: opIn, Values: []string{"b", "a"}, Weight: -10},
				},
				Spread:    []SpreadSpec{{Attribute: "operator", Weight: 100}},
				MaxPrice:  &pb.Amount{Currency: "EUR", Nanos: 50_000_000},
				Heartbeat: 2 * time.Second,
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJobSpec([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			want := specDefaults()
			tt.edit(want)
			if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(JobSpec{}), cmpopts.EquateEmpty(), cmpProto); diff != "" {
				t.Errorf("ParseJobSpec (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJobSpecJob checks the canonical job built from a spec: env sorted,
// values sorted and deduplicated, constraints in document order.
func TestJobSpecJob(t *testing.T) {
	s, err := ParseJobSpec([]byte(fullYAML))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Job(testResolve)
	if err != nil {
		t.Fatal(err)
	}
	want := &pb.Job{
		Version: 1, Name: "sovereign", Type: pb.JobType_JOB_TYPE_SERVICE, Count: 3, Replicas: 2,
		Task: &pb.Task{
			Engine: "wasm", ModuleCid: wire.SumCID([]byte("../wasm/hello.wasm")).Bytes(),
			Args:      []string{"--name", "world", "42"},
			Env:       []*pb.EnvVar{{Name: "DEBUG", Value: "true"}, {Name: "GREETING", Value: "bonjour"}, {Name: "PORT", Value: "8080"}},
			Stdin:     []byte("line\n"),
			Resources: &pb.Resources{CpuMillis: 1500, MemoryBytes: 1 << 30, ScratchBytes: 1e9},
			TimeoutMs: 90 * 60_000,
		},
		Constraints: []*pb.Constraint{
			constraint("jurisdiction", opEq, "fr"),
			constraint("region", opIn, "be-bru", "fr-par"),
			constraint("certification", opExists),
			constraint("tier", opNotIn, "bronze"),
			constraint("tier", opNotEq, "silver"),
		},
		Affinities: []*pb.Affinity{
			{Key: "region", Op: opEq, Values: []string{"fr-par"}, Weight: 50},
			{Key: "operator", Op: opIn, Values: []string{"a", "b"}, Weight: -10},
		},
		Spread:      []*pb.Spread{{Attribute: "operator", Weight: 100}},
		MaxPrice:    &pb.Amount{Currency: "EUR", Nanos: 50_000_000},
		HeartbeatMs: 2000,
	}
	if diff := cmp.Diff(want, got, cmpProto); diff != "" {
		t.Errorf("Job (-want +got):\n%s", diff)
	}
}

// TestJobSpecEntropy: entropy is derived unless the spec asks host, and the
// default leaves the job, its canonical bytes and its CID, as it was before
// the field existed; a name set in code that is not an entropy is refused.
func TestJobSpecEntropy(t *testing.T) {
	for _, tc := range []struct {
		line string
		want pb.Entropy
	}{
		{"", pb.Entropy_ENTROPY_DERIVED},
		{"entropy: derived", pb.Entropy_ENTROPY_DERIVED},
		{"entropy: host", pb.Entropy_ENTROPY_HOST},
	} {
		s, err := ParseJobSpecFile("job.yaml", []byte(withHead(tc.line)))
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		j, err := s.Job(testResolve)
		if err != nil || j.Entropy != tc.want {
			t.Fatalf("%q: entropy %v, %v; want %v", tc.line, j.GetEntropy(), err, tc.want)
		}
		if tc.want == pb.Entropy_ENTROPY_DERIVED {
			b, err := protocol.Canonical(j)
			if err != nil || bytes.Contains(b, []byte{14 << 3}) {
				t.Fatalf("%q: the default is written in the canonical form: %x, %v", tc.line, b, err)
			}
		}
	}
	s, err := ParseJobSpecFile("job.yaml", []byte(withHead()))
	if err != nil {
		t.Fatal(err)
	}
	s.Entropy = "random"
	if _, err := s.Job(testResolve); err == nil || !strings.Contains(err.Error(), "entropy: -1 is not an entropy source") {
		t.Fatalf("an unknown entropy set in code: %v", err)
	}
}

// TestJobSpecRoundTrip checks that the job CID depends on the job, not on how
// the document is written: YAML or JSON, key order, env order, value order.
func TestJobSpecRoundTrip(t *testing.T) {
	cidOf := func(t *testing.T, doc string) cid.Cid {
		t.Helper()
		s, err := ParseJobSpec([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		j, err := s.Job(testResolve)
		if err != nil {
			t.Fatal(err)
		}
		a, err := protocol.Canonical(j)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := protocol.Canonical(j)
		if !bytes.Equal(a, b) {
			t.Fatal("protocol.Canonical is not stable")
		}
		again, err := s.Job(testResolve)
		if err != nil {
			t.Fatal(err)
		}
		c1, err := wire.JobCID(j)
		if err != nil {
			t.Fatal(err)
		}
		if c2, _ := wire.JobCID(again); !c1.Equals(c2) || !c1.Equals(wire.SumCID(a)) {
			t.Fatalf("JobCID not stable: %s, %s", c1, c2)
		}
		return c1
	}
	tests := []struct {
		name string
		a, b string
	}{
		{"YAML and JSON", fullYAML, fullJSON},
		{"defaults written out", withHead(),
			withHead("  engine: wasm", "  resources: {cpu: 1, memory: 256Mi, scratch: 64Mi, timeout: 5m}", "type: batch", "count: 1", "replicas: 1")},
		{"env order", withHead("  env: {B: 2, A: 1}"), withHead("  env: {A: 1, B: 2}")},
		{"value order and repeats", withHead(`constraints: ["region in (b, a, b)"]`), withHead("constraints: [{key: region, op: in, values: [a, b]}]")},
		{"== is =", withHead("constraints: [region == a]"), withHead(`constraints: [{key: region, op: "=", values: [a]}]`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, b := cidOf(t, tt.a), cidOf(t, tt.b); !a.Equals(b) {
				t.Errorf("CIDs differ: %s and %s", a, b)
			}
		})
	}
	t.Run("constraint order matters", func(t *testing.T) {
		a := cidOf(t, withHead("constraints: [a exists, b exists]"))
		if b := cidOf(t, withHead("constraints: [b exists, a exists]")); a.Equals(b) {
			t.Error("constraints in another order give the same CID")
		}
	})
}

// specErrorTests are documents with mistakes and the exact errors they give,
// parsed as job.yaml. They also seed FuzzParseJobSpec.
var specErrorTests = []struct {
	name string
	doc  string
	want []string
}{
	{"bad quantity", lines(
		"# a job",
		"version: 1",
		"name: hello",
		"type: batch",
		"count: 1",
		"task:",
		"  module: ./hello.wasm",
		"  args: [--name, world]",
		"  env: {GREETING: hello}",
		"  resources:",
		"    cpu: 500m",
		"    memory: 12Q",
	), []string{`job.yaml:12:5: task.resources.memory: bad quantity "12Q": use a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T`}},

	// Structure.
	{"unknown field", withHead("kind: Job"), []string{
		"job.yaml:5:1: kind: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy"}},
	{"misspelt field", withHead("  resources:", "    memroy: 1Gi"), []string{
		"job.yaml:6:5: task.resources.memroy: unknown field: did you mean memory?"}},
	{"unknown field in a constraint", withHead("constraints:", "  - {key: region, op: exists, value: fr}"), []string{
		"job.yaml:6:31: constraints[0].value: unknown field: did you mean values?"}},
	{"duplicate field", withHead("name: again"), []string{
		"job.yaml:5:1: name: duplicate field, first set at line 2: keep one"}},
	{"duplicate variable", withHead("  env:", "    A: 1", "    A: 2"), []string{
		"job.yaml:7:5: task.env.A: duplicate variable, first set at line 6: keep one"}},
	{"missing fields", lines("count: 1"), []string{
		`job.yaml:1:1: version: missing: add "version: 1"`,
		`job.yaml:1:1: name: missing: add a name, such as "name: hello"`,
		"job.yaml:1:1: task: missing: add a task with at least a module"}},
	{"null task", lines("version: 1", "name: hello", "task:"), []string{
		"job.yaml:1:1: task: missing: add a task with at least a module"}},
	{"missing module", lines("version: 1", "name: hello", "task:", "  args: [x]"), []string{
		"job.yaml:3:1: task.module: missing: give the module's path, relative to the spec, or its CID"}},
	{"missing key and op", withHead("constraints:", "  - {values: [fr]}"), []string{
		"job.yaml:6:5: constraints[0].key: missing: name the label, such as region",
		"job.yaml:6:5: constraints[0].op: missing: use in, notin, =, != or exists"}},
	{"missing weights", withHead("affinities:", `  - {key: region, op: "=", values: [fr]}`, "spread:", "  - {attribute: operator}"), []string{
		"job.yaml:6:5: affinities[0].weight: missing: give a weight from -100 to 100, not 0 (negative repels)",
		"job.yaml:8:5: spread[0].weight: missing: give a weight from 1 to 100"}},

	// Types.
	{"number for a string", lines("version: 1", "name: 5", "task:", "  module: ./m.wasm"), []string{
		"job.yaml:2:1: name: want a string, got the integer 5"}},
	{"string for a number", withHead(`count: "2"`), []string{
		`job.yaml:5:1: count: want a whole number, got the string "2"`}},
	{"string for a number in JSON", `{"version": "1", "name": "hello", "task": {"module": "./m.wasm"}}`, []string{
		`job.yaml:1:2: version: want a whole number, got the string "1"`}},
	{"list for a mapping", lines("version: 1", "name: hello", "task: [./m.wasm]"), []string{
		"job.yaml:3:1: task: want a mapping of fields (name: value), got a list"}},
	{"string for a list", withHead("  args: --name"), []string{
		`job.yaml:5:3: task.args: want a list, got the string "--name"`}},
	{"list for env", withHead("  env: [A]"), []string{
		"job.yaml:5:3: task.env: want a mapping of variables (NAME: value), got a list"}},
	{"env without a value", withHead("  env: {A: ~}"), []string{
		`job.yaml:5:9: task.env.A: no value: write "" for an empty one`}},
	{"number for a price", withHead("max_price: 0.05"), []string{
		"job.yaml:5:1: max_price: want a string, got the number 0.05"}},
	{"mapping in a list of args", withHead("  args: [{a: b}]"), []string{
		"job.yaml:5:10: task.args[0]: want a value, got a mapping"}},
	{"a list is not a spec", "[1, 2]", []string{
		"job.yaml:1:1: want a mapping of fields (name: value), got a list"}},

	// Values.
	{"bad type", withHead("type: cron"), []string{`job.yaml:5:1: type: bad type "cron": use batch or service`}},
	{"count 0", withHead("count: 0"), []string{"job.yaml:5:1: count: 0 is out of range: use 1 to 1000"}},
	{"too many replicas", withHead("replicas: 17"), []string{"job.yaml:5:1: replicas: 17 is out of range: use 1 to 16"}},
	{"bad entropy", withHead("entropy: random"), []string{`job.yaml:5:1: entropy: bad entropy "random": use derived or host`}},
	{"host entropy with replicas", withHead("entropy: host", "replicas: 2"), []string{
		"job.yaml:5:1: entropy: host entropy with 2 replicas: replicas compare their outputs, which host entropy makes differ; use 1 replica, or derived entropy"}},
	{"bad cpu", withHead("  resources: {cpu: 2 cores}"), []string{
		`job.yaml:5:15: task.resources.cpu: bad cpu "2 cores": use vCPUs ("0.5", "2") or millicores ("500m")`}},
	{"cpu finer than a millicore", withHead("  resources: {cpu: 0.0005}"), []string{
		`job.yaml:5:15: task.resources.cpu: bad cpu "0.0005": finer than a millicore: use at most 3 decimals, or whole millicores`}},
	{"memory below the minimum", withHead("  resources:", "    memory: 512Ki"), []string{
		"job.yaml:6:5: task.resources.memory: 512Ki is out of range: use 1Mi to 1Ti"}},
	{"memory not in bytes", withHead("  resources:", "    memory: 0.1Ki"), []string{
		`job.yaml:6:5: task.resources.memory: bad quantity "0.1Ki": not a whole number of bytes`}},
	{"scratch too large", withHead("  resources:", "    scratch: 65Gi"), []string{
		"job.yaml:6:5: task.resources.scratch: 65Gi is too much: use at most 64Gi"}},
	{"duration without unit", withHead("  resources:", "    timeout: 30"), []string{
		`job.yaml:6:5: task.resources.timeout: bad duration "30": use a Go duration such as 30s, 5m or 1h30m`}},
	{"negative duration", withHead("  resources:", "    timeout: -1s"), []string{
		`job.yaml:6:5: task.resources.timeout: bad duration "-1s": use a positive duration`}},
	{"duration finer than a millisecond", withHead("  resources:", "    timeout: 1500us"), []string{
		`job.yaml:6:5: task.resources.timeout: bad duration "1500us": finer than a millisecond`}},
	{"heartbeat too fast", withHead("heartbeat: 50ms"), []string{
		"job.yaml:5:1: heartbeat: 50ms is out of range: use 100ms to 1m0s"}},
	{"heartbeat without unit", withHead("heartbeat: 500"), []string{
		`job.yaml:5:1: heartbeat: bad duration "500": use a Go duration such as 30s, 5m or 1h30m`}},
	{"timeout over 30 days", withHead("  resources:", "    timeout: 721h"), []string{
		"job.yaml:6:5: task.resources.timeout: 721h0m0s is out of range: use 1ms to 720h (30 days)"}},
	{"bad name", lines("version: 1", "name: Hello_World", "task:", "  module: ./m.wasm"), []string{
		`job.yaml:2:1: name: "Hello_World" must start with a lower-case letter`}},
	{"unsupported version", lines("version: 2", "name: hello", "task:", "  module: ./m.wasm"), []string{
		"job.yaml:1:1: version: 2 is not supported: use version 1"}},
	{"bad engine", withHead("  engine: docker"), []string{`job.yaml:5:3: task.engine: "docker" is not supported: use wasm`}},
	{"module CIDv0", lines("version: 1", "name: hello", "task:", "  module: QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"), []string{
		`job.yaml:4:3: task.module: cid QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG: want CIDv1, raw codec, sha2-256 (or, for a file, write "./QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")`}},
	{"empty module", lines("version: 1", "name: hello", "task:", `  module: ""`), []string{
		"job.yaml:4:3: task.module: empty: give the module's path, relative to the spec, or its CID"}},
	{"bad variable name", withHead("  env: {9A: x}"), []string{
		`job.yaml:5:9: task.env.9A: "9A" is not a variable name: use letters, digits and '_', not starting with a digit`}},
	{"NUL in an argument", withHead(`  args: ["a\0b"]`), []string{
		"job.yaml:5:10: task.args[0]: contains a NUL byte, which a WASI guest cannot receive"}},
	{"stdin too large", withHead(`  stdin: "` + strings.Repeat("x", protocol.MaxStdin+1) + `"`), []string{
		"job.yaml:5:3: task.stdin: 262145 bytes: use at most 262144 bytes (256 KiB)"}},

	// Constraints, affinities, spread.
	{"bad operator", withHead("constraints:", "  - region ~ fr"), []string{
		`job.yaml:6:5: constraints[0]: bad constraint "region ~ fr": bad operator "~": use in, notin, =, != or exists`}},
	{"bad operator in a mapping", withHead("constraints:", "  - {key: region, op: like, values: [fr]}"), []string{
		`job.yaml:6:19: constraints[0].op: bad operator "like": use in, notin, =, != or exists`}},
	{"in without parentheses", withHead("constraints:", "  - region in fr"), []string{
		`job.yaml:6:5: constraints[0]: bad constraint "region in fr": in takes a list in parentheses, such as "region in (fr, be)"`}},
	{"unquoted in a flow list", withHead("constraints: [region in (fr, be)]"), []string{
		`job.yaml:5:15: constraints[0]: bad constraint "region in (fr": unbalanced parentheses: inside [ ], quote each constraint, such as ["region in (fr, be)"]`,
		`job.yaml:5:30: constraints[1]: bad constraint "be)": unbalanced parentheses: inside [ ], quote each constraint, such as ["region in (fr, be)"]`}},
	{"exists with a value", withHead("constraints:", "  - certification exists secnumcloud"), []string{
		`job.yaml:6:5: constraints[0]: bad constraint "certification exists secnumcloud": exists takes no value`}},
	{"= without a value", withHead("constraints:", "  - jurisdiction ="), []string{
		`job.yaml:6:5: constraints[0]: bad constraint "jurisdiction =": = takes one value, such as "jurisdiction = fr"`}},
	{"no key", withHead("constraints:", "  - = fr"), []string{
		`job.yaml:6:5: constraints[0]: bad constraint "= fr": write "key op value", such as "region in (fr, be)", "jurisdiction = fr" or "certification exists"`}},
	{"number for a constraint", withHead("constraints:", "  - 7"), []string{
		`job.yaml:6:5: constraints[0]: want "key op value" or a mapping {key, op, values}, got the integer 7`}},
	{"in without values", withHead("constraints:", "  - {key: region, op: in, values: []}"), []string{
		"job.yaml:6:27: constraints[0].values: in and notin need at least one value"}},
	{"upper-case value", withHead("constraints:", "  - jurisdiction = FR"), []string{
		`job.yaml:6:5: constraints[0].values: "FR": use lower case`}},
	{"upper-case key", withHead("constraints:", "  - Region exists"), []string{
		`job.yaml:6:5: constraints[0].key: "Region": use lower case`}},
	{"impossible constraint", withHead(
		"constraints:",
		"  - region in (fr-par, fr-lyo)",
		"  - jurisdiction = fr",
		"  - region notin (fr-par)",
		"  - region != fr-lyo",
	), []string{`job.yaml:9:5: constraints[3]: impossible constraint: no value of "region" satisfies it together with constraints[0] (line 6), constraints[2] (line 8): remove or relax one of them`}},
	{"impossible constraint in JSON", `{"version": 1, "name": "hello", "task": {"module": "./m.wasm"},
 "constraints": [
   "region = fr",
   "region = be"]}`, []string{
		`job.yaml:4:4: constraints[1]: impossible constraint: no value of "region" satisfies it together with constraints[0] (line 3): remove or relax one of them`}},
	{"string for an affinity", withHead("affinities:", "  - region = fr"), []string{
		`job.yaml:6:5: affinities[0]: want a mapping of fields (name: value), got the string "region = fr"`}},
	{"affinity weight 0", withHead("affinities:", "  - {key: region, op: exists, weight: 0}"), []string{
		"job.yaml:6:31: affinities[0].weight: 0 is out of range: use -100 to 100, not 0 (negative repels)"}},
	{"affinity weight too high", withHead("affinities:", "  - {key: region, op: exists, weight: 101}"), []string{
		"job.yaml:6:31: affinities[0].weight: 101 is out of range: use -100 to 100"}},
	{"spread twice", withHead("spread:", "  - {attribute: operator, weight: 100}", "  - {attribute: operator, weight: 50}"), []string{
		`job.yaml:7:6: spread[1].attribute: "operator" is already spread over by spread[0] (line 6): give each attribute once`}},

	{"no guess from a short name", withHead("constraints:", "  - {key: region, op: exists, a: 1}"), []string{
		"job.yaml:6:31: constraints[0].a: unknown field: the fields here are key, op, values"}},
	{"long values are cut", withHead("  resources:", "    memory: "+strings.Repeat("1", 70)+"Q"), []string{
		`job.yaml:6:5: task.resources.memory: bad quantity "` + strings.Repeat("1", 64) + `"...: use a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T`}},

	// Prices.
	{"price without currency", withHead(`max_price: "0.05"`), []string{
		`job.yaml:5:1: max_price: bad price "0.05": write an amount and a currency code, such as "0.05 EUR"`}},
	{"negative price", withHead(`max_price: "-1 EUR"`), []string{
		`job.yaml:5:1: max_price: bad price "-1 EUR": the amount must not be negative`}},
	{"price too precise", withHead(`max_price: "0.0000000001 EUR"`), []string{
		`job.yaml:5:1: max_price: bad price "0.0000000001 EUR": use at most 9 decimals`}},
	{"lower-case currency", withHead(`max_price: 1 eur`), []string{
		`job.yaml:5:1: max_price: bad price "1 eur": currency "eur" is not a 3-letter upper-case ISO 4217 code, such as EUR`}},

	// Documents.
	{"empty", "", []string{`job.yaml: empty job spec: start with "version: 1" and a name`}},
	{"only a comment", "# nothing\n", []string{`job.yaml: empty job spec: start with "version: 1" and a name`}},
	{"syntax error", lines("version: 1", "name: hello", "c 2", "d: 3"), []string{
		"job.yaml:3: could not find expected ':' (the spec must be YAML or JSON)"}},
	{"two documents", withHead("---", "name: other"), []string{
		"job.yaml:5:1: a second YAML document: a job spec is one document, remove the '---' and what follows"}},
	{"alias", withHead("  args: &a [x]", "  env: *a"), []string{
		"job.yaml:6:8: alias *a: aliases are not supported, write the value out"}},
	{"complex key", lines("version: 1", "? [a]", ": 1"), []string{
		`job.yaml:1:1: name: missing: add a name, such as "name: hello"`,
		"job.yaml:1:1: task: missing: add a task with at least a module",
		"job.yaml:2:3: a field name must be a plain string, got a list"}},
	{"too many errors", withHead("a: 1", "b: 1", "c: 1", "d: 1", "e: 1", "f: 1", "g: 1", "h: 1", "i: 1", "j: 1", "k: 1", "l: 1"), []string{
		"job.yaml:5:1: a: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:6:1: b: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:7:1: c: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:8:1: d: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:9:1: e: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:10:1: f: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:11:1: g: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:12:1: h: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:13:1: i: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml:14:1: j: unknown field: the fields here are version, name, type, count, replicas, task, constraints, affinities, spread, max_price, placement_timeout, heartbeat, entropy",
		"job.yaml: 2 more errors not shown: fix these first"}},
	// The form's mistakes and the wire rules' show together, as a
	// scenario's do; a field in error draws no second error from the rules.
	{"several mistakes, in document order", lines(
		"version: 1",
		"name: hello",
		"count: 0",
		"task:",
		"  modul: ./m.wasm",
		"  resources: {cpu: 0, memory: 1Ki}",
	), []string{
		"job.yaml:3:1: count: 0 is out of range: use 1 to 1000",
		"job.yaml:4:1: task.module: missing: give the module's path, relative to the spec, or its CID",
		"job.yaml:5:3: task.modul: unknown field: did you mean module?",
		"job.yaml:6:15: task.resources.cpu: 0: ask for at least 1 millicore",
		"job.yaml:6:23: task.resources.memory: 1Ki is out of range: use 1Mi to 1Ti"}},
	{"several rules, in document order", lines(
		"version: 1",
		"name: Hello",
		"task:",
		"  module: ./m.wasm",
		"  resources: {cpu: 0, memory: 1Ki}",
	), []string{
		`job.yaml:2:1: name: "Hello" must start with a lower-case letter`,
		"job.yaml:5:15: task.resources.cpu: 0: ask for at least 1 millicore",
		"job.yaml:5:23: task.resources.memory: 1Ki is out of range: use 1Mi to 1Ti"}},
}

func TestParseJobSpecErrors(t *testing.T) {
	for _, tt := range specErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseJobSpecFile("job.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("ParseJobSpec = %+v, want errors", s)
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			for _, e := range flatten(err) {
				if se, ok := e.(*specyaml.SpecError); !ok || se.File != "job.yaml" {
					t.Errorf("%T %v is not a *specyaml.SpecError of job.yaml", e, e)
				}
			}
		})
	}
}

// flatten lists the errors joined in err.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestParseJobSpecErrorKinds checks what a specyaml.SpecError unwraps to: the
// protocol.FieldError of a wire rule, with its protocol code.
func TestParseJobSpecErrorKinds(t *testing.T) {
	_, err := ParseJobSpec([]byte(lines("version: 2", "name: hello", "task:", "  module: ./m.wasm")))
	if !errors.Is(err, protocol.ErrUnsupported) {
		t.Errorf("version 2: %v is not protocol.ErrUnsupported", err)
	}
	_, err = ParseJobSpec([]byte(withHead("count: 0")))
	var se *specyaml.SpecError
	if !errors.As(err, &se) || se.Line != 5 || se.Column != 1 || se.Path != "count" || se.Err != nil {
		t.Errorf("count 0: %#v", err)
	}
	_, err = ParseJobSpec([]byte(withHead("constraints: [a = b, a = c]")))
	var fe *protocol.FieldError
	if !errors.As(err, &fe) || fe.Path != "constraints[1]" || !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("impossible constraint: %#v", err)
	}
	if got, want := err.Error(), `line 5, column 22: constraints[1]: impossible constraint: no value of "a" satisfies it together with constraints[0] (line 5): remove or relax one of them`; got != want {
		t.Errorf("without a file name:\n got %s\nwant %s", got, want)
	}
}

// TestJobSpecJobErrors checks the errors of Job itself: the module resolver,
// and wire rules broken by a spec changed after parsing, located in the
// document all the same.
func TestJobSpecJobErrors(t *testing.T) {
	parse := func(t *testing.T, doc string) *JobSpec {
		t.Helper()
		s, err := ParseJobSpecFile("job.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	errNoModule := errors.New("no such module")
	dagPB := cid.NewCidV1(cid.DagProtobuf, mustMultihash(t, "m"))
	tests := []struct {
		name       string
		doc        string
		edit       func(s *JobSpec)
		resolve    func(string) (cid.Cid, error) // testResolve if nil
		noResolver bool
		want       string
	}{
		{name: "resolver fails", doc: withHead(), resolve: func(string) (cid.Cid, error) { return cid.Undef, errNoModule },
			want: `job.yaml:4:3: task.module: resolve "./m.wasm": no such module`},
		{name: "no resolver for a path", doc: withHead(), noResolver: true,
			want: `job.yaml:4:3: task.module: "./m.wasm" is a path and there is no resolver: give the module's CID`},
		{name: "resolver gives a dag-pb CID", doc: withHead(), resolve: func(string) (cid.Cid, error) { return dagPB, nil },
			want: "job.yaml:4:3: task.module: not a CIDv1 raw sha2-256 (want CIDv1, raw codec, sha2-256)"},
		{name: "memory changed", doc: withHead("  resources:", "    memory: 1Gi"), edit: func(s *JobSpec) { s.Task.Resources.MemoryBytes = 5 },
			want: "job.yaml:6:5: task.resources.memory: 5 is out of range: use 1Mi to 1Ti"},
		{name: "env changed", doc: withHead("  env:", "    B: 1", "    A: 2"), edit: func(s *JobSpec) { s.Task.Env["A"] = "\x00" },
			want: "job.yaml:7:5: task.env.A: contains a NUL byte, which a WASI guest cannot receive"},
		{name: "env added", doc: withHead("  env:", "    B: 1"), edit: func(s *JobSpec) { s.Task.Env["1"] = "x" },
			want: `job.yaml:5:3: task.env.1: "1" is not a variable name: use letters, digits and '_', not starting with a digit`},
		{name: "constraint changed", doc: withHead("constraints:", "  - a = x", "  - {key: a, op: in, values: [x, y]}"),
			edit: func(s *JobSpec) { s.Constraints[1].Values = []string{"z"} },
			want: `job.yaml:7:5: constraints[1]: impossible constraint: no value of "a" satisfies it together with constraints[0] (line 6): remove or relax one of them`},
		{name: "built in code", edit: func(s *JobSpec) { *s = JobSpec{Task: TaskSpec{Module: wire.SumCID(nil).String()}} },
			want: "version: 0 is not supported: use version 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &JobSpec{}
			if tt.doc != "" {
				s = parse(t, tt.doc)
			}
			if tt.edit != nil {
				tt.edit(s)
			}
			resolve := tt.resolve
			if resolve == nil && !tt.noResolver {
				resolve = testResolve
			}
			j, err := s.Job(resolve)
			if err == nil {
				t.Fatalf("Job = %v, want an error", j)
			}
			if err.Error() != tt.want {
				t.Errorf("Job:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
	if _, err := parse(t, withHead()).Job(func(string) (cid.Cid, error) { return cid.Undef, errNoModule }); !errors.Is(err, errNoModule) {
		t.Errorf("the resolver's error is not wrapped: %v", err)
	}
	module := wire.SumCID([]byte("m"))
	s := parse(t, lines("version: 1", "name: hello", "task:", "  module: "+module.String()))
	j, err := s.Job(nil)
	if err != nil || !bytes.Equal(j.GetTask().GetModuleCid(), module.Bytes()) {
		t.Errorf("module CID without a resolver: %v, %v", j, err)
	}
}

// exampleSpecs returns the job specs under examples/jobs.
func exampleSpecs(t testing.TB) map[string][]byte {
	paths, err := filepath.Glob("../../examples/jobs/*")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, p := range paths {
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".json" {
			continue // data the specs name, such as corpus/
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = b
	}
	return out
}

// TestJobSpecExamples parses and builds every example job spec, and checks
// that hello.yaml and hello.json are the same job.
func TestJobSpecExamples(t *testing.T) {
	examples := exampleSpecs(t)
	if len(examples) < 3 {
		t.Fatalf("found %d examples under examples/jobs, want at least 3", len(examples))
	}
	cids := make(map[string]cid.Cid)
	for path, data := range examples {
		t.Run(filepath.Base(path), func(t *testing.T) {
			s, err := ParseJobSpecFile(path, data)
			if err != nil {
				t.Fatal(err)
			}
			err = s.ResolveInputs(func(src string, c cid.Cid) (cid.Cid, uint64, error) {
				return cid.NewCidV1(cid.DagProtobuf, wire.SumCID([]byte(src)).Hash()), 1, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			j, err := s.Job(testResolve)
			if err != nil {
				t.Fatal(err)
			}
			c, err := wire.JobCID(j)
			if err != nil {
				t.Fatal(err)
			}
			cids[filepath.Base(path)] = c
		})
	}
	if a, b := cids["hello.yaml"], cids["hello.json"]; !a.Defined() || !a.Equals(b) {
		t.Errorf("hello.yaml is %s, hello.json is %s: want the same job", a, b)
	}
}

func TestParseJobSpecTooLarge(t *testing.T) {
	doc := withHead("# " + strings.Repeat("x", MaxJobSpecSize))
	_, err := ParseJobSpecFile("big.yaml", []byte(doc))
	want := fmt.Sprintf("big.yaml: %d bytes is too large: a job spec is at most 1024 KiB", len(doc))
	if err == nil || err.Error() != want {
		t.Errorf("ParseJobSpec = %v, want %s", err, want)
	}
}

// FuzzParseJobSpec parses arbitrary documents: no panic, errors are
// *specyaml.SpecError, and a spec that parses builds a job that passes protocol.ValidateJob and
// has a stable canonical encoding and CID.
func FuzzParseJobSpec(f *testing.F) {
	for _, data := range exampleSpecs(f) {
		f.Add(data)
	}
	for _, tt := range specErrorTests {
		if len(tt.doc) <= 4<<10 { // a huge seed makes every mutation and minimisation slow
			f.Add([]byte(tt.doc))
		}
	}
	for _, doc := range []string{fullYAML, fullJSON, withHead(), withHead("constraints: [a in (x, y), a notin (x)]")} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Start()()
		s, err := ParseJobSpec(data)
		if err != nil {
			for _, e := range flatten(err) {
				if _, ok := e.(*specyaml.SpecError); !ok {
					t.Fatalf("%T is not a *specyaml.SpecError: %v", e, e)
				}
			}
			return
		}
		// Inputs sized 0 always fit: the scratch check is ValidateJob's.
		err = s.ResolveInputs(func(src string, c cid.Cid) (cid.Cid, uint64, error) {
			return cid.NewCidV1(cid.DagProtobuf, wire.SumCID([]byte(src)).Hash()), 0, nil
		})
		if err != nil {
			t.Fatalf("inputs that parse do not resolve: %v", err)
		}
		j, err := s.Job(testResolve)
		if err != nil {
			t.Fatalf("a spec that parses does not build: %v", err)
		}
		if err := protocol.ValidateJob(j); err != nil {
			t.Fatalf("a built job is not valid: %v", err)
		}
		a, err := protocol.Canonical(j)
		if err != nil {
			t.Fatalf("protocol.Canonical: %v", err)
		}
		b, _ := protocol.Canonical(j)
		if !bytes.Equal(a, b) {
			t.Fatal("protocol.Canonical is not stable")
		}
		c1, _ := wire.JobCID(j)
		j2, err := s.Job(testResolve)
		if err != nil {
			t.Fatal(err)
		}
		if c2, _ := wire.JobCID(j2); !c1.Equals(c2) {
			t.Fatalf("JobCID not stable: %s, %s", c1, c2)
		}
	})
}

func constraint(key string, op pb.Operator, values ...string) *pb.Constraint {
	return &pb.Constraint{Key: key, Op: op, Values: values}
}

const (
	opIn     = pb.Operator_OPERATOR_IN
	opNotIn  = pb.Operator_OPERATOR_NOT_IN
	opEq     = pb.Operator_OPERATOR_EQUAL
	opNotEq  = pb.Operator_OPERATOR_NOT_EQUAL
	opExists = pb.Operator_OPERATOR_EXISTS
)

func mustMultihash(t testing.TB, s string) mh.Multihash {
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestJobSpecInputsOutputs(t *testing.T) {
	doc := withHead(
		"  inputs:",
		"    - {path: zeta, source: ./data/zeta.txt}",
		"    - path: corpus",
		"      source: bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
		"  outputs: [words.txt, out]",
		"  resources: {scratch: 1Mi}",
	)
	s, err := ParseJobSpec([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Job(testResolve); err == nil || !strings.Contains(err.Error(), `"./data/zeta.txt" is not resolved`) {
		t.Fatalf("Job before ResolveInputs = %v, want a refusal naming the unresolved source", err)
	}
	var asked []string
	err = s.ResolveInputs(func(src string, c cid.Cid) (cid.Cid, uint64, error) {
		asked = append(asked, fmt.Sprintf("%s %v", src, c.Defined()))
		if c.Defined() {
			return c, 300, nil
		}
		return wire.SumCID([]byte(src)), 200, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"./data/zeta.txt false", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi true"}; !cmp.Equal(asked, want) {
		t.Errorf("resolver asked %q, want %q", asked, want)
	}
	j, err := s.Job(testResolve)
	if err != nil {
		t.Fatal(err)
	}
	dir := cid.MustParse("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
	want := []*pb.Input{
		{Path: "corpus", Cid: dir.Bytes(), Size: 300},
		{Path: "zeta", Cid: wire.SumCID([]byte("./data/zeta.txt")).Bytes(), Size: 200},
	}
	if diff := cmp.Diff(want, j.Task.Inputs, cmpProto); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	if want := []string{"out", "words.txt"}; !cmp.Equal(j.Task.Outputs, want) {
		t.Errorf("outputs = %q, want %q", j.Task.Outputs, want)
	}
}

func TestJobSpecInputErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // a part of the message, from its position
	}{
		{"missing source", withHead("  inputs:", "    - {path: a}"), `line 6, column 7: task.inputs[0].source: missing`},
		{"missing path", withHead("  inputs:", "    - {source: ./a}"), `line 6, column 7: task.inputs[0].path: missing`},
		{"unknown field", withHead("  inputs:", "    - {path: a, source: ./a, mode: rw}"), `task.inputs[0].mode: unknown field: the fields here are path, source`},
		{"bad CID", withHead("  inputs:", "    - {path: a, source: bafyxyz}"), `task.inputs[0].source: not a CID`},
		// The second input in the document is the first once sorted: the
		// error must still name the document's entry.
		{"path up, sorted first", withHead("  inputs:", "    - {path: b, source: ./b}", "    - {path: ../a, source: ./a}"), `line 7, column 8: task.inputs[1].path: "../a" goes up`},
		{"absolute output", withHead("  outputs: [ok, /etc/passwd]"), `task.outputs[1]: "/etc/passwd" is absolute`},
		{"output inside input", withHead("  inputs:", "    - {path: in, source: ./in}", "  outputs: [in/x]"), `task.outputs[0]: "in/x" is inside the input "in"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseJobSpec([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseJobSpec = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
