package exec

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// EnvVar is one environment variable a job sets.
type EnvVar struct {
	Name, Value string
}

// RunSpec is one run of a compiled module: everything the guest is granted.
type RunSpec struct {
	// Module is the CID of a module given to Add.
	Module cid.Cid
	// Args is the guest's argv; Args[0] is the job's name. Empty means the
	// module CID alone. No argument may hold a NUL byte.
	Args []string
	// Env is the guest's whole environment, in order: nothing of the host's
	// is added. A name is not empty and holds no "=" or NUL, a value no NUL.
	Env []EnvVar
	// Stdin is the guest's standard input.
	Stdin []byte
	// MemoryBytes is the ceiling of the guest's linear memory, at most
	// Config.MaxMemoryBytes; effectively rounded down to 64 KiB pages. Zero
	// means the job spec default, 256 MiB (protocol.DefaultMemory), or
	// Config.MaxMemoryBytes if lower.
	MemoryBytes uint64
	// Timeout bounds the run, counted from instantiation, at most
	// Config.MaxTimeout. Zero means the job spec default, 5 minutes
	// (protocol.DefaultTimeout), or Config.MaxTimeout if shorter.
	Timeout time.Duration
	// ScratchBytes caps the scratch area mounted at /scratch, at most
	// Config.MaxOutputBytes; the Inputs count against it. Zero is a real
	// cap, as a job may reserve no scratch (SPEC 5.2): the guest can then
	// create nothing there.
	ScratchBytes uint64
	// Inputs appear read-only in the scratch area (see Input).
	Inputs []Input
	// Stdout and Stderr receive the guest's output as it is written, from
	// the goroutine calling Run; nil discards it. The node streams them as
	// logs; a caller that also wants them whole can use an io.MultiWriter.
	Stdout, Stderr io.Writer
	// RealTime gives the guest the host's wall and monotonic clocks and real
	// sleeps, instead of deterministic fakes.
	RealTime bool
	// Random is the guest's random source (WASI random_get), read from the
	// goroutine calling Run. The node gives a job the stream its CID and
	// instance derive (protocol.JobRandom, SPEC 11), so that replicas agree,
	// or the host's entropy if the job asks it. Nil means the host's
	// crypto/rand: never wazero's fixed seed, which gives every run the same
	// bytes, so keys a guest makes would be known to all. A reader is
	// consumed by the run: give each run its own.
	Random io.Reader
}

// Reason says how a run ended.
type Reason string

// Reasons of a Result.
const (
	// ReasonExit: the guest exited by itself, with Result.ExitCode.
	ReasonExit Reason = "exit"
	// ReasonTimeout: the run was stopped at RunSpec.Timeout.
	ReasonTimeout Reason = "timeout"
	// ReasonMemory: the guest needed more memory than RunSpec.MemoryBytes,
	// to start or to grow, and did not then exit 0.
	ReasonMemory Reason = "memory"
	// ReasonScratch: a write past RunSpec.ScratchBytes was refused and the
	// guest did not then exit 0.
	ReasonScratch Reason = "scratch"
	// ReasonTrap: the guest trapped (unreachable, out-of-bounds access,
	// integer division by zero, ...).
	ReasonTrap Reason = "trap"
	// ReasonCanceled: the caller's context ended before the guest did.
	ReasonCanceled Reason = "canceled"
)

// Result is how one run ended and what it left in its scratch area.
type Result struct {
	Reason Reason
	// ExitCode is the guest's exit status when it exited (always for
	// ReasonExit, sometimes for ReasonMemory and ReasonScratch: a Go guest
	// out of memory exits 2), else -1.
	ExitCode int32
	// Code is the protocol code for a run that did not end by itself:
	// CODE_TIMEOUT, CODE_INSUFFICIENT_MEMORY or CODE_INSUFFICIENT_SCRATCH.
	// It is CODE_UNSPECIFIED for ReasonExit, whatever the exit status, and
	// for ReasonTrap and ReasonCanceled, which have no code of their own.
	Code pb.Code
	// Detail is a human-readable account of a run that did not end by exit.
	Detail string
	// Scratch is the scratch area the run left, without its inputs. It is
	// set whenever Run returns a Result, even with an error (ErrClosed, a
	// canceled context); it is nil only when Run refused to start. Its
	// files stay on the host's disk until the caller closes it.
	Scratch *Scratch
	// MemoryBytes is the largest the guest's linear memory grew to.
	MemoryBytes uint64
	// Started is when instantiation began, and Duration how long the run
	// took until the guest ended, both from Config.Now.
	Started  time.Time
	Duration time.Duration
}

// errTimeout is the cause of a run's context when its Timeout fires.
var errTimeout = errors.New("run timed out")

// maxDetail bounds Result.Detail: a trap's stack trace can be long.
const maxDetail = 1024

// Run instantiates the compiled module spec.Module and runs its _start with
// what spec grants, until the guest exits, traps, outgrows its ceiling, or
// its Timeout or ctx ends. The caller must close Result.Scratch.
//
// How the guest ended is the Result, not an error: a non-zero exit status, a
// timeout, a memory ceiling or a trap. Run returns an error when the run could
// not start (a *protocol.Error: CODE_MODULE_NOT_FOUND for a module not added,
// CODE_MALFORMED, CODE_INSUFFICIENT_MEMORY or CODE_INSUFFICIENT_SCRATCH for a
// spec the Config does not allow, CODE_INSUFFICIENT_SCRATCH too for inputs
// over ScratchBytes; or another error if an input cannot be walked or the
// scratch directory cannot be made), and, along with a Result whose Reason is
// ReasonCanceled, when ctx ended first (context.Canceled or the ctx's cause)
// or Close cut the run short (ErrClosed). Run is safe for concurrent use,
// including many runs of one module.
func (e *Executor) Run(ctx context.Context, spec RunSpec) (Result, error) {
	if err := e.fill(&spec); err != nil {
		return Result{}, err
	}
	m, err := e.acquire(ctx, spec.Module)
	if err != nil {
		return Result{}, err
	}
	defer e.release(m)

	mem := &ceiling{limit: spec.MemoryBytes}
	scratch, err := e.newScratch(&spec, mem)
	if err != nil {
		return Result{}, err
	}
	res := Result{ExitCode: -1, Started: e.cfg.Now()}
	if m.memMin > spec.MemoryBytes {
		res.Reason, res.Code = ReasonMemory, pb.Code_CODE_INSUFFICIENT_MEMORY
		res.Detail = fmt.Sprintf("the module starts with %d bytes of memory, over the ceiling of %d", m.memMin, spec.MemoryBytes)
		res.finish(scratch, e.cfg.Now())
		return res, nil
	}

	runCtx, cancel := context.WithTimeoutCause(ctx, spec.Timeout, errTimeout)
	defer cancel()
	runCtx = experimental.WithMemoryAllocator(runCtx, mem)

	mod, err := e.rt.InstantiateModule(runCtx, m.compiled, e.moduleConfig(runCtx, &spec, scratch))
	ended := e.cfg.Now()
	if mod != nil { // _start returned without calling proc_exit
		_ = mod.Close(context.WithoutCancel(ctx))
	}

	if e.isClosed() {
		res.Reason, res.Detail = ReasonCanceled, ErrClosed.Error()
		res.finish(scratch, ended)
		return res, fmt.Errorf("run of %s: %w", spec.Module, ErrClosed)
	}
	var exit *sys.ExitError
	ctxCode := false
	if errors.As(err, &exit) {
		ctxCode = exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled
	}
	switch {
	case err == nil:
		res.Reason, res.ExitCode = ReasonExit, 0
	case exit != nil && !(ctxCode && runCtx.Err() != nil):
		res.Reason, res.ExitCode = ReasonExit, int32(exit.ExitCode())
	case runCtx.Err() != nil && context.Cause(runCtx) == errTimeout:
		res.Reason, res.Code = ReasonTimeout, pb.Code_CODE_TIMEOUT
		res.Detail = fmt.Sprintf("stopped at its %s deadline", spec.Timeout)
	case runCtx.Err() != nil:
		res.Reason = ReasonCanceled
		res.Detail = context.Cause(ctx).Error()
	default:
		res.Reason = ReasonTrap
		res.Detail = err.Error()
	}
	refused, peak := mem.stats()
	res.MemoryBytes = peak
	failed := res.Reason == ReasonTrap || res.Reason == ReasonExit && res.ExitCode != 0
	switch {
	case failed && refused:
		res.Reason, res.Code = ReasonMemory, pb.Code_CODE_INSUFFICIENT_MEMORY
		res.Detail = fmt.Sprintf("refused to grow memory past the ceiling of %d bytes", spec.MemoryBytes)
	case failed && scratch.full:
		res.Reason, res.Code = ReasonScratch, pb.Code_CODE_INSUFFICIENT_SCRATCH
		res.Detail = fmt.Sprintf("refused to write past the scratch cap of %d bytes", spec.ScratchBytes)
	}
	if len(res.Detail) > maxDetail {
		cut := maxDetail
		for cut > 0 && !utf8.RuneStart(res.Detail[cut]) {
			cut--
		}
		res.Detail = res.Detail[:cut] + "..."
	}
	res.finish(scratch, ended)
	if res.Reason == ReasonCanceled {
		return res, fmt.Errorf("run of %s: %w", spec.Module, context.Cause(ctx))
	}
	return res, nil
}

// finish seals the scratch area into the Result and fills the duration.
func (r *Result) finish(scratch *memFS, ended time.Time) {
	scratch.seal()
	r.Scratch = &Scratch{fs: scratch}
	r.Duration = ended.Sub(r.Started)
}

// newScratch returns the scratch area of one run, in a new private directory
// of the executor's scratch directory, with spec's inputs mounted.
func (e *Executor) newScratch(spec *RunSpec, mem *ceiling) (*memFS, error) {
	dir, err := os.MkdirTemp(e.scratchDir, "run-") // 0700
	if err != nil {
		return nil, fmt.Errorf("exec: scratch directory: %w", err)
	}
	scratch := newMemFS(dir, spec.ScratchBytes)
	scratch.mem = mem
	for _, in := range spec.Inputs {
		if err := scratch.mountInput(in); err != nil {
			_ = scratch.close()
			return nil, err
		}
	}
	return scratch, nil
}

// fill checks spec against the Config and sets its defaults.
func (e *Executor) fill(spec *RunSpec) error {
	for i, a := range spec.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return protocol.Errorf(protocol.CodeMalformed, "arg %d holds a NUL byte", i)
		}
	}
	for i, v := range spec.Env {
		if v.Name == "" || strings.ContainsAny(v.Name, "=\x00") || strings.IndexByte(v.Value, 0) >= 0 {
			return protocol.Errorf(protocol.CodeMalformed, "env %d (%q): a name must be non-empty without '=' or NUL, a value without NUL", i, v.Name)
		}
	}
	switch {
	case spec.MemoryBytes == 0:
		spec.MemoryBytes = min(protocol.DefaultMemory, e.cfg.MaxMemoryBytes)
	case spec.MemoryBytes > e.cfg.MaxMemoryBytes:
		return protocol.Errorf(pb.Code_CODE_INSUFFICIENT_MEMORY, "memory %d bytes: this executor allows at most %d", spec.MemoryBytes, e.cfg.MaxMemoryBytes)
	}
	if spec.ScratchBytes > e.cfg.MaxOutputBytes {
		return protocol.Errorf(pb.Code_CODE_INSUFFICIENT_SCRATCH, "scratch %d bytes: this executor allows at most %d", spec.ScratchBytes, e.cfg.MaxOutputBytes)
	}
	switch {
	case spec.Timeout < 0:
		return protocol.Errorf(protocol.CodeMalformed, "timeout %s: not positive", spec.Timeout)
	case spec.Timeout == 0:
		spec.Timeout = min(protocol.DefaultTimeout, e.cfg.MaxTimeout)
	case spec.Timeout > e.cfg.MaxTimeout:
		return protocol.Errorf(protocol.CodeMalformed, "timeout %s: this executor allows at most %s", spec.Timeout, e.cfg.MaxTimeout)
	}
	if err := checkInputs(spec.Inputs); err != nil {
		return err
	}
	if len(spec.Args) == 0 {
		spec.Args = []string{spec.Module.String()}
	}
	return nil
}

// moduleConfig is what the guest sees: nothing but what spec grants, the
// read-only root and the scratch area. wazero's defaults for the clocks are
// already deterministic fakes (see the package doc); its default random
// source, a fixed seed, is never used.
// ctx bounds the guest's real sleeps, if it has them.
func (e *Executor) moduleConfig(ctx context.Context, spec *RunSpec, scratch *memFS) wazero.ModuleConfig {
	stdout, stderr := spec.Stdout, spec.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	fsc := wazero.NewFSConfig().(sysfs.FSConfig).WithSysFSMount(e.root, "/")
	fsc = fsc.(sysfs.FSConfig).WithSysFSMount(scratch, "/scratch")
	mc := wazero.NewModuleConfig().
		WithName(""). // anonymous, so that runs of one module do not clash
		WithArgs(spec.Args...).
		WithStdin(bytes.NewReader(spec.Stdin)).
		WithStdout(stdout).
		WithStderr(stderr).
		WithFSConfig(fsc)
	// The working directory is the scratch area, so that a program writing
	// "out/result.txt" writes its output: a WASI libc resolves relative paths
	// against PWD (SPEC 11). A job that sets PWD itself keeps its own.
	pwd := true
	for _, v := range spec.Env {
		mc = mc.WithEnv(v.Name, v.Value)
		pwd = pwd && v.Name != "PWD"
	}
	if pwd {
		mc = mc.WithEnv("PWD", "/scratch")
	}
	if spec.RealTime {
		// Not WithSysNanosleep: time.Sleep in a host function would hold
		// the run past its deadline, which wazero only checks in guest code.
		mc = mc.WithSysWalltime().WithSysNanotime().WithNanosleep(func(ns int64) {
			t := time.NewTimer(time.Duration(ns))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		})
	}
	random := spec.Random
	if random == nil {
		random = rand.Reader
	}
	return mc.WithRandSource(random)
}
