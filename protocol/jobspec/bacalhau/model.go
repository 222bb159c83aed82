package bacalhau

// The Bacalhau v1 job, as its YAML and JSON write it. Every field of its
// models is here, so that a key outside them is an error with its line
// rather than something dropped without a word; those set by Bacalhau's
// orchestrator (ID, State, Version...) are read and ignored.
type job struct {
	ID          string            `yaml:"ID"`
	Name        string            `yaml:"Name"`
	Namespace   string            `yaml:"Namespace"`
	Type        string            `yaml:"Type"`
	Priority    int               `yaml:"Priority"`
	Count       *int              `yaml:"Count"`
	Constraints []selector        `yaml:"Constraints"`
	Meta        map[string]string `yaml:"Meta"`
	Labels      map[string]string `yaml:"Labels"`
	Tasks       []task            `yaml:"Tasks"`
	State       any               `yaml:"State"`
	Version     uint64            `yaml:"Version"`
	Revision    uint64            `yaml:"Revision"`
	CreateTime  int64             `yaml:"CreateTime"`
	ModifyTime  int64             `yaml:"ModifyTime"`
}

type task struct {
	Name         string            `yaml:"Name"`
	Engine       *specConfig       `yaml:"Engine"`
	Publisher    *specConfig       `yaml:"Publisher"`
	Env          map[string]string `yaml:"Env"`
	Meta         map[string]string `yaml:"Meta"`
	InputSources []inputSource     `yaml:"InputSources"`
	ResultPaths  []resultPath      `yaml:"ResultPaths"`
	Resources    *resources        `yaml:"Resources"`
	Network      *network          `yaml:"Network"`
	Timeouts     *timeouts         `yaml:"Timeouts"`
}

// specConfig is Bacalhau's typed map: an engine, a publisher, a source.
type specConfig struct {
	Type   string         `yaml:"Type"`
	Params map[string]any `yaml:"Params"`
}

type inputSource struct {
	Source *specConfig `yaml:"Source"`
	Alias  string      `yaml:"Alias"`
	Target string      `yaml:"Target"`
}

type resultPath struct {
	Name string `yaml:"Name"`
	Path string `yaml:"Path"`
}

type resources struct {
	CPU    string `yaml:"CPU"`
	Memory string `yaml:"Memory"`
	Disk   string `yaml:"Disk"`
	GPU    string `yaml:"GPU"`
}

type network struct {
	Type    string   `yaml:"Type"`
	Domains []string `yaml:"Domains"`
	Ports   any      `yaml:"Ports"`
}

// timeouts are in seconds.
type timeouts struct {
	ExecutionTimeout int64 `yaml:"ExecutionTimeout"`
	QueueTimeout     int64 `yaml:"QueueTimeout"`
	TotalTimeout     int64 `yaml:"TotalTimeout"`
}

type selector struct {
	Key      string   `yaml:"Key"`
	Operator string   `yaml:"Operator"`
	Values   []string `yaml:"Values"`
}
