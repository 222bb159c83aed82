package jobspec

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/specyaml"
	"github.com/cuivre/cuivre/protocol/wire"
)

// MaxJobSpecSize is the largest job spec document ParseJobSpec reads: room for
// the largest inline stdin and then some.
const MaxJobSpecSize = 1 << 20

// maxSpecErrors is the most errors one parse reports; a document that breaks
// more rules than that is usually not a job spec at all.
const maxSpecErrors = 10

// JobSpec is the job document a customer writes, in YAML or JSON, after
// parsing and defaults (SPEC 5). Job turns it into the canonical pb.Job.
//
// ParseJobSpec fills it from a document and remembers where each field was
// written, so that errors name the line. A JobSpec built in code works too;
// its errors then carry no line.
type JobSpec struct {
	Version  uint32 // required; protocol.JobVersion
	Name     string // required; a DNS label
	Type     string // "batch" (default) or "service"
	Count    uint32 // instances; default 1
	Replicas uint32 // distinct operators running each instance; default 1
	Task     TaskSpec
	// Constraints are hard: a provider must satisfy every one. Kept in
	// document order.
	Constraints []ConstraintSpec
	Affinities  []AffinitySpec // soft, weighted
	Spread      []SpreadSpec
	MaxPrice    *pb.Amount // ceiling for one instance's whole run; nil for none
	// Heartbeat is the Status interval asked of providers, "500ms"; 0
	// leaves it to the requester (protocol.DefaultHeartbeat).
	Heartbeat time.Duration
	// PlacementTimeout is how long the requester keeps trying to place the
	// job, waiting for capacity while fitting providers are full, "10m";
	// 0 leaves it to the requester (protocol.DefaultPlacementTimeout).
	PlacementTimeout time.Duration
	// Entropy is the guest's random source (SPEC 11): "derived" (default), a
	// stream derived from the job CID and the instance, which replicas
	// share; or "host", the provider's crypto/rand, for a job that makes
	// keys, which allows no replicas.
	Entropy string

	file string               // as given to ParseJobSpecFile
	pos  map[string]sourcePos // document path -> where it is written
}

// TaskSpec is what runs: the task section of a job spec.
type TaskSpec struct {
	Engine string // default "wasm"
	// Module is a CID ("bafk...") or a path, relative to the spec file, that
	// Job's resolver turns into one. A path that could be read as a CID must
	// start with "./".
	Module    string
	Args      []string
	Env       map[string]string
	Stdin     string
	Resources ResourcesSpec
	// Inputs are mounted read-only in the working directory, in document
	// order here; Job sorts them by path.
	Inputs []InputSpec
	// Outputs are the paths, relative to the working directory, that come
	// back as the job's output; none means the whole working directory.
	Outputs []string
}

// InputSpec is one input of a task: data mounted read-only at Path.
type InputSpec struct {
	// Path is where the input appears, relative to the guest's working
	// directory.
	Path string
	// Source is the input's root CID ("bafy...") or a file or directory
	// path, relative to the spec file, that ResolveInputs turns into one.
	Source string
	// CID and Size are the resolved root and the bytes of its files'
	// contents; CID is cid.Undef until resolved.
	CID  cid.Cid
	Size uint64
}

// ResourcesSpec is what a task reserves, and for how long.
type ResourcesSpec struct {
	CPUMillis    uint64        // "500m", "0.5" or "2" vCPUs; default 1 vCPU
	MemoryBytes  uint64        // "128Mi"; default 256 MiB
	ScratchBytes uint64        // "64Mi"; default 64 MiB
	Timeout      time.Duration // "30s"; default 5 minutes
}

// ConstraintSpec is a hard label selector, written "region in (fr, be)" or
// {key: region, op: in, values: [fr, be]}.
type ConstraintSpec struct {
	Key    string
	Op     pb.Operator
	Values []string
}

// AffinitySpec is a soft label selector: a provider that satisfies it scores
// Weight, from -100 to 100 (negative repels).
type AffinitySpec struct {
	Key    string
	Op     pb.Operator
	Values []string
	Weight int32
}

// SpreadSpec asks that instances be spread across the values of a label.
type SpreadSpec struct {
	Attribute string
	Weight    uint32 // 1 to 100
}

// ParseJobSpec reads a job spec from YAML or JSON, strictly: an unknown or
// duplicate field, a value of the wrong type, a bad quantity, duration,
// operator or price, and a job that breaks a rule of protocol.ValidateJob (an
// impossible set of constraints among them) are all errors. It applies the
// defaults of the fields left out.
//
// Errors are *specyaml.SpecError, several joined with errors.Join, at most
// about ten. The caller owns the returned spec.
func ParseJobSpec(data []byte) (*JobSpec, error) {
	return ParseJobSpecFile("", data)
}

// ParseJobSpecFile is ParseJobSpec for a document read from a file: errors
// begin with its name, "job.yaml:12:5: ...".
func ParseJobSpecFile(name string, data []byte) (*JobSpec, error) {
	p := &specParser{file: name, pos: make(map[string]sourcePos)}
	p.Fail, p.Seen = p.fail, func(path string, k *yaml.Node) { p.pos[path] = posOf(k) }
	s := p.parse(data)
	if s != nil {
		s.file, s.pos = name, p.pos
		// Check the rules of the wire form now, with a stand-in for a module
		// path, so that every mistake but an unresolvable module shows here,
		// with those of the document's form: all at once, as a scenario's.
		// A field that did not parse is left at its zero value, which the
		// rules would refuse again: its own error says enough.
		module, isCID, _ := moduleRef(s.Task.Module)
		if !isCID {
			module = wire.SumCID([]byte(s.Task.Module))
		}
		j := s.wire(module)
		failed := p.errs
		for _, e := range s.fieldErrors(j, protocol.CheckJob(j, s.messageName(j))) {
			if !slices.ContainsFunc(failed, func(f *specyaml.SpecError) bool { return within(e.Path, f.Path) }) {
				p.errs = append(p.errs, e)
			}
		}
	}
	if err := joinSpecErrors(name, p.errs); err != nil {
		return nil, err
	}
	return s, nil
}

// within says whether path is at or under another: "task.resources.cpu"
// is within "task.resources" and "task", not within "task.res"; every path
// is within "", the document.
func within(path, other string) bool {
	if other == "" {
		return true
	}
	rest, ok := strings.CutPrefix(path, other)
	return ok && (rest == "" || rest[0] == '.' || rest[0] == '[')
}

// Job builds the canonical job of the spec: module resolved to a CID, env
// sorted by name, selector values sorted and deduplicated, constraints in
// document order. resolve turns a module path into the CID of its bytes; it
// may be nil if the module is given as a CID. The job passes
// protocol.ValidateJob, or Job returns *specyaml.SpecError located in the
// document. The caller owns the job.
func (s *JobSpec) Job(resolve func(path string) (cid.Cid, error)) (*pb.Job, error) {
	module, isCID, err := moduleRef(s.Task.Module)
	at := s.position("task.module")
	fail := func(msg string, err error) error {
		return &specyaml.SpecError{File: s.file, Line: at.line, Column: at.col, Path: "task.module", Msg: msg, Err: err}
	}
	switch {
	case err != nil:
		return nil, fail(err.Error(), err)
	case isCID:
	case s.Task.Module == "":
		return nil, fail("missing: give the module's path, relative to the spec, or its CID", nil)
	case resolve == nil:
		return nil, fail(fmt.Sprintf("%s is a path and there is no resolver: give the module's CID", protocol.Quote(s.Task.Module)), nil)
	default:
		module, err = resolve(s.Task.Module)
		if err != nil {
			return nil, fail(fmt.Sprintf("resolve %s: %v", protocol.Quote(s.Task.Module), err), err)
		}
	}
	for i, in := range s.Task.Inputs {
		if !in.CID.Defined() {
			path := fmt.Sprintf("task.inputs[%d].source", i)
			at := s.position(path)
			return nil, &specyaml.SpecError{File: s.file, Line: at.line, Column: at.col, Path: path,
				Msg: fmt.Sprintf("%s is not resolved: add it to the node's store first (cuivre job run does)", protocol.Quote(in.Source))}
		}
	}
	j := s.wire(module)
	if err := joinSpecErrors(s.file, s.fieldErrors(j, protocol.CheckJob(j, s.messageName(j)))); err != nil {
		return nil, err
	}
	return j, nil
}

// ResolveInputs sets each input's CID and Size through resolve, which is
// given the input's source and, when the source is a CID, that CID. Errors
// are *specyaml.SpecError located at the input's source.
func (s *JobSpec) ResolveInputs(resolve func(source string, c cid.Cid) (cid.Cid, uint64, error)) error {
	var errs []*specyaml.SpecError
	for i := range s.Task.Inputs {
		in := &s.Task.Inputs[i]
		ref, isCID, err := dataRef(in.Source)
		if err == nil {
			if !isCID {
				ref = cid.Undef
			}
			in.CID, in.Size, err = resolve(in.Source, ref)
		}
		if err != nil {
			path := fmt.Sprintf("task.inputs[%d].source", i)
			at := s.position(path)
			errs = append(errs, &specyaml.SpecError{File: s.file, Line: at.line, Column: at.col, Path: path,
				Msg: fmt.Sprintf("%s: %v", protocol.Quote(in.Source), err), Err: err})
		}
	}
	return joinSpecErrors(s.file, errs)
}

// dataRef tells an input's CID from a path, as moduleRef does for modules,
// but for the CIDs of data: dag-pb or raw.
func dataRef(s string) (c cid.Cid, isCID bool, err error) {
	c, err = cid.Decode(s)
	if err != nil {
		if !looksLikeCID(s) {
			return cid.Undef, false, nil
		}
		return cid.Undef, true, fmt.Errorf("not a CID (%v); for a file, write %s", err, protocol.Quote("./"+s))
	}
	if err := protocol.CheckDataCID(c.Bytes()); err != nil {
		return cid.Undef, true, fmt.Errorf("not a CIDv1 dag-pb or raw sha2-256 (%v)", err)
	}
	return c, true, nil
}

// wire builds the pb.Job of the spec with the given module CID, unchecked.
// An input not yet resolved stands in with the CID of its source's text.
func (s *JobSpec) wire(module cid.Cid) *pb.Job {
	t := s.Task
	task := &pb.Task{
		Engine:    t.Engine,
		ModuleCid: module.Bytes(),
		Args:      slices.Clone(t.Args),
		Resources: &pb.Resources{
			CpuMillis:    t.Resources.CPUMillis,
			MemoryBytes:  t.Resources.MemoryBytes,
			ScratchBytes: t.Resources.ScratchBytes,
		},
	}
	if t.Stdin != "" {
		task.Stdin = []byte(t.Stdin)
	}
	if d := t.Resources.Timeout; d > 0 {
		task.TimeoutMs = uint64(d / time.Millisecond)
	}
	for _, name := range slices.Sorted(maps.Keys(t.Env)) {
		task.Env = append(task.Env, &pb.EnvVar{Name: name, Value: t.Env[name]})
	}
	for _, in := range t.Inputs {
		c := in.CID
		if !c.Defined() {
			c = cid.NewCidV1(cid.DagProtobuf, wire.SumCID([]byte(in.Source)).Hash())
		}
		task.Inputs = append(task.Inputs, &pb.Input{Path: in.Path, Cid: c.Bytes(), Size: in.Size})
	}
	slices.SortStableFunc(task.Inputs, func(a, b *pb.Input) int { return strings.Compare(a.Path, b.Path) })
	if len(t.Outputs) > 0 {
		task.Outputs = slices.Sorted(slices.Values(t.Outputs))
	}
	j := &pb.Job{
		Version:     s.Version,
		Name:        s.Name,
		Type:        jobTypes[s.Type],
		Count:       s.Count,
		Replicas:    s.Replicas,
		Task:        task,
		HeartbeatMs: uint64(s.Heartbeat / time.Millisecond),

		PlacementTimeoutMs: uint64(s.PlacementTimeout / time.Millisecond),
		Entropy:            entropy(s.Entropy),
	}
	for _, c := range s.Constraints {
		j.Constraints = append(j.Constraints, &pb.Constraint{Key: c.Key, Op: c.Op, Values: sortedSet(c.Values)})
	}
	for _, a := range s.Affinities {
		j.Affinities = append(j.Affinities, &pb.Affinity{Key: a.Key, Op: a.Op, Values: sortedSet(a.Values), Weight: a.Weight})
	}
	for _, sp := range s.Spread {
		j.Spread = append(j.Spread, &pb.Spread{Attribute: sp.Attribute, Weight: sp.Weight})
	}
	if p := s.MaxPrice; p != nil {
		j.MaxPrice = &pb.Amount{Currency: p.Currency, Nanos: p.Nanos}
	}
	return j
}

var jobTypes = map[string]pb.JobType{"batch": pb.JobType_JOB_TYPE_BATCH, "service": pb.JobType_JOB_TYPE_SERVICE}

var entropies = map[string]pb.Entropy{"derived": pb.Entropy_ENTROPY_DERIVED, "host": pb.Entropy_ENTROPY_HOST}

// entropy is the wire form of a spec's entropy: the default for none, and a
// value ValidateJob refuses for a name it does not know.
func entropy(name string) pb.Entropy {
	if e, ok := entropies[name]; ok || name == "" {
		return e
	}
	return -1
}

func sortedSet(values []string) []string {
	if len(values) == 0 {
		return nil
	}
	out := slices.Clone(values)
	slices.Sort(out)
	return slices.Compact(out)
}

// moduleRef tells a module CID from a path: text that decodes as a CID is one,
// and so must text that looks like one (no '/' or '.', starting "baf" or "Qm").
func moduleRef(s string) (c cid.Cid, isCID bool, err error) {
	if _, err := cid.Decode(s); err != nil && !looksLikeCID(s) {
		return cid.Undef, false, nil
	}
	c, err = wire.DecodeCID(s)
	if err != nil {
		return cid.Undef, true, fmt.Errorf("%s (or, for a file, write %s)", message(err), protocol.Quote("./"+s))
	}
	return c, true, nil
}

// looksLikeCID says whether text that does not decode as a CID was meant as
// one: no '/', '.' or '\\', and starting "baf" or "Qm". Other text is a path.
func looksLikeCID(s string) bool {
	return !strings.ContainsAny(s, "/.\\") && (strings.HasPrefix(s, "baf") || strings.HasPrefix(s, "Qm"))
}

// message is the text of a protocol error without its code name, for nesting
// in another message.
func message(err error) string {
	if e, ok := err.(*protocol.Error); ok && e.Msg != "" {
		return e.Msg
	}
	return err.Error()
}

// ---- locating errors ----

// sourcePos is where a field is written in a document.
type sourcePos struct{ line, col int }

func posOf(n *yaml.Node) sourcePos { return sourcePos{n.Line, n.Column} }

// position returns where the field at a document path, or the nearest
// enclosing one, is written.
func (s *JobSpec) position(path string) sourcePos {
	for {
		if p, ok := s.pos[path]; ok {
			return p
		}
		if path == "" {
			return sourcePos{}
		}
		path = path[:max(strings.LastIndexAny(path, ".["), 0)]
	}
}

var wireFields = map[string]string{
	"task.module_cid":              "task.module",
	"task.timeout_ms":              "task.resources.timeout",
	"task.resources.cpu_millis":    "task.resources.cpu",
	"task.resources.memory_bytes":  "task.resources.memory",
	"task.resources.scratch_bytes": "task.resources.scratch",
	"max_price.currency":           "max_price",
	"heartbeat_ms":                 "heartbeat",
	"placement_timeout_ms":         "placement_timeout",
}

var (
	envPath    = regexp.MustCompile(`^task\.env\[(\d+)\]`)
	inputPath  = regexp.MustCompile(`^task\.inputs\[(\d+)\](.*)$`)
	outputPath = regexp.MustCompile(`^task\.outputs\[(\d+)\]$`)
	valuesPath = regexp.MustCompile(`\.values\[\d+\]$`)
)

// docPath turns the wire path of a protocol.FieldError into the path of the
// field in the document: env entries by name, values without an index (they
// were sorted), fields by their document name.
func (s *JobSpec) docPath(j *pb.Job, field string) string {
	if p, ok := wireFields[field]; ok {
		return p
	}
	if m := inputPath.FindStringSubmatch(field); m != nil {
		i, _ := strconv.Atoi(m[1])
		rest := strings.Replace(m[2], ".cid", ".source", 1)
		if in := j.GetTask().GetInputs(); i < len(in) && in[i] != nil {
			for k, d := range s.Task.Inputs {
				if d.Path == in[i].Path {
					i = k
					break
				}
			}
		}
		return fmt.Sprintf("task.inputs[%d]%s", i, rest)
	}
	if m := outputPath.FindStringSubmatch(field); m != nil {
		i, _ := strconv.Atoi(m[1])
		if out := j.GetTask().GetOutputs(); i < len(out) {
			i = slices.Index(s.Task.Outputs, out[i])
		}
		return fmt.Sprintf("task.outputs[%d]", i)
	}
	if m := envPath.FindStringSubmatch(field); m != nil {
		i, _ := strconv.Atoi(m[1])
		if env := j.GetTask().GetEnv(); i < len(env) && env[i].GetName() != "" {
			return "task.env." + env[i].GetName()
		}
		return "task.env"
	}
	return valuesPath.ReplaceAllString(field, ".values")
}

// messageName returns how protocol.CheckJob names another field in a
// message: by its document path and line.
func (s *JobSpec) messageName(j *pb.Job) func(string) string {
	return func(field string) string {
		p := s.docPath(j, field)
		if at := s.position(p); at.line > 0 {
			return fmt.Sprintf("%s (line %d)", p, at.line)
		}
		return p
	}
}

func (s *JobSpec) fieldErrors(j *pb.Job, fes []*protocol.FieldError) []*specyaml.SpecError {
	var out []*specyaml.SpecError
	for _, fe := range fes {
		p := s.docPath(j, fe.Path)
		at := s.position(p)
		out = append(out, &specyaml.SpecError{File: s.file, Line: at.line, Column: at.col, Path: p, Msg: fe.Msg, Err: fe})
	}
	return out
}

// joinSpecErrors returns nil, the one error, or the first maxSpecErrors
// errors in document order, joined.
func joinSpecErrors(file string, errs []*specyaml.SpecError) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	slices.SortStableFunc(errs, func(a, b *specyaml.SpecError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	var out []error
	for i, e := range errs {
		if i == maxSpecErrors {
			out = append(out, &specyaml.SpecError{File: file, Msg: fmt.Sprintf("%d more errors not shown: fix these first", len(errs)-i)})
			break
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// ---- parsing ----

// specParser walks the YAML node tree of a job spec; every field it reads is
// recorded in pos under its document path.
type specParser struct {
	specyaml.Reader
	file string
	errs []*specyaml.SpecError
	pos  map[string]sourcePos
}

type field = specyaml.Field

func (p *specParser) fail(at *yaml.Node, path, format string, args ...any) {
	e := &specyaml.SpecError{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if at != nil {
		e.Line, e.Column = at.Line, at.Column
	}
	p.errs = append(p.errs, e)
}

func (p *specParser) parse(data []byte) *JobSpec {
	if len(data) > MaxJobSpecSize {
		p.fail(nil, "", "%d bytes is too large: a job spec is at most %d KiB", len(data), MaxJobSpecSize>>10)
		return nil
	}
	root, err := p.Document(data, "a job spec", `empty job spec: start with "version: 1" and a name`)
	if err != nil {
		line, msg := specyaml.SyntaxLine(err)
		p.errs = append(p.errs, &specyaml.SpecError{File: p.file, Line: line, Msg: msg + " (the spec must be YAML or JSON)", Err: err})
	}
	if root == nil {
		return nil
	}
	p.pos[""] = posOf(root)
	return p.job(root)
}

func (p *specParser) texts(at, v *yaml.Node, path string) []string {
	var out []string
	for i, item := range p.List(at, v, path) {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		p.pos[ipath] = posOf(item)
		if s, ok := p.Text(item, item, ipath); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *specParser) job(root *yaml.Node) *JobSpec {
	s := &JobSpec{
		Type:     protocol.DefaultJobType,
		Count:    1,
		Replicas: 1,
		Entropy:  "derived",
		Task: TaskSpec{
			Engine: protocol.DefaultEngine,
			Resources: ResourcesSpec{
				CPUMillis:    protocol.DefaultCPUMillis,
				MemoryBytes:  protocol.DefaultMemory,
				ScratchBytes: protocol.DefaultScratch,
				Timeout:      protocol.DefaultTimeout,
			},
		},
	}
	present := p.Object(root, root, "", []field{
		{Name: "version", Read: func(at, v *yaml.Node, path string) {
			n, _ := p.Integer(at, v, path, 0, math.MaxUint32)
			s.Version = uint32(n)
		}},
		{Name: "name", Read: func(at, v *yaml.Node, path string) { s.Name, _ = p.Str(at, v, path) }},
		{Name: "type", Read: func(at, v *yaml.Node, path string) {
			if t, ok := p.Str(at, v, path); ok {
				if _, known := jobTypes[t]; !known {
					p.fail(at, path, "bad type %s: use batch or service", protocol.Quote(t))
				}
				s.Type = t
			}
		}},
		{Name: "count", Read: func(at, v *yaml.Node, path string) {
			n, _ := p.Integer(at, v, path, 1, protocol.MaxJobCount)
			s.Count = uint32(n)
		}},
		{Name: "replicas", Read: func(at, v *yaml.Node, path string) {
			n, _ := p.Integer(at, v, path, 1, protocol.MaxJobReplicas)
			s.Replicas = uint32(n)
		}},
		{Name: "task", Read: func(at, v *yaml.Node, path string) { p.task(at, v, path, &s.Task) }},
		{Name: "constraints", Read: func(at, v *yaml.Node, path string) {
			for i, item := range p.List(at, v, path) {
				s.Constraints = append(s.Constraints, p.constraint(item, fmt.Sprintf("%s[%d]", path, i)))
			}
		}},
		{Name: "affinities", Read: func(at, v *yaml.Node, path string) {
			for i, item := range p.List(at, v, path) {
				s.Affinities = append(s.Affinities, p.affinity(item, fmt.Sprintf("%s[%d]", path, i)))
			}
		}},
		{Name: "spread", Read: func(at, v *yaml.Node, path string) {
			for i, item := range p.List(at, v, path) {
				s.Spread = append(s.Spread, p.spread(item, fmt.Sprintf("%s[%d]", path, i)))
			}
		}},
		{Name: "max_price", Read: func(at, v *yaml.Node, path string) {
			if text, ok := p.Str(at, v, path); ok {
				price, err := protocol.ParsePrice(text)
				if err != nil {
					p.fail(at, path, "%v", err)
				}
				s.MaxPrice = price
			}
		}},
		{Name: "placement_timeout", Read: func(at, v *yaml.Node, path string) {
			if d := p.duration(at, v, path); d > 0 {
				if d > protocol.MaxPlacementTimeout {
					p.fail(at, path, "%v is out of range: use at most %v", d, protocol.MaxPlacementTimeout)
				}
				s.PlacementTimeout = d
			}
		}},
		{Name: "heartbeat", Read: func(at, v *yaml.Node, path string) {
			if d := p.duration(at, v, path); d > 0 {
				if d < protocol.MinHeartbeat || d > protocol.MaxHeartbeat {
					p.fail(at, path, "%v is out of range: use %v to %v", d, protocol.MinHeartbeat, protocol.MaxHeartbeat)
				}
				s.Heartbeat = d
			}
		}},
		{Name: "entropy", Read: func(at, v *yaml.Node, path string) {
			if e, ok := p.Str(at, v, path); ok {
				if _, known := entropies[e]; !known {
					p.fail(at, path, "bad entropy %s: use derived or host", protocol.Quote(e))
				}
				s.Entropy = e
			}
		}},
	}...)
	if present == nil {
		return s
	}
	if present["version"] == nil {
		p.fail(root, "version", `missing: add "version: %d"`, protocol.JobVersion)
	}
	if present["name"] == nil {
		p.fail(root, "name", `missing: add a name, such as "name: hello"`)
	}
	if present["task"] == nil {
		p.fail(root, "task", "missing: add a task with at least a module")
	}
	return s
}

func (p *specParser) task(at, v *yaml.Node, path string, t *TaskSpec) {
	present := p.Object(at, v, path, []field{
		{Name: "engine", Read: func(at, v *yaml.Node, path string) { t.Engine, _ = p.Str(at, v, path) }},
		{Name: "module", Read: func(at, v *yaml.Node, path string) {
			m, ok := p.Str(at, v, path)
			if !ok {
				return
			}
			if m == "" {
				p.fail(at, path, "empty: give the module's path, relative to the spec, or its CID")
			} else if _, _, err := moduleRef(m); err != nil {
				p.fail(at, path, "%v", err)
			}
			t.Module = m
		}},
		{Name: "args", Read: func(at, v *yaml.Node, path string) { t.Args = p.texts(at, v, path) }},
		{Name: "env", Read: func(at, v *yaml.Node, path string) { t.Env = p.env(at, v, path) }},
		{Name: "stdin", Read: func(at, v *yaml.Node, path string) { t.Stdin, _ = p.Text(at, v, path) }},
		{Name: "resources", Read: func(at, v *yaml.Node, path string) { p.resources(at, v, path, &t.Resources) }},
		{Name: "inputs", Read: func(at, v *yaml.Node, path string) {
			for i, item := range p.List(at, v, path) {
				t.Inputs = append(t.Inputs, p.input(item, fmt.Sprintf("%s[%d]", path, i)))
			}
		}},
		{Name: "outputs", Read: func(at, v *yaml.Node, path string) { t.Outputs = p.texts(at, v, path) }},
	}...)
	if present != nil && present["module"] == nil {
		p.fail(at, specyaml.JoinPath(path, "module"), "missing: give the module's path, relative to the spec, or its CID")
	}
}

// input reads one input, {path, source}, both required.
func (p *specParser) input(item *yaml.Node, path string) InputSpec {
	p.pos[path] = posOf(item)
	var in InputSpec
	present := p.Object(item, item, path, []field{
		{Name: "path", Read: func(at, v *yaml.Node, path string) { in.Path, _ = p.Text(at, v, path) }},
		{Name: "source", Read: func(at, v *yaml.Node, path string) {
			src, ok := p.Text(at, v, path)
			if !ok {
				return
			}
			if src == "" {
				p.fail(at, path, "empty: give the input's CID or a path relative to the spec")
			} else if _, _, err := dataRef(src); err != nil {
				p.fail(at, path, "%v", err)
			}
			in.Source = src
		}},
	}...)
	if present != nil {
		for _, f := range []string{"path", "source"} {
			if present[f] == nil {
				p.fail(item, specyaml.JoinPath(path, f), "missing: an input needs a path in the guest and a source (a CID or a local path)")
			}
		}
	}
	return in
}

func (p *specParser) env(at, v *yaml.Node, path string) map[string]string {
	if v.Kind != yaml.MappingNode {
		p.fail(at, path, "want a mapping of variables (NAME: value), got %s", specyaml.Describe(v))
		return nil
	}
	env := make(map[string]string)
	keys := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.fail(k, path, "a variable name must be a plain string, got %s", specyaml.Describe(k))
			continue
		}
		vpath := path + "." + k.Value
		if first, dup := keys[k.Value]; dup {
			p.fail(k, vpath, "duplicate variable, first set at line %d: keep one", first.Line)
			continue
		}
		keys[k.Value] = k
		p.pos[vpath] = posOf(k)
		if val.ShortTag() == "!!null" {
			p.fail(k, vpath, `no value: write "" for an empty one`)
			continue
		}
		if s, ok := p.Text(k, val, vpath); ok {
			env[k.Value] = s
		}
	}
	return env
}

func (p *specParser) resources(at, v *yaml.Node, path string, r *ResourcesSpec) {
	quantity := func(dst *uint64, parse func(string) (uint64, error)) func(at, v *yaml.Node, path string) {
		return func(at, v *yaml.Node, path string) {
			if text, ok := p.Text(at, v, path); ok {
				n, err := parse(text)
				if err != nil {
					p.fail(at, path, "%v", err)
				}
				*dst = n
			}
		}
	}
	p.Object(at, v, path, []field{
		{Name: "cpu", Read: quantity(&r.CPUMillis, protocol.ParseCPU)},
		{Name: "memory", Read: quantity(&r.MemoryBytes, protocol.ParseQuantity)},
		{Name: "scratch", Read: quantity(&r.ScratchBytes, protocol.ParseQuantity)},
		{Name: "timeout", Read: func(at, v *yaml.Node, path string) { r.Timeout = p.duration(at, v, path) }},
	}...)
}

// duration reads a positive Go duration, a whole number of milliseconds.
func (p *specParser) duration(at, v *yaml.Node, path string) time.Duration {
	text, ok := p.Text(at, v, path)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(text)
	switch {
	case err != nil:
		p.fail(at, path, "bad duration %s: use a Go duration such as 30s, 5m or 1h30m", protocol.Quote(text))
	case d <= 0:
		p.fail(at, path, "bad duration %s: use a positive duration", protocol.Quote(text))
	case d%time.Millisecond != 0:
		p.fail(at, path, "bad duration %s: finer than a millisecond", protocol.Quote(text))
	}
	return d
}

var operators = map[string]pb.Operator{
	"in":     pb.Operator_OPERATOR_IN,
	"notin":  pb.Operator_OPERATOR_NOT_IN,
	"=":      pb.Operator_OPERATOR_EQUAL,
	"==":     pb.Operator_OPERATOR_EQUAL,
	"!=":     pb.Operator_OPERATOR_NOT_EQUAL,
	"exists": pb.Operator_OPERATOR_EXISTS,
}

func (p *specParser) operator(at, v *yaml.Node, path string) pb.Operator {
	s, ok := p.Str(at, v, path)
	if !ok {
		return 0
	}
	op, ok := operators[s]
	if !ok {
		p.fail(at, path, "bad operator %s: use in, notin, =, != or exists", protocol.Quote(s))
	}
	return op
}

// selector reads the key, op and values of a constraint or affinity written
// as a mapping, plus any extra fields.
func (p *specParser) selector(item *yaml.Node, path string, c *ConstraintSpec, extra ...field) map[string]*yaml.Node {
	present := p.Object(item, item, path, append([]field{
		{Name: "key", Read: func(at, v *yaml.Node, path string) { c.Key, _ = p.Str(at, v, path) }},
		{Name: "op", Read: func(at, v *yaml.Node, path string) { c.Op = p.operator(at, v, path) }},
		{Name: "values", Read: func(at, v *yaml.Node, path string) { c.Values = p.texts(at, v, path) }},
	}, extra...)...)
	if present == nil {
		return nil
	}
	if present["key"] == nil {
		p.fail(item, path+".key", "missing: name the label, such as region")
	}
	if present["op"] == nil {
		p.fail(item, path+".op", "missing: use in, notin, =, != or exists")
	}
	return present
}

func (p *specParser) constraint(item *yaml.Node, path string) ConstraintSpec {
	p.pos[path] = posOf(item)
	var c ConstraintSpec
	switch {
	case item.Kind == yaml.ScalarNode && item.ShortTag() == "!!str":
		var err error
		if c, err = parseSelector(item.Value); err != nil {
			p.fail(item, path, "%v", err)
		}
	case item.Kind == yaml.MappingNode:
		p.selector(item, path, &c)
	default:
		p.fail(item, path, `want "key op value" or a mapping {key, op, values}, got %s`, specyaml.Describe(item))
	}
	return c
}

func (p *specParser) affinity(item *yaml.Node, path string) AffinitySpec {
	p.pos[path] = posOf(item)
	var c ConstraintSpec
	var weight int32
	present := p.selector(item, path, &c, field{Name: "weight", Read: func(at, v *yaml.Node, path string) {
		n, _ := p.Integer(at, v, path, -protocol.MaxWeight, protocol.MaxWeight)
		weight = int32(n)
	}})
	if present != nil && present["weight"] == nil {
		p.fail(item, path+".weight", "missing: give a weight from -%d to %d, not 0 (negative repels)", protocol.MaxWeight, protocol.MaxWeight)
	}
	return AffinitySpec{Key: c.Key, Op: c.Op, Values: c.Values, Weight: weight}
}

func (p *specParser) spread(item *yaml.Node, path string) SpreadSpec {
	p.pos[path] = posOf(item)
	var s SpreadSpec
	present := p.Object(item, item, path, []field{
		{Name: "attribute", Read: func(at, v *yaml.Node, path string) { s.Attribute, _ = p.Str(at, v, path) }},
		{Name: "weight", Read: func(at, v *yaml.Node, path string) {
			n, _ := p.Integer(at, v, path, 1, protocol.MaxWeight)
			s.Weight = uint32(n)
		}},
	}...)
	if present != nil && present["attribute"] == nil {
		p.fail(item, path+".attribute", "missing: name the label to spread over, such as operator")
	}
	if present != nil && present["weight"] == nil {
		p.fail(item, path+".weight", "missing: give a weight from 1 to %d", protocol.MaxWeight)
	}
	return s
}

const selectorForms = `write "key op value", such as "region in (fr, be)", "jurisdiction = fr" or "certification exists"`

// parseSelector reads the string form of a constraint: "key exists",
// "key = value", "key != value", "key in (a, b)", "key notin (a, b)".
func parseSelector(s string) (ConstraintSpec, error) {
	bad := func(why string) (ConstraintSpec, error) {
		return ConstraintSpec{}, fmt.Errorf("bad constraint %s: %s", protocol.Quote(s), why)
	}
	if strings.Count(s, "(") != strings.Count(s, ")") {
		return bad(`unbalanced parentheses: inside [ ], quote each constraint, such as ["region in (fr, be)"]`)
	}
	rest := strings.TrimSpace(s)
	i := strings.IndexAny(rest, " \t=!(")
	if i <= 0 {
		return bad(selectorForms)
	}
	c := ConstraintSpec{Key: rest[:i]}
	rest = strings.TrimLeft(rest[i:], " \t")
	var word string
	switch {
	case strings.HasPrefix(rest, "=="), strings.HasPrefix(rest, "!="):
		word, rest = rest[:2], rest[2:]
	case strings.HasPrefix(rest, "="):
		word, rest = rest[:1], rest[1:]
	default:
		j := strings.IndexAny(rest, " \t(")
		if j < 0 {
			j = len(rest)
		}
		word, rest = rest[:j], rest[j:]
	}
	op, ok := operators[word]
	if !ok {
		return bad(fmt.Sprintf("bad operator %s: use in, notin, =, != or exists", protocol.Quote(word)))
	}
	c.Op = op
	rest = strings.TrimSpace(rest)
	switch op {
	case pb.Operator_OPERATOR_EXISTS:
		if rest != "" {
			return bad("exists takes no value")
		}
	case pb.Operator_OPERATOR_EQUAL, pb.Operator_OPERATOR_NOT_EQUAL:
		if rest == "" || strings.ContainsAny(rest, " \t,()") {
			return bad(fmt.Sprintf("%s takes one value, such as \"jurisdiction %s fr\"", word, word))
		}
		c.Values = []string{rest}
	default:
		inner, ok := strings.CutPrefix(rest, "(")
		inner, ok2 := strings.CutSuffix(inner, ")")
		if !ok || !ok2 || strings.ContainsAny(inner, "()") {
			return bad(fmt.Sprintf("%s takes a list in parentheses, such as \"region %s (fr, be)\"", word, word))
		}
		if strings.TrimSpace(inner) == "" {
			return bad(fmt.Sprintf("%s needs at least one value", word))
		}
		for v := range strings.SplitSeq(inner, ",") {
			v = strings.TrimSpace(v)
			if v == "" || strings.ContainsAny(v, " \t") {
				return bad("values are separated by commas, such as (fr, be)")
			}
			c.Values = append(c.Values, v)
		}
	}
	return c, nil
}
