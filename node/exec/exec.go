package exec

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// ErrClosed is returned by Add and Run once Close has been called.
var ErrClosed = errors.New("exec: executor closed")

// Executor verifies, compiles and runs WASI preview 1 modules. It is safe for
// concurrent use: any number of Adds and Runs may proceed at once, and a
// module is compiled once however many Adds ask for it.
type Executor struct {
	cfg   Config
	rt    wazero.Runtime
	cache wazero.CompilationCache // nil without Config.CacheDir
	wasi  map[string]api.FunctionDefinition
	root  *memFS // read-only, holds only an empty "scratch"
	// scratchDir holds a directory per run, of its files' contents.
	scratchDir string
	ownDir     bool // scratchDir is New's own, removed by Close

	mu       sync.Mutex
	modules  map[string]*module // by CID key; compiling or compiled
	lru      list.List          // of *module, compiled only, most recent first
	closed   bool
	compiles int // compilations started, for tests
}

// module is one entry of the compiled-module cache.
type module struct {
	key      string
	done     chan struct{} // closed when compilation ended, either way
	compiled wazero.CompiledModule
	memMin   uint64 // bytes of linear memory the module starts with
	err      error  // why compilation failed; set before done is closed
	ready    bool   // compiled and usable
	refs     int    // runs using compiled
	evicted  bool   // out of the cache: close compiled when refs drops to 0
	elem     *list.Element
}

// New returns an Executor with one wazero Runtime and WASI preview 1
// instantiated in it. The caller must Close it.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(uint32(cfg.MaxMemoryBytes / pageSize)).
		// DWARF only improves trap messages, at the cost of memory and
		// compile time per module.
		WithDebugInfoEnabled(false)
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("exec: compilation cache %s: %w", cfg.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	scratchDir, ownDir := cfg.ScratchDir, cfg.ScratchDir == ""
	if ownDir {
		dir, err := os.MkdirTemp("", "cuivre-scratch-") // 0700
		if err != nil {
			return nil, fmt.Errorf("exec: scratch directory: %w", err)
		}
		scratchDir = dir
	} else if err := os.MkdirAll(scratchDir, 0o700); err != nil {
		return nil, fmt.Errorf("exec: scratch directory: %w", err)
	} else {
		// Run directories a crashed process left: no run of this
		// executor has begun, and the directory is the node's alone.
		stale, _ := filepath.Glob(filepath.Join(scratchDir, "run-*"))
		for _, d := range stale {
			_ = os.RemoveAll(d)
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		if cache != nil {
			_ = cache.Close(ctx)
		}
		if ownDir {
			_ = os.RemoveAll(scratchDir)
		}
		return nil, fmt.Errorf("exec: instantiating WASI preview 1: %w", err)
	}
	return &Executor{
		cfg:     cfg,
		rt:      rt,
		cache:   cache,
		wasi:    rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions(),
		root:    newRoot(),
		modules: make(map[string]*module),

		scratchDir: scratchDir,
		ownDir:     ownDir,
	}, nil
}

// newRoot returns the guest's read-only root: empty but for the directory
// the scratch area is mounted on, so that "ls /" shows it.
func newRoot() *memFS {
	fs := newMemFS("", 0)
	scratch := fs.newInode(true, 0o755)
	scratch.linked = true
	fs.root.link("scratch", scratch)
	fs.readOnly = true
	return fs
}

// Close stops every run in progress (they end with ReasonCanceled or an
// error), frees the compiled modules and closes the compilation cache. With
// no Config.ScratchDir, it removes the scratch directory New made, and so
// the files of every Result.Scratch not closed yet.
func (e *Executor) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	err := e.rt.Close(ctx)
	if e.cache != nil {
		err = errors.Join(err, e.cache.Close(ctx))
	}
	if e.ownDir {
		err = errors.Join(err, os.RemoveAll(e.scratchDir))
	}
	return err
}

// Add verifies that the module bin hashes to c (wire.SumCID), checks its size and
// imports, and compiles it, so that Run can start it without compiling. A
// module already added is only verified. Add does not keep module.
//
// Errors are *protocol.Error: CODE_TOO_LARGE over Config.MaxModuleBytes,
// CODE_MODULE_MISMATCH when the bytes do not hash to c, CODE_MALFORMED when
// wazero cannot compile them, CODE_EXECUTOR_UNSUPPORTED when the module is
// not a WASI preview 1 command (no _start, or imports other than WASI
// preview 1 functions).
func (e *Executor) Add(ctx context.Context, c cid.Cid, bin []byte) error {
	if uint64(len(bin)) > e.cfg.MaxModuleBytes {
		return protocol.Errorf(protocol.CodeTooLarge, "module %s: %d bytes, over the limit of %d", c, len(bin), e.cfg.MaxModuleBytes)
	}
	if sum := wire.SumCID(bin); !sum.Equals(c) {
		return protocol.Errorf(pb.Code_CODE_MODULE_MISMATCH, "module %s: its bytes hash to %s", c, sum)
	}

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if m, ok := e.modules[c.KeyString()]; ok {
		if m.ready {
			e.lru.MoveToFront(m.elem)
		}
		e.mu.Unlock()
		select {
		case <-m.done:
			return m.err
		case <-ctx.Done():
			return fmt.Errorf("module %s: waiting for its compilation: %w", c, context.Cause(ctx))
		}
	}
	m := &module{key: c.KeyString(), done: make(chan struct{})}
	e.modules[m.key] = m
	e.compiles++
	e.mu.Unlock()

	compiled, memMin, err := e.compile(ctx, c, bin)

	e.mu.Lock()
	var evicted []wazero.CompiledModule
	switch {
	case e.closed: // compiling may have failed for it
		m.err = ErrClosed
		delete(e.modules, m.key)
		if compiled != nil {
			evicted = append(evicted, compiled)
		}
	case err != nil:
		m.err = err
		delete(e.modules, m.key) // a later Add may try again
	default:
		m.compiled, m.memMin, m.ready = compiled, memMin, true
		m.elem = e.lru.PushFront(m)
		evicted = e.evictLocked()
	}
	close(m.done)
	e.mu.Unlock()
	for _, cm := range evicted {
		_ = cm.Close(context.WithoutCancel(ctx))
	}
	return m.err
}

// compile compiles module and checks that it is a WASI preview 1 command
// this executor can run.
func (e *Executor) compile(ctx context.Context, c cid.Cid, bin []byte) (wazero.CompiledModule, uint64, error) {
	memMin, err := declaredMemory(bin)
	if err != nil {
		return nil, 0, protocol.Errorf(protocol.CodeMalformed, "module %s: %v", c, err)
	}
	compiled, err := e.rt.CompileModule(experimental.WithCompilationWorkers(ctx, e.cfg.CompileWorkers), bin)
	if err != nil {
		return nil, 0, protocol.Errorf(protocol.CodeMalformed, "module %s: %v", c, err)
	}
	if err := e.checkCommand(compiled); err != nil {
		_ = compiled.Close(ctx)
		return nil, 0, protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "module %s: %v", c, err)
	}
	return compiled, memMin, nil
}

// checkCommand reports why compiled cannot run here: a WASI command exports
// _start and imports only functions of wasi_snapshot_preview1, with the
// signatures wazero implements. Refusing here gives a clear reason at Add,
// rather than an instantiation failure at each Run.
func (e *Executor) checkCommand(compiled wazero.CompiledModule) error {
	return checkCommand(compiled, e.wasi)
}

func checkCommand(compiled wazero.CompiledModule, wasi map[string]api.FunctionDefinition) error {
	if _, ok := compiled.ExportedFunctions()["_start"]; !ok {
		return errors.New("not a WASI command: it exports no _start function")
	}
	if len(compiled.ImportedMemories()) > 0 {
		return errors.New("imports a memory: only WASI preview 1 functions can be imported")
	}
	for _, f := range compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		host, ok := wasi[name]
		if mod != wasi_snapshot_preview1.ModuleName || !ok {
			return fmt.Errorf("imports %s.%s: only WASI preview 1 (%s) functions can be imported", mod, name, wasi_snapshot_preview1.ModuleName)
		}
		if !slices.Equal(f.ParamTypes(), host.ParamTypes()) || !slices.Equal(f.ResultTypes(), host.ResultTypes()) {
			return fmt.Errorf("imports %s.%s with the wrong signature", mod, name)
		}
	}
	return nil
}

// Validate checks, without an Executor and without compiling to machine code,
// that bin is a WebAssembly module an executor would take: it decodes and
// validates it with wazero's interpreter, and checks that it is a WASI
// preview 1 command. The CLI calls it before a module leaves the machine.
// Errors are *protocol.Error, as Add's: CODE_TOO_LARGE over maxBytes (0 for
// the default limit), CODE_MALFORMED, CODE_EXECUTOR_UNSUPPORTED.
func Validate(ctx context.Context, bin []byte, maxBytes uint64) error {
	if maxBytes == 0 {
		maxBytes = Config{}.withDefaults().MaxModuleBytes
	}
	if uint64(len(bin)) > maxBytes {
		return protocol.Errorf(protocol.CodeTooLarge, "module: %d bytes, over the limit of %d", len(bin), maxBytes)
	}
	if _, err := declaredMemory(bin); err != nil {
		return protocol.Errorf(protocol.CodeMalformed, "not a WebAssembly module: %v", err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fmt.Errorf("exec: instantiating WASI preview 1: %w", err)
	}
	compiled, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return protocol.Errorf(protocol.CodeMalformed, "not a valid WebAssembly module: %v", err)
	}
	defer compiled.Close(ctx)
	if err := checkCommand(compiled, rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions()); err != nil {
		return protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "module: %v", err)
	}
	return nil
}

// evictLocked drops the least recently used modules over Config.MaxCompiled
// and returns those no run holds, for the caller to close outside the lock.
func (e *Executor) evictLocked() []wazero.CompiledModule {
	var free []wazero.CompiledModule
	for e.lru.Len() > e.cfg.MaxCompiled {
		m := e.lru.Remove(e.lru.Back()).(*module)
		delete(e.modules, m.key)
		m.ready, m.evicted, m.elem = false, true, nil
		if m.refs == 0 {
			free = append(free, m.compiled)
		}
	}
	return free
}

func (e *Executor) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Has reports whether the module c is compiled and ready to Run.
func (e *Executor) Has(c cid.Cid) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.modules[c.KeyString()]
	return ok && m.ready
}

// acquire returns the compiled module c for one run, waiting for a
// compilation in progress. The caller must release it.
func (e *Executor) acquire(ctx context.Context, c cid.Cid) (*module, error) {
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, ErrClosed
		}
		m, ok := e.modules[c.KeyString()]
		if !ok {
			e.mu.Unlock()
			return nil, protocol.Errorf(pb.Code_CODE_MODULE_NOT_FOUND, "module %s: not added to this executor", c)
		}
		if m.ready {
			m.refs++
			e.lru.MoveToFront(m.elem)
			e.mu.Unlock()
			return m, nil
		}
		e.mu.Unlock()
		select {
		case <-m.done: // look again: compiled, or failed and gone
		case <-ctx.Done():
			return nil, fmt.Errorf("module %s: waiting for its compilation: %w", c, context.Cause(ctx))
		}
	}
}

// release ends a run's hold on m, closing it if it was evicted meanwhile.
func (e *Executor) release(m *module) {
	e.mu.Lock()
	m.refs--
	closeIt := m.evicted && m.refs == 0
	e.mu.Unlock()
	if closeIt {
		_ = m.compiled.Close(context.Background())
	}
}
