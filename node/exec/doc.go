// Package exec is the node's WebAssembly executor: it verifies, compiles and
// caches WASI preview 1 modules by CID, and runs them on wazero in a sandbox
// that grants a job nothing but its args, env and stdin, a memory ceiling, a
// deadline and a confined, size-capped scratch area that becomes its output
// (SPEC 11).
//
// One Executor holds one long-lived wazero Runtime, so a module is compiled
// once (about 1 s for a 2.9 MB Go module) and each run only instantiates it
// (a few milliseconds). Compiled modules are kept in a small LRU keyed by CID,
// and the machine code can persist in a file-backed wazero compilation cache
// (Config.CacheDir).
//
// # Why a memory allocator for the ceiling?
//
// wazero's RuntimeConfig.WithMemoryLimitPages applies to a whole Runtime, and
// a Runtime is what owns compiled code: a Runtime per lease ceiling would
// compile every module once per ceiling, and a module's own declared maximum
// is the author's choice, not the provider's. So the Runtime's limit is the
// executor-wide ceiling (Config.MaxMemoryBytes), and each run gets its own
// ceiling through wazero's experimental.MemoryAllocator, passed in the
// instantiation context: the allocator backs the guest's linear memory and
// refuses to grow it past RunSpec.MemoryBytes, so the guest's memory.grow
// returns -1 (a Go guest then dies with "out of memory"). The initial size a
// module declares is read from its binary when it is added, and a run whose
// ceiling is below it is refused before instantiation. Either way the
// Result's Reason is ReasonMemory.
//
// # Why an in-memory scratch area?
//
// wazero's maintainers say its WASI filesystem is not a security boundary,
// and symlink escapes from mounted host directories have happened. So no host
// directory is ever mounted: the guest sees a read-only, empty in-memory root
// holding a single directory, /scratch, which is a fresh in-memory filesystem
// per run (experimental/sys.FS, mounted with experimental/sysfs.FSConfig).
// Nothing the guest names can reach the host, whatever the path: opening
// /etc/passwd or ../../etc/passwd simply fails with "no such file". The area
// is capped at RunSpec.ScratchBytes, counting file contents plus, for every
// file and directory, its name and 64 bytes, so a guest cannot exhaust the
// host with empty files either; a write past the cap fails with EIO. The cost
// is host memory: the node must count a lease's scratch as memory it holds.
//
// # Why deterministic by default?
//
// Replicas of a job on different providers must produce the same output CID
// (SPEC 5, replicas), so a run sees nothing of the host unless the job asks.
// wazero's defaults are already deterministic fakes, and the executor keeps
// them: the wall clock starts at 2022-01-01T00:00:00Z and the monotonic clock
// at 0, each advancing 1 ms per reading; sleeping returns at once; the random
// source is a fixed-seed generator; the environment holds only what the job
// sets. RunSpec.RealTime and RunSpec.RealRandom opt into the host's clocks
// and crypto/rand. Scratch timestamps are zero unless the guest sets them.
//
// # The output
//
// The scratch area becomes the job's output as one byte string, whose CID is
// Result.OutputCID; EncodeOutput documents the encoding (SPEC Appendix A,
// "Output serialisation").
package exec
