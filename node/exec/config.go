package exec

import (
	"errors"
	"fmt"
	"time"

	"github.com/cuivre/cuivre/protocol"
)

// Defaults of Config: what a zero field means.
const (
	// DefaultMaxMemoryBytes is also the most a 32-bit WebAssembly memory can
	// address.
	DefaultMaxMemoryBytes = 4 << 30
	DefaultMaxModuleBytes = 64 << 20
	// DefaultMaxOutputBytes is the protocol's largest scratch_bytes.
	DefaultMaxOutputBytes = protocol.MaxJobScratch
	DefaultMaxTimeout     = time.Hour
	DefaultMaxCompiled    = 64
)

// pageSize is the size of a WebAssembly memory page.
const pageSize = 64 << 10

// Config bounds an Executor. The zero value is usable: every zero field takes
// the default its comment names.
type Config struct {
	// CacheDir is a directory where wazero keeps compiled machine code, so a
	// restarted node does not compile its modules again. It must be private to
	// the node (say 0700 in its data directory): wazero loads native code from
	// it without checking it. "" keeps compiled code in memory only.
	CacheDir string `yaml:"cache_dir"`
	// MaxMemoryBytes is the most linear memory any module may declare or grow
	// to, and the most a RunSpec may ask for. At most and by default 4 GiB;
	// rounded down to whole 64 KiB pages, at least one.
	MaxMemoryBytes uint64 `yaml:"max_memory_bytes"`
	// MaxModuleBytes is the largest module Add accepts. Default 64 MiB.
	MaxModuleBytes uint64 `yaml:"max_module_bytes"`
	// MaxOutputBytes is the largest scratch area (RunSpec.ScratchBytes) a
	// run may ask for. The area's contents are files on the host's disk,
	// under ScratchDir, not in host memory: only its tree is (see the
	// package doc), so this bounds disk use. Default 64 GiB, the protocol's
	// largest scratch_bytes.
	MaxOutputBytes uint64 `yaml:"max_output_bytes"`
	// ScratchDir is where runs keep the contents of their scratch files,
	// in a private directory (0700) per run, made when the run starts and
	// removed when its Result.Scratch is closed. New creates it (0700) if
	// need be. It should be private to the node, say in its data directory.
	// "" means a private directory New makes under os.TempDir and Close
	// removes.
	ScratchDir string `yaml:"scratch_dir"`
	// MaxTimeout is the longest deadline a RunSpec may ask for. Default 1 h.
	MaxTimeout time.Duration `yaml:"max_timeout"`
	// MaxCompiled is how many compiled modules the executor keeps; the least
	// recently used beyond it is dropped (and compiled again, from CacheDir if
	// set, when next added). Default 64.
	MaxCompiled int `yaml:"max_compiled"`
	// CompileWorkers is how many goroutines compile one module's functions
	// in parallel. Default 1, so that compiling a new module does not starve
	// the jobs running on the node of CPU.
	CompileWorkers int `yaml:"compile_workers"`
	// Now reads the clock for Result.Started and Result.Duration. Default
	// time.Now.
	Now func() time.Time `yaml:"-"`
}

// Validate reports what is wrong with c, naming the field.
func (c Config) Validate() error {
	var errs []error
	if c.MaxMemoryBytes > DefaultMaxMemoryBytes {
		errs = append(errs, fmt.Errorf("exec config: max_memory_bytes %d: a 32-bit WebAssembly memory addresses at most %d", c.MaxMemoryBytes, uint64(DefaultMaxMemoryBytes)))
	}
	if c.MaxMemoryBytes != 0 && c.MaxMemoryBytes < pageSize {
		errs = append(errs, fmt.Errorf("exec config: max_memory_bytes %d: use at least one 64 KiB page (%d), or 0 for the default", c.MaxMemoryBytes, pageSize))
	}
	if c.MaxTimeout < 0 {
		errs = append(errs, fmt.Errorf("exec config: max_timeout %s: use a positive duration, or 0 for the default", c.MaxTimeout))
	}
	if c.CompileWorkers < 0 {
		errs = append(errs, fmt.Errorf("exec config: compile_workers %d: use a positive count, or 0 for the default", c.CompileWorkers))
	}
	if c.MaxCompiled < 0 {
		errs = append(errs, fmt.Errorf("exec config: max_compiled %d: use a positive count, or 0 for the default", c.MaxCompiled))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.MaxMemoryBytes == 0 {
		c.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	c.MaxMemoryBytes -= c.MaxMemoryBytes % pageSize
	if c.MaxModuleBytes == 0 {
		c.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.MaxCompiled == 0 {
		c.MaxCompiled = DefaultMaxCompiled
	}
	if c.CompileWorkers == 0 {
		c.CompileWorkers = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
