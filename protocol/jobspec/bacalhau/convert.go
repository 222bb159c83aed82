package bacalhau

import (
	"bytes"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
)

// maxJobSize bounds the Bacalhau document Convert reads: an inline module
// may make it larger than a cuivre spec, not larger than this.
const maxJobSize = 16 << 20

// Note is one thing of the Bacalhau job that the cuivre spec does not
// carry, or carries otherwise than Bacalhau would run it.
type Note struct {
	Field string // where in the Bacalhau job: "Tasks[0].Publisher"
	Msg   string // what became of it, and what to do
}

func (n Note) String() string { return n.Field + ": " + n.Msg }

// Convert reads a Bacalhau v1 job, YAML or JSON, and returns the cuivre
// job spec of its one wasm task and the notes of what it did not carry
// over, in the order of the fields. module, if not empty, is the module to
// run instead of the task's entry module (a path or a CID): for an entry
// module cuivre cannot fetch, such as a URL. An error means there is no
// cuivre job to write: not a Bacalhau job, another engine than wasm, no
// module. The caller owns the results.
func Convert(data []byte, module string) (jobspec.Document, []Note, error) {
	if len(data) > maxJobSize {
		return jobspec.Document{}, nil, fmt.Errorf("%d bytes: over the %d a Bacalhau job spec is read up to", len(data), maxJobSize)
	}
	var j job
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&j); err != nil {
		return jobspec.Document{}, nil, notAJob(err)
	}
	c := &converter{doc: jobspec.Document{Version: protocol.JobVersion}}
	c.job(j)
	if len(j.Tasks) != 1 {
		return jobspec.Document{}, nil, fmt.Errorf("Tasks: %d tasks: a cuivre job runs one module, so import a job of one task", len(j.Tasks))
	}
	if err := c.task("Tasks[0]", j.Tasks[0], module); err != nil {
		return jobspec.Document{}, nil, err
	}
	return c.doc, c.notes, nil
}

// notAJob explains a document that is no Bacalhau v1 job.
func notAJob(err error) error {
	if strings.Contains(err.Error(), "APIVersion") || strings.Contains(err.Error(), "field Spec ") {
		return fmt.Errorf("a job spec of Bacalhau before v1.0 (APIVersion, Spec): import the v1 form of it (Name, Type, Tasks): %w", err)
	}
	return fmt.Errorf("not a Bacalhau v1 job spec (Name, Type, Count, Tasks...): %w", err)
}

// converter builds the cuivre document and collects the notes.
type converter struct {
	doc   jobspec.Document
	notes []Note
}

func (c *converter) note(field, format string, args ...any) {
	c.notes = append(c.notes, Note{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// job converts what is the job's, not its task's.
func (c *converter) job(j job) {
	c.doc.Name = jobspec.NameFrom(j.Name, "imported")
	if j.Name != c.doc.Name {
		c.note("Name", "%q becomes %q: a cuivre job's name is a-z, 0-9 and '-'", j.Name, c.doc.Name)
	}
	switch t := strings.ToLower(j.Type); t {
	case "", "batch":
	case "service":
		c.doc.Type = "service"
	default:
		c.note("Type", "%s runs on every matching node in Bacalhau; cuivre places Count instances: imported as a batch job", t)
	}
	if j.Count != nil {
		switch n := *j.Count; {
		case n < 1:
			c.note("Count", "%d stops a job in Bacalhau; cuivre runs at least one instance: imported as 1", n)
		default:
			c.doc.Count = uint32(min(n, protocol.MaxJobCount+1)) // the spec's own check says what is too many
		}
	}
	if j.Namespace != "" && j.Namespace != "default" {
		c.note("Namespace", "%s: cuivre jobs have no namespace; each is its customer's, by the key that signs it", j.Namespace)
	}
	if j.Priority != 0 {
		c.note("Priority", "%d: cuivre jobs have no priority; providers rank them by price", j.Priority)
	}
	c.keys("Meta", j.Meta)
	c.keys("Labels", j.Labels)
	for i, s := range j.Constraints {
		c.constraint(fmt.Sprintf("Constraints[%d]", i), s)
	}
}

// keys notes a map cuivre has no place for.
func (c *converter) keys(field string, m map[string]string) {
	if len(m) > 0 {
		c.note(field, "not carried (%s): a cuivre job carries no metadata or labels of its own", strings.Join(slices.Sorted(maps.Keys(m)), ", "))
	}
}

// operators are the Bacalhau selector operators cuivre has, by their
// spelling in cuivre's constraints.
var operators = map[string]string{"in": "in", "notin": "notin", "=": "=", "==": "=", "!=": "!=", "exists": "exists"}

// constraint carries a label selector as a cuivre constraint, written as a
// customer would ("region in (fr, be)"), if cuivre has its operator and
// its key and values are cuivre labels.
func (c *converter) constraint(field string, s selector) {
	op, ok := operators[strings.ToLower(s.Operator)]
	if !ok {
		c.note(field, "%s %s: cuivre constraints have in, notin, =, != and exists, not %s: not carried", s.Key, s.Operator, s.Operator)
		return
	}
	if err := protocol.CheckLabelKey(s.Key); err != nil {
		c.note(field, "key %q is no cuivre label key (%v): not carried; cuivre providers' labels are such as jurisdiction, region", s.Key, err)
		return
	}
	for _, v := range s.Values {
		if err := protocol.CheckLabelValue(v); err != nil {
			c.note(field, "%s: value %q is no cuivre label value (%v): not carried", s.Key, v, err)
			return
		}
	}
	switch {
	case op == "exists":
		c.doc.Constraints = append(c.doc.Constraints, s.Key+" exists")
	case op == "=" || op == "!=":
		if len(s.Values) != 1 {
			c.note(field, "%s %s needs one value, has %d: not carried", s.Key, s.Operator, len(s.Values))
			return
		}
		c.doc.Constraints = append(c.doc.Constraints, s.Key+" "+op+" "+s.Values[0])
	default:
		c.doc.Constraints = append(c.doc.Constraints, s.Key+" "+op+" ("+strings.Join(s.Values, ", ")+")")
	}
}

// task converts the job's one task.
func (c *converter) task(field string, t task, module string) error {
	if t.Engine == nil || !strings.EqualFold(t.Engine.Type, "wasm") {
		typ := "none"
		if t.Engine != nil {
			typ = t.Engine.Type
		}
		return fmt.Errorf("%s.Engine: %s: cuivre runs WebAssembly modules (WASI preview 1) only: build the program for wasip1 (GOOS=wasip1, wasm32-wasip1) and import a job of the wasm engine", field, typ)
	}
	e, err := c.engine(field+".Engine.Params", t.Engine.Params)
	if err != nil {
		return err
	}
	inputs := slices.Clone(t.InputSources)
	if err := c.module(field, e, &inputs, module); err != nil {
		return err
	}
	for i, in := range t.InputSources {
		if slices.ContainsFunc(inputs, func(x inputSource) bool { return x.Target == in.Target && x.Alias == in.Alias }) {
			c.input(fmt.Sprintf("%s.InputSources[%d]", field, i), in)
		}
	}
	c.env(field+".Env", t.Env)
	for i, r := range t.ResultPaths {
		c.result(fmt.Sprintf("%s.ResultPaths[%d]", field, i), r)
	}
	c.publisher(field+".Publisher", t.Publisher)
	c.resources(field+".Resources", t.Resources)
	c.network(field+".Network", t.Network)
	c.timeouts(field+".Timeouts", t.Timeouts)
	c.keys(field+".Meta", t.Meta)
	return nil
}

// engine is the wasm engine's parameters.
type engine struct {
	entry any // a target (string) or an input source (a map)
}

// engine reads the wasm engine's parameters: the arguments and environment
// go to the task, the entry module is returned for module to find.
func (c *converter) engine(field string, p map[string]any) (engine, error) {
	var e engine
	for _, k := range slices.Sorted(maps.Keys(p)) {
		v := p[k]
		switch k {
		case "EntryModule":
			e.entry = v
		case "Entrypoint", "EntryPoint":
			if s, _ := v.(string); s != "" && s != "_start" {
				c.note(field+"."+k, "%s: cuivre runs a WASI command from _start only: not carried", s)
			}
		case "Parameters":
			if err := decodeAs(v, &c.doc.Task.Args); err != nil {
				return e, fmt.Errorf("%s.Parameters: %w", field, err)
			}
		case "EnvironmentVariables":
			var env map[string]string
			if err := decodeAs(v, &env); err != nil {
				return e, fmt.Errorf("%s.EnvironmentVariables: %w", field, err)
			}
			c.env(field+".EnvironmentVariables", env)
		case "ImportModules":
			if l, _ := v.([]any); len(l) > 0 {
				c.note(field+".ImportModules", "%d modules: cuivre links no modules to the entry module: not carried", len(l))
			}
		default:
			c.note(field+"."+k, "no such parameter of cuivre's wasm engine: not carried")
		}
	}
	if e.entry == nil {
		return e, fmt.Errorf("%s.EntryModule: missing: name the module to run", field)
	}
	return e, nil
}

// decodeAs reads a value of a generic map as the type of out.
func decodeAs(v, out any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(b, out)
}

// module sets the task's module from the entry module, an input source or
// the target of one of inputs, which it then removes from inputs; override,
// if given, is the module instead.
func (c *converter) module(field string, e engine, inputs *[]inputSource, override string) error {
	var src inputSource
	where := field + ".Engine.Params.EntryModule"
	switch entry := e.entry.(type) {
	case string:
		i := slices.IndexFunc(*inputs, func(in inputSource) bool {
			return strings.TrimPrefix(in.Target, "/") == strings.TrimPrefix(entry, "/") || (in.Alias != "" && in.Alias == entry)
		})
		if i < 0 {
			return fmt.Errorf("%s: %q is the target of none of the task's InputSources: add the module's input source, or give the module with --module", where, entry)
		}
		src, where = (*inputs)[i], fmt.Sprintf("%s.InputSources[%d]", field, i)
		*inputs = slices.Delete(*inputs, i, i+1)
	default:
		if err := decodeAs(entry, &src); err != nil {
			return fmt.Errorf("%s: neither an input source's target nor an input source: %w", where, err)
		}
	}
	if override != "" {
		c.doc.Task.Module = override
		return nil
	}
	ref, why := c.source(where, src.Source)
	if ref == "" {
		return fmt.Errorf("%s: the module: %s; give it as a file or a CID with --module", where, why)
	}
	c.doc.Task.Module = ref
	return nil
}

// source is what cuivre can name an input by, a CID or a local path; or
// "" and why not.
func (c *converter) source(field string, s *specConfig) (ref, why string) {
	if s == nil {
		return "", "no Source"
	}
	str := func(k string) string { v, _ := s.Params[k].(string); return v }
	switch t := strings.ToLower(s.Type); t {
	case "ipfs":
		if str("CID") == "" {
			return "", "an ipfs source without a CID"
		}
		return str("CID"), ""
	case "local", "localdirectory":
		p := str("SourcePath")
		if p == "" {
			return "", "a local source without a SourcePath"
		}
		c.note(field, "%s is read from this machine when the job is run, not from the provider's, as Bacalhau would", p)
		if !path.IsAbs(p) && !strings.HasPrefix(p, ".") {
			p = "./" + p
		}
		return p, ""
	case "urldownload":
		return "", fmt.Sprintf("a URL (%s) cuivre does not download", str("URL"))
	case "inline":
		return "", "inline data, which a cuivre spec does not hold"
	default:
		return "", fmt.Sprintf("a %s source, which cuivre cannot fetch", s.Type)
	}
}

// input carries one of the task's inputs, moved into the working directory.
func (c *converter) input(field string, in inputSource) {
	ref, why := c.source(field, in.Source)
	if ref == "" {
		c.note(field, "%s: not carried: add the data with `cuivre data add` and give its CID", why)
		return
	}
	p := workPath(in.Target)
	if p == "" {
		p = workPath(in.Alias)
	}
	if p == "" {
		c.note(field, "no Target: not carried")
		return
	}
	if p != in.Target {
		c.note(field, "mounted at %s in the working directory, not at %s: cuivre mounts inputs there; pass the module the new path", p, in.Target)
	}
	c.doc.Task.Inputs = append(c.doc.Task.Inputs, jobspec.InputDocument{Path: p, Source: ref})
}

// workPath is a Bacalhau path as a path in the job's working directory.
func workPath(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	return p
}

// env carries environment variables; a value Bacalhau reads from its
// host's environment ("env:NAME") is not carried.
func (c *converter) env(field string, env map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		if host, ok := strings.CutPrefix(v, "env:"); ok {
			c.note(field+"."+k, "read from the Bacalhau node's %s: not carried; give its value in the spec", host)
			continue
		}
		if c.doc.Task.Env == nil {
			c.doc.Task.Env = map[string]string{}
		}
		c.doc.Task.Env[k] = v
	}
}

// result carries a result path as an output of the working directory.
func (c *converter) result(field string, r resultPath) {
	p := workPath(r.Path)
	if p == "" {
		c.note(field, "%s is the whole file system: not carried; with no outputs a cuivre job's output is its working directory", r.Path)
		return
	}
	if p != r.Path {
		c.note(field, "%s becomes %s in the working directory, where cuivre outputs are", r.Path, p)
	}
	c.doc.Task.Outputs = append(c.doc.Task.Outputs, p)
}

func (c *converter) publisher(field string, p *specConfig) {
	if p != nil && p.Type != "" && !strings.EqualFold(p.Type, "noop") {
		c.note(field, "%s: not carried: the output stays with its providers, by CID, and `cuivre job get` fetches it", p.Type)
	}
}

func (c *converter) resources(field string, r *resources) {
	if r == nil {
		return
	}
	if r.CPU != "" {
		if _, err := protocol.ParseCPU(r.CPU); err != nil {
			c.note(field+".CPU", "%v: not carried, the default taken", err)
		} else {
			c.doc.Task.Resources.CPU = r.CPU
		}
	}
	c.doc.Task.Resources.Memory = c.bytes(field+".Memory", r.Memory)
	c.doc.Task.Resources.Scratch = c.bytes(field+".Disk", r.Disk)
	if g := strings.TrimSpace(r.GPU); g != "" && g != "0" {
		c.note(field+".GPU", "%s: cuivre providers run no GPU work: not carried", g)
	}
}

// byteUnits are Bacalhau's units of bytes (go-humanize's, any case) as
// cuivre's quantities write them.
var byteUnits = map[string]string{
	"": "", "b": "", "k": "k", "kb": "k", "ki": "Ki", "kib": "Ki", "m": "M", "mb": "M", "mi": "Mi", "mib": "Mi",
	"g": "G", "gb": "G", "gi": "Gi", "gib": "Gi", "t": "T", "tb": "T", "ti": "Ti", "tib": "Ti",
}

// bytes reads an amount of bytes as Bacalhau writes it ("1GB", "512mb",
// "256MiB") into a cuivre quantity; "" if none or not understood.
func (c *converter) bytes(field, s string) string {
	s = strings.ReplaceAll(s, " ", "")
	if s == "" {
		return ""
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	q, ok := byteUnits[strings.ToLower(s[i:])]
	q = s[:i] + q
	if _, err := protocol.ParseQuantity(q); !ok || err != nil {
		c.note(field, "%q: not an amount of bytes cuivre reads: not carried, the default taken", s)
		return ""
	}
	return q
}

func (c *converter) network(field string, n *network) {
	if n != nil && n.Type != "" && !strings.EqualFold(n.Type, "none") {
		c.note(field, "%s: cuivre jobs have no network: not carried", n.Type)
	}
}

func (c *converter) timeouts(field string, t *timeouts) {
	if t == nil {
		return
	}
	if t.ExecutionTimeout > 0 {
		c.doc.Task.Resources.Timeout = (time.Duration(t.ExecutionTimeout) * time.Second).String()
	}
	if t.QueueTimeout > 0 {
		q := time.Duration(t.QueueTimeout) * time.Second
		if q > protocol.MaxPlacementTimeout {
			c.note(field+".QueueTimeout", "%v: over the %v cuivre keeps trying to place a job: %v taken", q, protocol.MaxPlacementTimeout, protocol.MaxPlacementTimeout)
			q = protocol.MaxPlacementTimeout
		}
		c.doc.PlacementTimeout = q.String()
	}
	if t.TotalTimeout > 0 {
		c.note(field+".TotalTimeout", "%ds: cuivre bounds the placement and the run apart: not carried", t.TotalTimeout)
	}
}
