package protocol

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cuivre/cuivre/protocol/pb"
)

// JobVersion is the only job version this code speaks (SPEC 5). A job of
// another version is refused with CODE_UNSUPPORTED_VERSION.
const JobVersion = 1

// Limits of a job (SPEC 5). They bound what a provider may be asked to
// reserve and what one job record may hold; a job outside them is malformed.
const (
	// MaxJobName is the longest job name: a DNS label.
	MaxJobName = 63
	// MaxJobCount is the most instances one job may ask for.
	MaxJobCount = 1000
	// MaxJobReplicas is the most distinct operators one instance may be
	// replicated on to compare result CIDs.
	MaxJobReplicas = 16
	// MaxJobArgs is the most command-line arguments of a task.
	MaxJobArgs = 256
	// MaxJobEnv is the most environment variables of a task.
	MaxJobEnv = 256
	// MinJobMemory is the least memory a task may reserve: 1 MiB.
	MinJobMemory = 1 << 20
	// MaxJobMemory is the most memory a task may reserve: 1 TiB.
	MaxJobMemory = 1 << 40
	// MaxJobScratch is the largest scratch (output) area of a task: 64 GiB.
	MaxJobScratch = 64 << 30
	// MaxJobTimeout is the longest wall-clock time of a task: 30 days. It is
	// also the lease ceiling of a service job.
	MaxJobTimeout = 30 * 24 * time.Hour
	// MaxLabelLen is the longest label key or value in a selector.
	MaxLabelLen = 63
	// MaxJobSelectors is the most constraints, and separately the most
	// affinities, of a job. With MaxSelectorValues and MaxLabelLen it keeps
	// the constraints copied into an OfferRequest well inside MaxOfferMsg.
	MaxJobSelectors = 16
	// MaxSelectorValues is the most values of one constraint or affinity.
	MaxSelectorValues = 16
	// MaxJobSize is the largest canonical encoding of a job, so that a sealed
	// job fits in a lease frame (MaxLeaseMsg) with room to spare.
	MaxJobSize = 512 << 10
	// MaxJobInputs is the most inputs of a task, and MaxJobOutputs the most
	// output paths.
	MaxJobInputs  = 64
	MaxJobOutputs = 64
	// MaxJobPath is the longest input or output path, and MaxPathName the
	// longest name in one.
	MaxJobPath  = 1024
	MaxPathName = 255
	// MaxJobSpread is the most spread attributes of a job.
	MaxJobSpread = 8
	// MinHeartbeat and MaxHeartbeat bound a job's heartbeat interval, and
	// a lease's: faster would flood a provider with statuses, slower would
	// leave a dead provider unnoticed for minutes.
	MinHeartbeat = 100 * time.Millisecond
	MaxHeartbeat = time.Minute
	// MaxPlacementTimeout bounds how long a requester keeps trying to place
	// a job: a day.
	MaxPlacementTimeout = 24 * time.Hour
	// MaxWeight bounds affinity weights (-MaxWeight..MaxWeight, never 0) and
	// spread weights (1..MaxWeight).
	MaxWeight = 100
)

// Defaults of a job (SPEC 5): what a field left out of a job spec means.
const (
	DefaultJobType   = "batch"
	DefaultEngine    = "wasm"
	DefaultCPUMillis = 1000
	DefaultMemory    = 256 << 20
	DefaultScratch   = 64 << 20
	DefaultTimeout   = 5 * time.Minute
	// DefaultHeartbeat is the Status interval a requester asks when the job
	// names none: three missed (MissedHeartbeats) make a lease lost after
	// 1.5 s, so a dead provider is noticed within 2 s.
	DefaultHeartbeat = 500 * time.Millisecond
	// MissedHeartbeats is how many intervals without a Status make a lease
	// lost (SPEC 6.3).
	MissedHeartbeats = 3
	// DefaultPlacementTimeout is how long a requester keeps trying to
	// place a job that names no placement_timeout: while every fitting
	// provider is full, the job waits for capacity that long.
	DefaultPlacementTimeout = 2 * time.Minute
)

// HeartbeatInRange reports whether a heartbeat interval in milliseconds is
// within MinHeartbeat and MaxHeartbeat.
func HeartbeatInRange(ms uint64) bool {
	return ms >= uint64(MinHeartbeat/time.Millisecond) && ms <= uint64(MaxHeartbeat/time.Millisecond)
}

// FieldError is a job field that breaks a rule of SPEC 5. Path names the field
// as in cuivre.proto, from the job down: "task.resources.memory_bytes",
// "constraints[1]", "task.env[0].name"; it is empty for the job as a whole.
//
// A FieldError unwraps to an *Error of its Code, so errors.Is(err, ErrMalformed)
// (or ErrUnsupported for a job version) holds, and CodeOf and ToPB see the code.
type FieldError struct {
	Path string
	Msg  string
	// Code is CODE_MALFORMED, or CODE_UNSUPPORTED_VERSION for an unknown job
	// version; the zero value reads as CODE_MALFORMED.
	Code Code
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Unwrap returns the *Error of the field error's code, with its message.
func (e *FieldError) Unwrap() error {
	code := e.Code
	if code == pb.Code_CODE_UNSPECIFIED {
		code = CodeMalformed
	}
	return &Error{Code: code, Msg: e.Error()}
}

// ValidateJob checks a job in its canonical wire form against the rules of
// SPEC 5 and returns the first *FieldError found, or nil. It never panics, on
// any input: nil messages and unknown enum values are reported as errors.
func ValidateJob(j *pb.Job) error {
	if errs := CheckJob(j, nil); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// CheckJob returns every rule the job breaks, in field order, where
// ValidateJob returns the first. An unsupported version is reported alone: the
// other rules are those of version 1. name, if not nil, says how a message
// refers to another field, given its path (the job spec parser names it by its
// line in the document).
func CheckJob(j *pb.Job, name func(path string) string) []*FieldError {
	c := checker{name: name}
	if c.name == nil {
		c.name = func(path string) string { return path }
	}
	if j == nil {
		c.add("", "no job")
		return c.errs
	}
	if j.Version != JobVersion {
		c.errs = append(c.errs, &FieldError{Path: "version", Code: pb.Code_CODE_UNSUPPORTED_VERSION,
			Msg: fmt.Sprintf("%d is not supported: use version %d", j.Version, JobVersion)})
		return c.errs
	}
	c.jobName(j.Name)
	switch j.Type {
	case pb.JobType_JOB_TYPE_BATCH, pb.JobType_JOB_TYPE_SERVICE:
	default:
		c.add("type", "%s is not a job type: use batch or service", j.Type)
	}
	if j.Count < 1 || j.Count > MaxJobCount {
		c.add("count", "%d is out of range: use 1 to %d instances", j.Count, MaxJobCount)
	}
	if j.Replicas < 1 || j.Replicas > MaxJobReplicas {
		c.add("replicas", "%d is out of range: use 1 to %d replicas", j.Replicas, MaxJobReplicas)
	}
	switch j.Entropy {
	case pb.Entropy_ENTROPY_DERIVED:
	case pb.Entropy_ENTROPY_HOST:
		if j.Replicas > 1 {
			c.add("entropy", "host entropy with %d replicas: replicas compare their outputs, which host entropy makes differ; use 1 replica, or derived entropy", j.Replicas)
		}
	default:
		c.add("entropy", "%s is not an entropy source: use derived or host", j.Entropy)
	}
	if hb := j.HeartbeatMs; hb != 0 && !HeartbeatInRange(hb) {
		c.add("heartbeat_ms", "%d ms is out of range: use %v to %v, or leave it out for the requester's default", hb, MinHeartbeat, MaxHeartbeat)
	}
	if pt := j.PlacementTimeoutMs; pt > uint64(MaxPlacementTimeout/time.Millisecond) {
		c.add("placement_timeout_ms", "%d ms is out of range: use at most %v, or leave it out for the requester's default", pt, MaxPlacementTimeout)
	}
	c.task(j.Task)
	c.constraints(j.Constraints)
	c.affinities(j.Affinities)
	c.spread(j.Spread)
	if p := j.MaxPrice; p != nil && !IsCurrencyCode(p.Currency) {
		c.add("max_price.currency", "%s is not a currency: use a 3-letter upper-case ISO 4217 code such as EUR", Quote(p.Currency))
	}
	if n := len(j.Nonce); n != 0 && n != NonceSize {
		c.add("nonce", "%d bytes: a nonce is empty or exactly %d bytes", n, NonceSize)
	}
	if n := proto.Size(j); n > MaxJobSize {
		c.add("", "the job encodes to %d bytes: at most %d fit in a lease (shorten args, env or stdin)", n, MaxJobSize)
	}
	return c.errs
}

// checker collects field errors.
type checker struct {
	errs []*FieldError
	name func(path string) string
}

func (c *checker) add(path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) jobName(name string) {
	switch {
	case name == "":
		c.add("name", "missing: name the job with 1 to %d characters a-z, 0-9 and '-'", MaxJobName)
	case len(name) > MaxJobName:
		c.add("name", "%d characters is too long: use at most %d", len(name), MaxJobName)
	case name[0] < 'a' || name[0] > 'z':
		c.add("name", "%q must start with a lower-case letter", name)
	case name[len(name)-1] == '-':
		c.add("name", "%q must not end with '-'", name)
	default:
		if i := strings.IndexFunc(name, func(r rune) bool { return !isLower(r) && !isDigit(r) && r != '-' }); i >= 0 {
			r, _ := utf8.DecodeRuneInString(name[i:])
			c.add("name", "%q: character %q not allowed: use a-z, 0-9 and '-'", name, r)
		}
	}
}

func (c *checker) task(t *pb.Task) {
	if t == nil {
		c.add("task", "missing: a job needs a task")
		return
	}
	if t.Engine != "wasm" {
		c.add("task.engine", "%s is not supported: use wasm", Quote(t.Engine))
	}
	if len(t.ModuleCid) == 0 {
		c.add("task.module_cid", "missing: give the CID of the module")
	} else if err := CheckCID(t.ModuleCid); err != nil {
		c.add("task.module_cid", "not a CIDv1 raw sha2-256 (%v)", err)
	}
	if len(t.Args) > MaxJobArgs {
		c.add("task.args", "%d arguments: use at most %d", len(t.Args), MaxJobArgs)
	} else {
		for i, a := range t.Args {
			if msg := badText(a); msg != "" {
				c.add(fmt.Sprintf("task.args[%d]", i), "%s", msg)
			}
		}
	}
	c.env(t.Env)
	if len(t.Stdin) > MaxStdin {
		c.add("task.stdin", "%d bytes: use at most %d bytes (%d KiB)", len(t.Stdin), MaxStdin, MaxStdin>>10)
	}
	if r := t.Resources; r == nil {
		c.add("task.resources", "missing: a task needs resources")
	} else {
		if r.CpuMillis < 1 {
			c.add("task.resources.cpu_millis", "0: ask for at least 1 millicore")
		}
		if r.MemoryBytes < MinJobMemory || r.MemoryBytes > MaxJobMemory {
			c.add("task.resources.memory_bytes", "%s is out of range: use 1Mi to 1Ti", FormatBytes(r.MemoryBytes))
		}
		if r.ScratchBytes > MaxJobScratch {
			c.add("task.resources.scratch_bytes", "%s is too much: use at most 64Gi", FormatBytes(r.ScratchBytes))
		}
	}
	c.inputs(t)
	c.outputs(t.Outputs, t.Inputs)
	if ceiling := uint64(MaxJobTimeout / time.Millisecond); t.TimeoutMs < 1 || t.TimeoutMs > ceiling {
		d := fmt.Sprintf("%d ms", t.TimeoutMs)
		if t.TimeoutMs > 0 && t.TimeoutMs <= 2*ceiling {
			d = (time.Duration(t.TimeoutMs) * time.Millisecond).String()
		}
		c.add("task.timeout_ms", "%s is out of range: use 1ms to 720h (30 days)", d)
	}
}

// inputs checks a task's inputs: paths, CIDs, and a total size within the
// scratch area, which they are counted against.
func (c *checker) inputs(t *pb.Task) {
	in := t.Inputs
	if len(in) > MaxJobInputs {
		c.add("task.inputs", "%d inputs: use at most %d", len(in), MaxJobInputs)
		return
	}
	var total uint64
	for i, e := range in {
		path := fmt.Sprintf("task.inputs[%d]", i)
		if e == nil {
			c.add(path, "empty input")
			continue
		}
		if msg := badPath(e.Path); msg != "" {
			c.add(path+".path", "%s", msg)
		} else {
			var before []string
			for _, f := range in[:i] {
				if f != nil {
					before = append(before, f.Path)
				}
			}
			if msg := pathOrder(before, e.Path, "input"); msg != "" {
				c.add(path+".path", "%s", msg)
			}
		}
		if len(e.Cid) == 0 {
			c.add(path+".cid", "missing: give the CID of the input's root")
		} else if err := CheckDataCID(e.Cid); err != nil {
			c.add(path+".cid", "not a CIDv1 dag-pb or raw sha2-256 (%v)", err)
		}
		if total+e.Size < total {
			total = math.MaxUint64
		} else {
			total += e.Size
		}
	}
	if r := t.Resources; r != nil && total > r.ScratchBytes {
		c.add("task.inputs", "inputs take %s, more than the %s of scratch that holds them: ask for more scratch",
			FormatBytes(total), FormatBytes(r.ScratchBytes))
	}
}

// outputs checks a task's output paths, which may not lie inside an input.
func (c *checker) outputs(out []string, in []*pb.Input) {
	if len(out) > MaxJobOutputs {
		c.add("task.outputs", "%d outputs: use at most %d", len(out), MaxJobOutputs)
		return
	}
	for i, p := range out {
		path := fmt.Sprintf("task.outputs[%d]", i)
		if msg := badPath(p); msg != "" {
			c.add(path, "%s", msg)
			continue
		}
		if msg := pathOrder(out[:i], p, "output"); msg != "" {
			c.add(path, "%s", msg)
			continue
		}
		for _, e := range in {
			if e != nil && (p == e.Path || strings.HasPrefix(p, e.Path+"/")) {
				c.add(path, "%s is inside the input %s, which the task cannot write", Quote(p), Quote(e.Path))
				break
			}
		}
	}
}

// badPath returns why p is not a path a task may name in its working
// directory (SPEC 5.2), or "".
func badPath(p string) string {
	switch {
	case p == "":
		return "empty: give a path relative to the working directory"
	case len(p) > MaxJobPath:
		return fmt.Sprintf("%d bytes: use at most %d", len(p), MaxJobPath)
	case badText(p) != "":
		return badText(p)
	case strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%s is absolute: give a path relative to the working directory", Quote(p))
	}
	for _, name := range strings.Split(p, "/") {
		switch {
		case name == "" || name == ".":
			return fmt.Sprintf("%s is not clean: write it without empty or \".\" names or a trailing \"/\"", Quote(p))
		case name == "..":
			return fmt.Sprintf("%s goes up with \"..\": a task sees only its working directory", Quote(p))
		case len(name) > MaxPathName:
			return fmt.Sprintf("a name of %d bytes: use at most %d", len(name), MaxPathName)
		}
	}
	return ""
}

// pathOrder returns why path p cannot follow the paths before it in a list
// of distinct, disjoint paths sorted in byte order, or "". A path inside
// another need not be next to it ("a", "a-b", "a/b").
func pathOrder(before []string, p, what string) string {
	for _, a := range before {
		if badPath(a) != "" {
			continue
		}
		switch {
		case a == p:
			return fmt.Sprintf("%s appears twice: give each %s once", Quote(p), what)
		case strings.HasPrefix(p, a+"/"):
			return fmt.Sprintf("%s is inside the %s %s: give one or the other", Quote(p), what, Quote(a))
		case strings.HasPrefix(a, p+"/"):
			return fmt.Sprintf("%s holds the %s %s: give one or the other", Quote(p), what, Quote(a))
		}
	}
	if n := len(before); n > 0 && p < before[n-1] {
		return fmt.Sprintf("%s comes after %s: sort %ss by path", Quote(p), Quote(before[n-1]), what)
	}
	return ""
}

func (c *checker) env(env []*pb.EnvVar) {
	if len(env) > MaxJobEnv {
		c.add("task.env", "%d variables: use at most %d", len(env), MaxJobEnv)
		return
	}
	for i, e := range env {
		path := fmt.Sprintf("task.env[%d]", i)
		if e == nil {
			c.add(path, "empty variable")
			continue
		}
		if !isEnvName(e.Name) {
			c.add(path+".name", "%s is not a variable name: use letters, digits and '_', not starting with a digit", Quote(e.Name))
		} else if i > 0 && env[i-1] != nil && e.Name <= env[i-1].Name {
			if e.Name == env[i-1].Name {
				c.add(path+".name", "%s appears twice: give each variable once", Quote(e.Name))
			} else {
				c.add(path+".name", "%s comes after %s: sort variables by name", Quote(e.Name), Quote(env[i-1].Name))
			}
		}
		if msg := badText(e.Value); msg != "" {
			c.add(path+".value", "%s", msg)
		}
	}
}

func (c *checker) constraints(cs []*pb.Constraint) {
	if len(cs) > MaxJobSelectors {
		c.add("constraints", "%d constraints: use at most %d", len(cs), MaxJobSelectors)
		return
	}
	before := len(c.errs)
	for i, s := range cs {
		path := fmt.Sprintf("constraints[%d]", i)
		if s == nil {
			c.add(path, "empty constraint")
			continue
		}
		c.selector(path, s.Key, s.Op, s.Values)
	}
	if len(c.errs) > before {
		return // the set logic needs well-formed constraints
	}
	for _, cf := range conflicts(cs) {
		c.add(fmt.Sprintf("constraints[%d]", cf.at), "%s", cf.message(func(i int) string { return c.name(fmt.Sprintf("constraints[%d]", i)) }))
	}
}

func (c *checker) affinities(as []*pb.Affinity) {
	if len(as) > MaxJobSelectors {
		c.add("affinities", "%d affinities: use at most %d", len(as), MaxJobSelectors)
		return
	}
	for i, a := range as {
		path := fmt.Sprintf("affinities[%d]", i)
		if a == nil {
			c.add(path, "empty affinity")
			continue
		}
		c.selector(path, a.Key, a.Op, a.Values)
		if a.Weight == 0 || a.Weight < -MaxWeight || a.Weight > MaxWeight {
			c.add(path+".weight", "%d is out of range: use -%d to %d, not 0 (negative repels)", a.Weight, MaxWeight, MaxWeight)
		}
	}
}

func (c *checker) spread(ss []*pb.Spread) {
	if len(ss) > MaxJobSpread {
		c.add("spread", "%d attributes: use at most %d", len(ss), MaxJobSpread)
		return
	}
	seen := make(map[string]int, len(ss))
	for i, s := range ss {
		path := fmt.Sprintf("spread[%d]", i)
		if s == nil {
			c.add(path, "empty spread")
			continue
		}
		if err := CheckLabelKey(s.Attribute); err != nil {
			c.add(path+".attribute", "%v", err)
		} else if j, dup := seen[s.Attribute]; dup {
			c.add(path+".attribute", "%q is already spread over by %s: give each attribute once", s.Attribute, c.name(fmt.Sprintf("spread[%d]", j)))
		} else {
			seen[s.Attribute] = i
		}
		if s.Weight < 1 || s.Weight > MaxWeight {
			c.add(path+".weight", "%d is out of range: use 1 to %d", s.Weight, MaxWeight)
		}
	}
}

// selector checks the parts shared by constraints and affinities.
func (c *checker) selector(path, key string, op pb.Operator, values []string) {
	if err := CheckLabelKey(key); err != nil {
		c.add(path+".key", "%v", err)
	}
	bad := ""
	switch op {
	case pb.Operator_OPERATOR_IN, pb.Operator_OPERATOR_NOT_IN:
		if len(values) < 1 {
			bad = "in and notin need at least one value"
		}
	case pb.Operator_OPERATOR_EQUAL, pb.Operator_OPERATOR_NOT_EQUAL:
		if len(values) != 1 {
			bad = fmt.Sprintf("= and != need exactly one value, got %d", len(values))
		}
	case pb.Operator_OPERATOR_EXISTS:
		if len(values) != 0 {
			bad = fmt.Sprintf("exists takes no value, got %d", len(values))
		}
	default:
		c.add(path+".op", "%s is not an operator: use in, notin, =, != or exists", op)
		return
	}
	if bad != "" {
		c.add(path+".values", "%s", bad)
		return
	}
	if len(values) > MaxSelectorValues {
		c.add(path+".values", "%d values: use at most %d", len(values), MaxSelectorValues)
		return
	}
	for i, v := range values {
		vpath := fmt.Sprintf("%s.values[%d]", path, i)
		if err := CheckLabelValue(v); err != nil {
			c.add(vpath, "%v", err)
		} else if i > 0 && v == values[i-1] {
			c.add(vpath, "%q appears twice: give each value once", v)
		} else if i > 0 && v < values[i-1] {
			c.add(vpath, "%q comes after %q: sort the values", v, values[i-1])
		}
	}
}

// conflict is a hard constraint that leaves no value possible for its key,
// given the earlier constraints on the same key.
type conflict struct {
	at   int    // index of the constraint that emptied the set
	key  string // the label key
	with []int  // indexes of the earlier constraints it contradicts
}

func (cf conflict) message(name func(int) string) string {
	parts := make([]string, len(cf.with))
	for i, w := range cf.with {
		parts[i] = name(w)
	}
	return fmt.Sprintf("impossible constraint: no value of %q satisfies it together with %s: remove or relax one of them",
		cf.key, strings.Join(parts, ", "))
}

// conflicts runs the set logic of SPEC 5 over well-formed hard constraints:
// per key, the allowed values start as "any", in and = intersect them, notin
// and != remove from them, exists changes nothing. A key whose set becomes
// empty is reported once, at the constraint that emptied it.
func conflicts(cs []*pb.Constraint) []conflict {
	type keyState struct {
		allowed  map[string]bool // nil: any value not in excluded
		excluded map[string]bool
		seen     []int // earlier constraints on the key, exists aside
		dead     bool
	}
	keys := make(map[string]*keyState)
	var out []conflict
	for i, c := range cs {
		s := keys[c.Key]
		if s == nil {
			s = &keyState{excluded: make(map[string]bool)}
			keys[c.Key] = s
		}
		if s.dead {
			continue
		}
		switch c.Op {
		case pb.Operator_OPERATOR_IN, pb.Operator_OPERATOR_EQUAL:
			next := make(map[string]bool, len(c.Values))
			for _, v := range c.Values {
				if (s.allowed == nil && !s.excluded[v]) || s.allowed[v] {
					next[v] = true
				}
			}
			s.allowed = next
		case pb.Operator_OPERATOR_NOT_IN, pb.Operator_OPERATOR_NOT_EQUAL:
			for _, v := range c.Values {
				if s.allowed == nil {
					s.excluded[v] = true
				} else {
					delete(s.allowed, v)
				}
			}
		default:
			continue // exists: any value will do
		}
		if s.allowed != nil && len(s.allowed) == 0 {
			s.dead = true
			out = append(out, conflict{at: i, key: c.Key, with: slices.Clone(s.seen)})
		}
		s.seen = append(s.seen, i)
	}
	return out
}

// badText returns why s cannot be passed to a WASI guest as an argument or an
// environment value, or "".
func badText(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL byte, which a WASI guest cannot receive"
	}
	return ""
}

func isEnvName(s string) bool {
	if s == "" || isDigit(rune(s[0])) {
		return false
	}
	for _, r := range s {
		if !isLower(r) && !(r >= 'A' && r <= 'Z') && !isDigit(r) && r != '_' {
			return false
		}
	}
	return true
}

func isLower(r rune) bool { return r >= 'a' && r <= 'z' }
func isDigit(r rune) bool { return r >= '0' && r <= '9' }
