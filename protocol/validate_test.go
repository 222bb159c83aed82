package protocol

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cuivre/cuivre/protocol/pb"
)

// validJob returns a job that uses every field and passes ValidateJob.
func validJob() *pb.Job {
	return &pb.Job{
		Version: 1, Name: "hello", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task: &pb.Task{
			Engine: "wasm", ModuleCid: rawCID("module"), Args: []string{"--name", "world"},
			Env:       []*pb.EnvVar{{Name: "A", Value: "1"}, {Name: "GREETING", Value: "bonjour"}},
			Stdin:     []byte("stdin\n"),
			Resources: &pb.Resources{CpuMillis: 500, MemoryBytes: 128 << 20, ScratchBytes: 64 << 20},
			TimeoutMs: 30_000,
		},
		Constraints: []*pb.Constraint{
			{Key: "jurisdiction", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"fr"}},
			{Key: "region", Op: pb.Operator_OPERATOR_IN, Values: []string{"be-bru", "fr-par"}},
			{Key: "certification", Op: pb.Operator_OPERATOR_EXISTS},
		},
		Affinities: []*pb.Affinity{{Key: "certification", Op: pb.Operator_OPERATOR_IN, Values: []string{"secnumcloud"}, Weight: -40}},
		Spread:     []*pb.Spread{{Attribute: "operator", Weight: 100}},
		MaxPrice:   &pb.Amount{Currency: "EUR", Nanos: 50_000_000},
		Nonce:      fill(0x10, NonceSize),
	}
}

func fill(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func with(edit func(j *pb.Job)) *pb.Job {
	j := validJob()
	edit(j)
	return j
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

func TestValidateJob(t *testing.T) {
	dagPB := cid.NewCidV1(cid.DagProtobuf, mustMultihash(t, "module")).Bytes()
	tests := []struct {
		name string
		job  *pb.Job
		path string // "" for a valid job
		msg  string // a part of the message
		code Code   // CODE_MALFORMED unless set
	}{
		{name: "valid", job: validJob()},
		{name: "valid minimal", job: with(func(j *pb.Job) {
			j.Task.Args, j.Task.Env, j.Task.Stdin, j.Task.Resources.ScratchBytes = nil, nil, nil, 0
			j.Constraints, j.Affinities, j.Spread, j.MaxPrice, j.Nonce = nil, nil, nil, nil, nil
		})},
		{name: "valid at every upper limit", job: with(func(j *pb.Job) {
			j.Name = "a" + strings.Repeat("-b", 31)
			j.Type, j.Count, j.Replicas = pb.JobType_JOB_TYPE_SERVICE, MaxJobCount, MaxJobReplicas
			j.Task.Args = make([]string, MaxJobArgs)
			j.Task.Stdin = make([]byte, MaxStdin)
			j.Task.Resources = &pb.Resources{CpuMillis: 1, MemoryBytes: MaxJobMemory, ScratchBytes: MaxJobScratch}
			j.Task.TimeoutMs = uint64(MaxJobTimeout / time.Millisecond)
			j.Affinities[0].Weight = MaxWeight
		})},
		{name: "valid at every lower limit", job: with(func(j *pb.Job) {
			j.Name = "a"
			j.Task.Resources = &pb.Resources{CpuMillis: 1, MemoryBytes: MinJobMemory}
			j.Task.TimeoutMs = 1
			j.Affinities[0].Weight = -MaxWeight
			j.Spread[0].Weight = 1
			j.MaxPrice.Nanos = 0
		})},

		{name: "nil job", job: nil, path: "", msg: "no job"},
		{name: "slash in a value", job: with(func(j *pb.Job) { j.Constraints[0].Values = []string{"fr/par"} }), path: "constraints[0].values[0]", msg: "character '/' not allowed: use a-z, 0-9, '-', '_' and '.'"},
		{name: "job too large", job: with(func(j *pb.Job) {
			j.Task.Args = []string{strings.Repeat("x", MaxJobSize)}
		}), path: "", msg: "at most 524288 fit in a lease"},
		{name: "version 0", job: with(func(j *pb.Job) { j.Version = 0 }), path: "version", msg: "0 is not supported: use version 1", code: pb.Code_CODE_UNSUPPORTED_VERSION},
		{name: "version 2", job: with(func(j *pb.Job) { j.Version = 2; j.Task = nil }), path: "version", msg: "2 is not supported", code: pb.Code_CODE_UNSUPPORTED_VERSION},

		{name: "no name", job: with(func(j *pb.Job) { j.Name = "" }), path: "name", msg: "missing"},
		{name: "name too long", job: with(func(j *pb.Job) { j.Name = strings.Repeat("a", 64) }), path: "name", msg: "64 characters is too long"},
		{name: "name starts with a digit", job: with(func(j *pb.Job) { j.Name = "9lives" }), path: "name", msg: "must start with a lower-case letter"},
		{name: "name in upper case", job: with(func(j *pb.Job) { j.Name = "Hello" }), path: "name", msg: "must start with a lower-case letter"},
		{name: "name ends with a dash", job: with(func(j *pb.Job) { j.Name = "hello-" }), path: "name", msg: "must not end with '-'"},
		{name: "name with an underscore", job: with(func(j *pb.Job) { j.Name = "hello_world" }), path: "name", msg: `character '_' not allowed`},
		{name: "name not ASCII", job: with(func(j *pb.Job) { j.Name = "héllo" }), path: "name", msg: `character 'é' not allowed`},

		{name: "type unspecified", job: with(func(j *pb.Job) { j.Type = pb.JobType_JOB_TYPE_UNSPECIFIED }), path: "type", msg: "use batch or service"},
		{name: "type unknown", job: with(func(j *pb.Job) { j.Type = 7 }), path: "type", msg: "7 is not a job type"},
		{name: "count 0", job: with(func(j *pb.Job) { j.Count = 0 }), path: "count", msg: "0 is out of range: use 1 to 1000"},
		{name: "count too high", job: with(func(j *pb.Job) { j.Count = MaxJobCount + 1 }), path: "count", msg: "1001 is out of range"},
		{name: "replicas 0", job: with(func(j *pb.Job) { j.Replicas = 0 }), path: "replicas", msg: "use 1 to 16 replicas"},
		{name: "replicas too high", job: with(func(j *pb.Job) { j.Replicas = MaxJobReplicas + 1 }), path: "replicas", msg: "17 is out of range"},
		{name: "host entropy, one replica", job: with(func(j *pb.Job) { j.Entropy, j.Count = pb.Entropy_ENTROPY_HOST, 3 })},
		{name: "host entropy, replicas", job: with(func(j *pb.Job) { j.Entropy, j.Replicas = pb.Entropy_ENTROPY_HOST, 2 }), path: "entropy", msg: "host entropy with 2 replicas: replicas compare their outputs"},
		{name: "entropy unknown", job: with(func(j *pb.Job) { j.Entropy = 2 }), path: "entropy", msg: "2 is not an entropy source: use derived or host"},
		{name: "heartbeat too fast", job: with(func(j *pb.Job) { j.HeartbeatMs = 99 }), path: "heartbeat_ms", msg: "99 ms is out of range: use 100ms to 1m0s"},
		{name: "heartbeat too slow", job: with(func(j *pb.Job) { j.HeartbeatMs = 60_001 }), path: "heartbeat_ms", msg: "60001 ms is out of range"},

		{name: "no task", job: with(func(j *pb.Job) { j.Task = nil }), path: "task", msg: "missing"},
		{name: "engine empty", job: with(func(j *pb.Job) { j.Task.Engine = "" }), path: "task.engine", msg: `"" is not supported: use wasm`},
		{name: "engine docker", job: with(func(j *pb.Job) { j.Task.Engine = "docker" }), path: "task.engine", msg: `"docker" is not supported`},
		{name: "no module", job: with(func(j *pb.Job) { j.Task.ModuleCid = nil }), path: "task.module_cid", msg: "missing"},
		{name: "module not a CID", job: with(func(j *pb.Job) { j.Task.ModuleCid = []byte("hello.wasm") }), path: "task.module_cid", msg: "not a CIDv1 raw sha2-256"},
		{name: "module dag-pb", job: with(func(j *pb.Job) { j.Task.ModuleCid = dagPB }), path: "task.module_cid", msg: "want CIDv1, raw codec, sha2-256"},
		{name: "module trailing bytes", job: with(func(j *pb.Job) { j.Task.ModuleCid = append(j.Task.ModuleCid, 0) }), path: "task.module_cid", msg: "1 trailing bytes"},
		{name: "too many args", job: with(func(j *pb.Job) { j.Task.Args = make([]string, MaxJobArgs+1) }), path: "task.args", msg: "257 arguments: use at most 256"},
		{name: "arg not UTF-8", job: with(func(j *pb.Job) { j.Task.Args[1] = "\xff" }), path: "task.args[1]", msg: "not valid UTF-8"},
		{name: "arg with NUL", job: with(func(j *pb.Job) { j.Task.Args[0] = "a\x00b" }), path: "task.args[0]", msg: "NUL byte"},

		{name: "env name empty", job: with(func(j *pb.Job) { j.Task.Env[0].Name = "" }), path: "task.env[0].name", msg: "not a variable name"},
		{name: "env name starts with a digit", job: with(func(j *pb.Job) { j.Task.Env[0].Name = "1A" }), path: "task.env[0].name", msg: `"1A" is not a variable name`},
		{name: "env name with a dash", job: with(func(j *pb.Job) { j.Task.Env[1].Name = "GREE-TING" }), path: "task.env[1].name", msg: "not a variable name"},
		{name: "env not sorted", job: with(func(j *pb.Job) { j.Task.Env[0].Name = "Z" }), path: "task.env[1].name", msg: `"GREETING" comes after "Z": sort variables by name`},
		{name: "env twice", job: with(func(j *pb.Job) { j.Task.Env[1].Name = "A" }), path: "task.env[1].name", msg: `"A" appears twice`},
		{name: "env nil entry", job: with(func(j *pb.Job) { j.Task.Env[0] = nil }), path: "task.env[0]", msg: "empty variable"},
		{name: "env value with NUL", job: with(func(j *pb.Job) { j.Task.Env[1].Value = "\x00" }), path: "task.env[1].value", msg: "NUL byte"},
		{name: "too many env", job: with(func(j *pb.Job) { j.Task.Env = make([]*pb.EnvVar, MaxJobEnv+1) }), path: "task.env", msg: "257 variables"},
		{name: "stdin too large", job: with(func(j *pb.Job) { j.Task.Stdin = make([]byte, MaxStdin+1) }), path: "task.stdin", msg: "use at most 262144 bytes (256 KiB)"},

		{name: "valid inputs and outputs", job: with(func(j *pb.Job) {
			j.Task.Inputs = []*pb.Input{{Path: "a", Cid: dagPB, Size: 10}, {Path: "a-b", Cid: rawCID("x"), Size: 20}, {Path: "b/c", Cid: dagPB}}
			j.Task.Outputs = []string{"a-c", "b/d", "out"}
		})},
		{name: "input absolute", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{{Path: "/etc", Cid: dagPB}} }), path: "task.inputs[0].path", msg: `"/etc" is absolute`},
		{name: "input goes up", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{{Path: "a/../../etc", Cid: dagPB}} }), path: "task.inputs[0].path", msg: `goes up with ".."`},
		{name: "input not clean", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{{Path: "a//b", Cid: dagPB}} }), path: "task.inputs[0].path", msg: "not clean"},
		{name: "input dot", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{{Path: ".", Cid: dagPB}} }), path: "task.inputs[0].path", msg: "not clean"},
		{name: "input empty path", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{{Cid: dagPB}} }), path: "task.inputs[0].path", msg: "empty"},
		{name: "input NUL", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{{Path: "a\x00", Cid: dagPB}} }), path: "task.inputs[0].path", msg: "NUL byte"},
		{name: "input long name", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{{Path: strings.Repeat("n", 256), Cid: dagPB}} }), path: "task.inputs[0].path", msg: "a name of 256 bytes"},
		{name: "inputs not sorted", job: with(func(j *pb.Job) {
			j.Task.Inputs = []*pb.Input{{Path: "b", Cid: dagPB}, {Path: "a", Cid: dagPB}}
		}), path: "task.inputs[1].path", msg: `"a" comes after "b"`},
		{name: "input twice", job: with(func(j *pb.Job) {
			j.Task.Inputs = []*pb.Input{{Path: "a", Cid: dagPB}, {Path: "a", Cid: dagPB}}
		}), path: "task.inputs[1].path", msg: `"a" appears twice`},
		{name: "input inside another", job: with(func(j *pb.Job) {
			j.Task.Inputs = []*pb.Input{{Path: "a", Cid: dagPB}, {Path: "a-b", Cid: dagPB}, {Path: "a/b", Cid: dagPB}}
		}), path: "task.inputs[2].path", msg: `"a/b" is inside the input "a"`},
		{name: "input without CID", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{{Path: "a"}} }), path: "task.inputs[0].cid", msg: "missing"},
		{name: "input CID of another hash", job: with(func(j *pb.Job) {
			j.Task.Inputs = []*pb.Input{{Path: "a", Cid: cid.NewCidV0(mustMultihash(t, "x")).Bytes()}}
		}), path: "task.inputs[0].cid", msg: "not a CIDv1 dag-pb or raw"},
		{name: "nil input", job: with(func(j *pb.Job) { j.Task.Inputs = []*pb.Input{nil} }), path: "task.inputs[0]", msg: "empty input"},
		{name: "too many inputs", job: with(func(j *pb.Job) { j.Task.Inputs = make([]*pb.Input, MaxJobInputs+1) }), path: "task.inputs", msg: "65 inputs"},
		{name: "inputs over scratch", job: with(func(j *pb.Job) {
			j.Task.Resources.ScratchBytes = 100
			j.Task.Inputs = []*pb.Input{{Path: "a", Cid: dagPB, Size: 60}, {Path: "b", Cid: dagPB, Size: 41}}
		}), path: "task.inputs", msg: "inputs take 101, more than the 100 of scratch"},
		{name: "inputs overflow", job: with(func(j *pb.Job) {
			j.Task.Inputs = []*pb.Input{{Path: "a", Cid: dagPB, Size: math.MaxUint64}, {Path: "b", Cid: dagPB, Size: 2}}
		}), path: "task.inputs", msg: "more than the"},
		{name: "output absolute", job: with(func(j *pb.Job) { j.Task.Outputs = []string{"/out"} }), path: "task.outputs[0]", msg: "is absolute"},
		{name: "output goes up", job: with(func(j *pb.Job) { j.Task.Outputs = []string{".."} }), path: "task.outputs[0]", msg: `goes up`},
		{name: "output trailing slash", job: with(func(j *pb.Job) { j.Task.Outputs = []string{"out/"} }), path: "task.outputs[0]", msg: "not clean"},
		{name: "output holds another", job: with(func(j *pb.Job) { j.Task.Outputs = []string{"a/b", "a"} }), path: "task.outputs[1]", msg: `"a" holds the output "a/b"`},
		{name: "output in an input", job: with(func(j *pb.Job) {
			j.Task.Inputs = []*pb.Input{{Path: "in", Cid: dagPB}}
			j.Task.Outputs = []string{"in/x"}
		}), path: "task.outputs[0]", msg: `inside the input "in"`},
		{name: "too many outputs", job: with(func(j *pb.Job) { j.Task.Outputs = make([]string, MaxJobOutputs+1) }), path: "task.outputs", msg: "65 outputs"},

		{name: "no resources", job: with(func(j *pb.Job) { j.Task.Resources = nil }), path: "task.resources", msg: "missing"},
		{name: "cpu 0", job: with(func(j *pb.Job) { j.Task.Resources.CpuMillis = 0 }), path: "task.resources.cpu_millis", msg: "at least 1 millicore"},
		{name: "memory too low", job: with(func(j *pb.Job) { j.Task.Resources.MemoryBytes = MinJobMemory - 1 }), path: "task.resources.memory_bytes", msg: "1048575 is out of range: use 1Mi to 1Ti"},
		{name: "memory too high", job: with(func(j *pb.Job) { j.Task.Resources.MemoryBytes = MaxJobMemory + 1<<30 }), path: "task.resources.memory_bytes", msg: "1025Gi is out of range"},
		{name: "scratch too high", job: with(func(j *pb.Job) { j.Task.Resources.ScratchBytes = MaxJobScratch + 1 }), path: "task.resources.scratch_bytes", msg: "is too much: use at most 64Gi"},
		{name: "timeout 0", job: with(func(j *pb.Job) { j.Task.TimeoutMs = 0 }), path: "task.timeout_ms", msg: "0 ms is out of range: use 1ms to 720h (30 days)"},
		{name: "timeout too long", job: with(func(j *pb.Job) { j.Task.TimeoutMs = uint64(MaxJobTimeout/time.Millisecond) + 1 }), path: "task.timeout_ms", msg: "720h0m0.001s is out of range"},
		{name: "timeout huge", job: with(func(j *pb.Job) { j.Task.TimeoutMs = math.MaxUint64 }), path: "task.timeout_ms", msg: "18446744073709551615 ms is out of range"},

		{name: "constraint nil", job: with(func(j *pb.Job) { j.Constraints[1] = nil }), path: "constraints[1]", msg: "empty constraint"},
		{name: "constraint key empty", job: with(func(j *pb.Job) { j.Constraints[0].Key = "" }), path: "constraints[0].key", msg: "empty"},
		{name: "constraint key upper case", job: with(func(j *pb.Job) { j.Constraints[0].Key = "Region" }), path: "constraints[0].key", msg: `"Region": use lower case`},
		{name: "constraint key too long", job: with(func(j *pb.Job) { j.Constraints[0].Key = strings.Repeat("k", 64) }), path: "constraints[0].key", msg: "64 characters is too long"},
		{name: "constraint key with a space", job: with(func(j *pb.Job) { j.Constraints[0].Key = "a b" }), path: "constraints[0].key", msg: `character ' ' not allowed`},
		{name: "constraint op unset", job: with(func(j *pb.Job) { j.Constraints[0].Op = 0 }), path: "constraints[0].op", msg: "use in, notin, =, != or exists"},
		{name: "constraint op unknown", job: with(func(j *pb.Job) { j.Constraints[0].Op = 99 }), path: "constraints[0].op", msg: "99 is not an operator"},
		{name: "in without values", job: with(func(j *pb.Job) { j.Constraints[1].Values = nil }), path: "constraints[1].values", msg: "in and notin need at least one value"},
		{name: "notin without values", job: with(func(j *pb.Job) { j.Constraints[1].Op, j.Constraints[1].Values = opNotIn, nil }), path: "constraints[1].values", msg: "at least one value"},
		{name: "= with two values", job: with(func(j *pb.Job) { j.Constraints[0].Values = []string{"be", "fr"} }), path: "constraints[0].values", msg: "exactly one value, got 2"},
		{name: "!= without value", job: with(func(j *pb.Job) { j.Constraints[0].Op, j.Constraints[0].Values = opNotEq, nil }), path: "constraints[0].values", msg: "exactly one value, got 0"},
		{name: "exists with a value", job: with(func(j *pb.Job) { j.Constraints[2].Values = []string{"x"} }), path: "constraints[2].values", msg: "exists takes no value, got 1"},
		{name: "values not sorted", job: with(func(j *pb.Job) { j.Constraints[1].Values = []string{"fr-par", "be-bru"} }), path: "constraints[1].values[1]", msg: `"be-bru" comes after "fr-par": sort the values`},
		{name: "values twice", job: with(func(j *pb.Job) { j.Constraints[1].Values = []string{"fr", "fr"} }), path: "constraints[1].values[1]", msg: `"fr" appears twice`},
		{name: "value empty", job: with(func(j *pb.Job) { j.Constraints[0].Values = []string{""} }), path: "constraints[0].values[0]", msg: "empty"},
		{name: "value upper case", job: with(func(j *pb.Job) { j.Constraints[0].Values = []string{"FR"} }), path: "constraints[0].values[0]", msg: "use lower case"},
		{name: "too many constraints", job: with(func(j *pb.Job) {
			j.Constraints = nil
			for range MaxJobSelectors + 1 {
				j.Constraints = append(j.Constraints, constraint("a", opExists))
			}
		}), path: "constraints", msg: "17 constraints: use at most 16"},
		{name: "too many values", job: with(func(j *pb.Job) {
			j.Constraints[1].Values = nil
			for i := range MaxSelectorValues + 1 {
				j.Constraints[1].Values = append(j.Constraints[1].Values, string(rune('a'+i/26))+string(rune('a'+i%26)))
			}
		}), path: "constraints[1].values", msg: "17 values: use at most 16"},
		{name: "impossible constraints", job: with(func(j *pb.Job) { j.Constraints[2] = constraint("jurisdiction", opNotIn, "fr") }),
			path: "constraints[2]", msg: `impossible constraint: no value of "jurisdiction" satisfies it together with constraints[0]: remove or relax one of them`},

		{name: "affinity nil", job: with(func(j *pb.Job) { j.Affinities[0] = nil }), path: "affinities[0]", msg: "empty affinity"},
		{name: "affinity key bad", job: with(func(j *pb.Job) { j.Affinities[0].Key = "cert!" }), path: "affinities[0].key", msg: `character '!' not allowed`},
		{name: "affinity values unsorted", job: with(func(j *pb.Job) { j.Affinities[0].Values = []string{"b", "a"} }), path: "affinities[0].values[1]", msg: "sort the values"},
		{name: "affinity weight 0", job: with(func(j *pb.Job) { j.Affinities[0].Weight = 0 }), path: "affinities[0].weight", msg: "0 is out of range: use -100 to 100, not 0"},
		{name: "affinity weight too high", job: with(func(j *pb.Job) { j.Affinities[0].Weight = 101 }), path: "affinities[0].weight", msg: "101 is out of range"},
		{name: "affinity weight too low", job: with(func(j *pb.Job) { j.Affinities[0].Weight = -101 }), path: "affinities[0].weight", msg: "-101 is out of range"},
		{name: "affinities contradicting each other are fine", job: with(func(j *pb.Job) {
			j.Affinities = append(j.Affinities, &pb.Affinity{Key: "certification", Op: opNotIn, Values: []string{"secnumcloud"}, Weight: 10})
		})},
		{name: "too many affinities", job: with(func(j *pb.Job) {
			j.Affinities = make([]*pb.Affinity, MaxJobSelectors+1)
		}), path: "affinities", msg: "17 affinities"},

		{name: "spread nil", job: with(func(j *pb.Job) { j.Spread[0] = nil }), path: "spread[0]", msg: "empty spread"},
		{name: "spread attribute empty", job: with(func(j *pb.Job) { j.Spread[0].Attribute = "" }), path: "spread[0].attribute", msg: "empty"},
		{name: "spread attribute twice", job: with(func(j *pb.Job) {
			j.Spread = append(j.Spread, &pb.Spread{Attribute: "region", Weight: 1}, &pb.Spread{Attribute: "operator", Weight: 1})
		}), path: "spread[2].attribute", msg: `"operator" is already spread over by spread[0]`},
		{name: "spread weight 0", job: with(func(j *pb.Job) { j.Spread[0].Weight = 0 }), path: "spread[0].weight", msg: "0 is out of range: use 1 to 100"},
		{name: "spread weight too high", job: with(func(j *pb.Job) { j.Spread[0].Weight = 101 }), path: "spread[0].weight", msg: "101 is out of range"},
		{name: "too many spread", job: with(func(j *pb.Job) { j.Spread = make([]*pb.Spread, MaxJobSpread+1) }), path: "spread", msg: "9 attributes: use at most 8"},

		{name: "currency lower case", job: with(func(j *pb.Job) { j.MaxPrice.Currency = "eur" }), path: "max_price.currency", msg: `"eur" is not a currency`},
		{name: "currency too long", job: with(func(j *pb.Job) { j.MaxPrice.Currency = "EURO" }), path: "max_price.currency", msg: "3-letter"},
		{name: "currency empty", job: with(func(j *pb.Job) { j.MaxPrice.Currency = "" }), path: "max_price.currency", msg: `"" is not a currency`},
		{name: "nonce short", job: with(func(j *pb.Job) { j.Nonce = j.Nonce[1:] }), path: "nonce", msg: "15 bytes: a nonce is empty or exactly 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateJob(tt.job)
			if tt.path == "" && tt.msg == "" {
				if err != nil {
					t.Fatalf("ValidateJob = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ValidateJob = %v, want a *FieldError at %q", err, tt.path)
			}
			if fe.Path != tt.path || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("ValidateJob = %q, want path %q and a message containing %q", err, tt.path, tt.msg)
			}
			code := tt.code
			if code == 0 {
				code = CodeMalformed
			}
			if got := CodeOf(err); got != code {
				t.Errorf("CodeOf = %v, want %v", got, code)
			}
			if !errors.Is(err, &Error{Code: code}) {
				t.Errorf("errors.Is(err, %v) = false", code)
			}
		})
	}
}

var cmpProto = protocmp.Transform()

// rawCID is the binary CID of s, made with go-cid: what package wire's SumCID
// makes, checked here against the rule of protocol.CheckCID.
func rawCID(s string) []byte {
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, h).Bytes()
}

func mustMultihash(t testing.TB, s string) mh.Multihash {
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestValidateJobErrorKinds checks how a FieldError reads as a protocol error:
// malformed (or unsupported) for errors.Is, CodeOf and the wire.
func TestValidateJobErrorKinds(t *testing.T) {
	err := ValidateJob(with(func(j *pb.Job) { j.Task.Resources.MemoryBytes = 0 }))
	if got, want := err.Error(), "task.resources.memory_bytes: 0 is out of range: use 1Mi to 1Ti"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupported) {
		t.Errorf("errors.Is: want ErrMalformed only, for %v", err)
	}
	if diff := cmp.Diff(&pb.Error{Code: CodeMalformed, Message: err.Error()}, ToPB(err), cmpProto); diff != "" {
		t.Errorf("ToPB (-want +got):\n%s", diff)
	}
	wrapped := ValidateJob(with(func(j *pb.Job) { j.Version = 3 }))
	if !errors.Is(wrapped, ErrUnsupported) || errors.Is(wrapped, ErrMalformed) {
		t.Errorf("errors.Is: want ErrUnsupported only, for %v", wrapped)
	}
	var zero FieldError
	if !errors.Is(&zero, ErrMalformed) {
		t.Error("a FieldError with no code is not malformed")
	}
}

// TestValidateJobConstraintSets checks the set logic of hard constraints
// against hand-worked cases.
func TestValidateJobConstraintSets(t *testing.T) {
	tests := []struct {
		name string
		cs   []*pb.Constraint
		want []conflict
	}{
		{"in and = agree", []*pb.Constraint{constraint("r", opIn, "a", "b"), constraint("r", opEq, "a")}, nil},
		{"in and = disagree", []*pb.Constraint{constraint("r", opIn, "a", "b"), constraint("r", opEq, "c")},
			[]conflict{{at: 1, key: "r", with: []int{0}}}},
		{"notin then in", []*pb.Constraint{constraint("r", opNotIn, "a"), constraint("r", opIn, "a")},
			[]conflict{{at: 1, key: "r", with: []int{0}}}},
		{"in then notin and != empty it", []*pb.Constraint{constraint("r", opIn, "a", "b"), constraint("r", opNotIn, "a"), constraint("r", opNotEq, "b")},
			[]conflict{{at: 2, key: "r", with: []int{0, 1}}}},
		{"exists never contradicts", []*pb.Constraint{constraint("r", opIn, "a"), constraint("r", opExists), constraint("r", opNotIn, "a")},
			[]conflict{{at: 2, key: "r", with: []int{0}}}},
		{"only exclusions leave values", []*pb.Constraint{constraint("r", opNotIn, "a", "b"), constraint("r", opNotEq, "c"), constraint("r", opExists)}, nil},
		{"keys are separate", []*pb.Constraint{constraint("r", opIn, "a"), constraint("z", opNotIn, "a"), constraint("z", opIn, "b")}, nil},
		{"other keys are not blamed", []*pb.Constraint{constraint("r", opEq, "a"), constraint("z", opEq, "a"), constraint("r", opEq, "b")},
			[]conflict{{at: 2, key: "r", with: []int{0}}}},
		{"a dead key is reported once", []*pb.Constraint{constraint("r", opEq, "a"), constraint("r", opNotEq, "a"), constraint("r", opEq, "b")},
			[]conflict{{at: 1, key: "r", with: []int{0}}}},
		{"two dead keys", []*pb.Constraint{constraint("r", opEq, "a"), constraint("z", opEq, "a"), constraint("z", opNotEq, "a"), constraint("r", opEq, "b")},
			[]conflict{{at: 2, key: "z", with: []int{1}}, {at: 3, key: "r", with: []int{0}}}},
		{"same value twice", []*pb.Constraint{constraint("r", opEq, "a"), constraint("r", opIn, "a")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, conflicts(tt.cs), cmp.AllowUnexported(conflict{})); diff != "" {
				t.Errorf("conflicts (-want +got):\n%s", diff)
			}
			j := with(func(j *pb.Job) { j.Constraints = tt.cs })
			err := ValidateJob(j)
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("ValidateJob = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Msg, "impossible constraint") {
				t.Errorf("ValidateJob = %v, want an impossible constraint", err)
			}
		})
	}
}

// FuzzValidateJob decodes arbitrary bytes as a job: ValidateJob must not
// panic, its errors must be typed, and a job it accepts must have a stable
// canonical encoding.
func FuzzValidateJob(f *testing.F) {
	for _, j := range []*pb.Job{validJob(), with(func(j *pb.Job) { j.Task.Resources = nil }), {}} {
		b, err := Canonical(j)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		defer fuzzguard.Start()()
		j := new(pb.Job)
		_ = proto.Unmarshal(in, j) // a partly decoded job must not panic either
		err := ValidateJob(j)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FieldError: %v", err)
			}
			if c := CodeOf(err); c != CodeMalformed && c != pb.Code_CODE_UNSUPPORTED_VERSION {
				t.Fatalf("code %v for %v", c, err)
			}
			return
		}
		a, err := Canonical(j)
		if err != nil {
			t.Fatalf("a valid job does not encode: %v", err)
		}
		b, _ := Canonical(j)
		if !bytes.Equal(a, b) {
			t.Fatal("canonical encoding is not stable")
		}
	})
}
