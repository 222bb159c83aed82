// Package exec is the node's WebAssembly executor: it verifies, compiles and
// caches WASI preview 1 modules by CID, and runs them on wazero in a sandbox
// that grants a job nothing but its args, env and stdin, a memory ceiling, a
// deadline, read-only inputs and a confined, size-capped scratch area that
// becomes its output (SPEC 11).
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
// holding a single directory, /scratch, which is a fresh filesystem of this
// package per run (experimental/sys.FS, mounted with
// experimental/sysfs.FSConfig). Its tree, every name, directory and inode,
// is in memory, and resolving a path never leaves it: opening /etc/passwd or
// ../../etc/passwd simply fails with "no such file". Only the contents of
// regular files are on the host's disk, each in a private file named by its
// inode number (mode 0600) in a directory of its own per run (mode 0700)
// under Config.ScratchDir, which the node keeps in its data directory. The
// host file is made on the file's first byte and removed when the file is
// unlinked and no longer open, and the whole directory when the caller closes
// Result.Scratch. A name the guest chooses never reaches the host, whatever
// the path.
//
// The area is capped at RunSpec.ScratchBytes, counting file contents plus,
// for every file and directory, its name and 192 bytes, so a guest cannot
// exhaust the host with empty files either; a write past the cap fails with
// EIO.
//
// What a run costs the host's memory is counted against its memory ceiling
// (RunSpec.MemoryBytes): the guest's linear memory and the scratch tree's
// entries share it, each entry charged its name and 192 bytes, more than the
// about 150 bytes of Go heap it takes (TestEntryMemory). Creating an entry
// past the ceiling fails with EIO, and linear memory cannot grow into what
// the tree holds. Beyond that, a run costs one host file descriptor per file
// the guest holds open and a fixed overhead, the module instance and the
// WASI context, within 64 MiB (TestScratchMemory fills 1 GiB of scratch from
// a guest with a 32 MiB ceiling and checks that this process grows by less
// than 32 + 64 MiB; measured, it barely grows at all). File contents go to
// the host's page cache, not to this process: scratch costs disk, at most
// ScratchBytes per run.
//
// A run's directory is removed when its Result.Scratch is closed; one left
// by a crash is removed when the next Executor opens the same ScratchDir.
//
// # Inputs
//
// RunSpec.Inputs graft read-only trees (any io/fs.FS) into the scratch area,
// such as /scratch/in/data.csv. The guest can open, read, seek, stat and list
// them; every change in or of them (opening for writing, truncating,
// unlinking, renaming from or into them, making directories inside, setting
// times) fails with EROFS. Their structure is walked when the run starts and
// their contents are read only when the guest reads them; their sizes and
// entries count against ScratchBytes. They are not part of the output.
//
// # Why deterministic by default?
//
// Replicas of a job on different providers must produce the same output CID
// (SPEC 5, replicas), so a run sees nothing of the host unless the job asks.
// wazero's clocks are already deterministic fakes, and the executor keeps
// them: the wall clock starts at 2022-01-01T00:00:00Z and the monotonic clock
// at 0, each advancing 1 ms per reading; sleeping returns at once; the
// environment holds only what the job sets. RunSpec.RealTime opts into the
// host's clocks. Scratch timestamps are zero unless the guest sets them.
//
// The random source is RunSpec.Random, never wazero's fixed seed, which
// gave every run of every job the same bytes. The node passes the stream its
// job CID and instance derive (protocol.JobRandom, SPEC 11), which replicas
// share and other jobs and instances do not, or nil for a job that asks the
// host's entropy; nil is crypto/rand.
//
// # The output
//
// What the run left in its scratch area, without its inputs, is
// Result.Scratch: a read-only io/fs view (Scratch.FS) of the tree and of its
// files on disk, which the caller reads and then closes. The node adds it
// to its data store as the job's output, a UnixFS directory (SPEC 2.5).
package exec
