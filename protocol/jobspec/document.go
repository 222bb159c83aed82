package jobspec

import (
	"bytes"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol"
)

// Document is a job spec document (SPEC 5) to write, as a program that
// builds a spec rather than parses one fills it: the common fields, under
// the spec's own keys, so that what it writes is what a customer would have
// and ParseJobSpec reads. Fields left empty take the spec's defaults.
type Document struct {
	Version          int          `yaml:"version"`
	Name             string       `yaml:"name"`
	Type             string       `yaml:"type,omitempty"`
	Count            uint32       `yaml:"count,omitempty"`
	Replicas         uint32       `yaml:"replicas,omitempty"`
	Task             TaskDocument `yaml:"task"`
	Constraints      []string     `yaml:"constraints,omitempty"`
	PlacementTimeout string       `yaml:"placement_timeout,omitempty"`
}

// TaskDocument is a Document's task section.
type TaskDocument struct {
	Module    string            `yaml:"module"`
	Args      []string          `yaml:"args,omitempty"`
	Env       map[string]string `yaml:"env,omitempty"`
	Inputs    []InputDocument   `yaml:"inputs,omitempty"`
	Outputs   []string          `yaml:"outputs,omitempty"`
	Resources ResourcesDocument `yaml:"resources,omitempty"`
}

// InputDocument is one of a task's inputs: Source, a path or a CID,
// mounted at Path.
type InputDocument struct {
	Path   string `yaml:"path"`
	Source string `yaml:"source"`
}

// ResourcesDocument holds quantities as the spec writes them ("500m", "128Mi",
// "30s"); empty ones take the spec's defaults.
type ResourcesDocument struct {
	CPU     string `yaml:"cpu,omitempty"`
	Memory  string `yaml:"memory,omitempty"`
	Scratch string `yaml:"scratch,omitempty"`
	Timeout string `yaml:"timeout,omitempty"`
}

// YAML is the document's text, indented as the examples are.
func (d Document) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	err := enc.Close()
	return b.Bytes(), err
}

// NameFrom makes a job name from s, a file's name or a job's title: lower
// case, every run of other characters than a-z and 0-9 one '-', starting
// with a letter, at most protocol.MaxJobName long; def when nothing is left.
func NameFrom(s, def string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9' && b.Len() > 0:
			if dash {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		case b.Len() > 0:
			dash = true
		}
	}
	name := b.String()
	if len(name) > protocol.MaxJobName {
		name = strings.TrimRight(name[:protocol.MaxJobName], "-")
	}
	if name == "" {
		return def
	}
	return name
}
