package traces

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cuivre/cuivre/protocol"
)

// The formats Convert reads.
const (
	Google2019  = "google2019"
	Alibaba2018 = "alibaba2018"
)

// Formats are the names Options.Format takes.
var Formats = []string{Google2019, Alibaba2018}

// The default sizes of the largest machine, which the traces normalise
// requests to and do not reveal. They are assumptions, to be set to what the
// study supposes: see docs/SIMULATOR.md, "Real workloads".
const (
	// DefaultGoogleCPUScale is the vCPUs of 1.0 NCU (Google's normalised
	// compute unit: the largest machine's CPU capacity).
	DefaultGoogleCPUScale = 64.0
	// DefaultGoogleMemoryScale is the GiB of 1.0 normalised memory (the
	// largest machine's memory).
	DefaultGoogleMemoryScale = 256.0
	// DefaultAlibabaMemoryScale is the GiB of 100 normalised memory (the
	// largest machine's): 4 GiB a core of a 96-core server, assumed.
	DefaultAlibabaMemoryScale = 384.0
)

// Options say how to convert.
type Options struct {
	Format string // Google2019 or Alibaba2018

	// CPUScale is the vCPUs of the largest machine, which Google's requests
	// are normalised to; 0 is DefaultGoogleCPUScale. Alibaba's CPU is in
	// cores (100 = 1 core) and takes no scale.
	CPUScale float64
	// MemoryScale is the GiB of the largest machine's memory, which both
	// traces normalise memory to; 0 is the format's default.
	MemoryScale float64

	// Start and Duration select the jobs arriving in [Start, Start +
	// Duration) of trace time (since the trace's start); Duration 0 is to
	// the end.
	Start, Duration time.Duration
	// Sample keeps each job with this probability, drawn from a hash of the
	// job's identity and Seed, so the same jobs whatever the order of the
	// inputs; 0 keeps every job.
	Sample float64
	Seed   uint64
	// Limit keeps the first Limit jobs by arrival (after the window and the
	// sample); 0 keeps all.
	Limit int
	// KeepTime writes arrivals in trace time rather than shifted so that the
	// first is at 0.
	KeepTime bool
	// Speedup divides the arrival times (after the shift), leaving run times
	// alone: the offered load is multiplied by it. 0 or 1 changes nothing.
	Speedup float64
	// MaxCPUMillis and MaxMemoryBytes drop jobs larger than a simulated
	// provider can hold; 0 keeps every size.
	MaxCPUMillis, MaxMemoryBytes uint64

	// SkipBad converts around malformed lines, counting them (the first
	// few are in Stats.Warnings), instead of failing.
	SkipBad bool
	// TempDir is where the external sort writes; "" is the system's.
	TempDir string
	// Chunk is the records sorted in memory at once; 0 is DefaultChunk.
	Chunk int
}

// UsageError is an option out of range.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ErrNoJobs is returned when no job is left to write.
var ErrNoJobs = errors.New("no job left to write: see what was dropped, and widen the window, sample or limits")

func (o *Options) check() error {
	bad := func(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch o.Format {
	case Google2019:
		if o.CPUScale == 0 {
			o.CPUScale = DefaultGoogleCPUScale
		}
		if o.MemoryScale == 0 {
			o.MemoryScale = DefaultGoogleMemoryScale
		}
	case Alibaba2018:
		if o.CPUScale != 0 {
			return bad("--cpu-scale: alibaba2018 gives CPU in cores (100 = 1 core) and takes no scale")
		}
		if o.MemoryScale == 0 {
			o.MemoryScale = DefaultAlibabaMemoryScale
		}
	case "":
		return bad("no format: give --from %s", strings.Join(Formats, " or "))
	default:
		return bad("unknown format %q: give %s", o.Format, strings.Join(Formats, " or "))
	}
	switch {
	case !finite(o.CPUScale) || o.CPUScale < 0 || o.CPUScale > 1e6:
		return bad("--cpu-scale %v: give the vCPUs of the largest machine, above 0", o.CPUScale)
	case !finite(o.MemoryScale) || o.MemoryScale <= 0 || o.MemoryScale > 1e9:
		return bad("--memory-scale %v: give the GiB of the largest machine's memory, above 0", o.MemoryScale)
	case o.Start < 0:
		return bad("--start %v: give a time since the trace's start, 0 or more", o.Start)
	case o.Duration < 0:
		return bad("--duration %v: give a positive duration, or 0 for to the end", o.Duration)
	case !finite(o.Sample) || o.Sample < 0 || o.Sample > 1:
		return bad("--sample %v: give a fraction in (0, 1]", o.Sample)
	case o.Limit < 0:
		return bad("--limit %d: give a number of jobs, or 0 for all", o.Limit)
	case !finite(o.Speedup) || o.Speedup < 0 || o.Speedup > 1e9:
		return bad("--speedup %v: give a factor above 0", o.Speedup)
	}
	return nil
}

// Stats say what a conversion read, kept and dropped.
type Stats struct {
	Format  string
	Files   int   // files read (each file of a tar archive counts)
	Records int64 // lines of data read (events or rows)
	Bad     int64 // malformed lines skipped (SkipBad)
	// Warnings are the first malformed lines skipped.
	Warnings []*InputError
	Jobs     int64 // jobs written
	// Dropped counts what was left out, by reason.
	Dropped map[string]int64
	// Raised counts jobs whose request was below the least the simulator
	// takes (1 millicore, 1 MiB) and was raised to it.
	Raised int64
	// Limited says --limit stopped the output before the last job.
	Limited bool
	// First is the trace time of the first job written; End that of the
	// last event read (the end of the trace, as far as the inputs go).
	First, End time.Duration
	// CPUScale and MemoryScale are the scales used.
	CPUScale, MemoryScale float64
}

func (s *Stats) drop(reason string, n int64) {
	if s.Dropped == nil {
		s.Dropped = map[string]int64{}
	}
	s.Dropped[reason] += n
}

// Summary writes the stats for a person.
func (s *Stats) Summary(w io.Writer) {
	unit := "rows"
	if s.Format == Google2019 {
		unit = "events"
	}
	fmt.Fprintf(w, "read %d %s from %d file(s)", s.Records, unit, s.Files)
	if s.Bad > 0 {
		fmt.Fprintf(w, ", skipped %d malformed line(s)", s.Bad)
	}
	fmt.Fprintf(w, "; the trace ends at %s\n", fmtDur(s.End))
	fmt.Fprintf(w, "wrote %d jobs", s.Jobs)
	if s.Jobs > 0 {
		fmt.Fprintf(w, ", the first arriving at %s of the trace", fmtDur(s.First))
	}
	if s.Limited {
		fmt.Fprintf(w, " (stopped at --limit)")
	}
	if s.Format == Google2019 {
		fmt.Fprintf(w, "; 1.0 NCU = %g vCPUs, 1.0 memory = %g GiB\n", s.CPUScale, s.MemoryScale)
	} else {
		fmt.Fprintf(w, "; memory 100 = %g GiB\n", s.MemoryScale)
	}
	if s.Raised > 0 {
		fmt.Fprintf(w, "raised %d requests below 1m CPU or 1Mi memory to that\n", s.Raised)
	}
	reasons := make([]string, 0, len(s.Dropped))
	for r := range s.Dropped {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "dropped %d: %s\n", s.Dropped[r], r)
	}
}

func fmtDur(d time.Duration) string {
	return d.Round(time.Second).String()
}

// Convert reads the inputs (paths; "-" is standard input), plain or gzip,
// and writes the simulator's trace CSV to w. Mistakes in the inputs are a
// *BadInputError (unless SkipBad), options out of range a *UsageError, and
// nothing is written then; ErrNoJobs if every job was dropped.
func Convert(w io.Writer, inputs []string, o Options) (*Stats, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if len(inputs) == 0 {
		return nil, &UsageError{Msg: "no input: give the trace's files"}
	}
	c := &converter{o: o, st: &Stats{Format: o.Format, CPUScale: o.CPUScale, MemoryScale: o.MemoryScale}}
	c.jobs = newSorter(jobCodec, o.Chunk, o.TempDir)
	defer c.jobs.close()
	if o.Format == Alibaba2018 {
		c.st.CPUScale = 0
	}
	var err error
	switch o.Format {
	case Google2019:
		err = c.google(inputs)
	case Alibaba2018:
		err = c.alibaba(inputs)
	}
	if err != nil {
		return c.st, err
	}
	if c.errs.total > 0 {
		if !o.SkipBad {
			return c.st, &BadInputError{Errs: c.errs.errs, Total: c.errs.total}
		}
		c.st.Bad, c.st.Warnings = c.errs.total, c.errs.errs
	}
	c.st.End = time.Duration(c.end)
	if err := c.write(w); err != nil {
		return c.st, err
	}
	if c.st.Jobs == 0 {
		return c.st, ErrNoJobs
	}
	return c.st, nil
}

type converter struct {
	o    Options
	st   *Stats
	errs errList
	jobs *sorter[job]
	end  int64 // trace time, ns, of the last event read
	seq  uint64
	// statuses are the Alibaba statuses dropped, named in the stats; a
	// few, so that garbage does not grow the stats without bound.
	statuses map[string]bool
}

// job is one job to write, in trace time (ns since the trace's start).
type job struct {
	at   int64
	run  int64 // time run before open, or in all
	open int64 // start of a run still going at the end of the trace; -1 if none
	cpu  uint64
	mem  uint64
	id   uint64 // a hash of its identity, for the sample and ties
	seq  uint64
}

var jobCodec = codec[job]{
	size: 56,
	put: func(b []byte, j *job) {
		binary.LittleEndian.PutUint64(b[0:], uint64(j.at))
		binary.LittleEndian.PutUint64(b[8:], uint64(j.run))
		binary.LittleEndian.PutUint64(b[16:], uint64(j.open))
		binary.LittleEndian.PutUint64(b[24:], j.cpu)
		binary.LittleEndian.PutUint64(b[32:], j.mem)
		binary.LittleEndian.PutUint64(b[40:], j.id)
		binary.LittleEndian.PutUint64(b[48:], j.seq)
	},
	get: func(b []byte, j *job) {
		j.at = int64(binary.LittleEndian.Uint64(b[0:]))
		j.run = int64(binary.LittleEndian.Uint64(b[8:]))
		j.open = int64(binary.LittleEndian.Uint64(b[16:]))
		j.cpu = binary.LittleEndian.Uint64(b[24:])
		j.mem = binary.LittleEndian.Uint64(b[32:])
		j.id = binary.LittleEndian.Uint64(b[40:])
		j.seq = binary.LittleEndian.Uint64(b[48:])
	},
	cmp: func(a, b *job) int {
		switch {
		case a.at != b.at:
			return cmpInt(a.at, b.at)
		case a.id != b.id:
			return cmpInt(a.id, b.id)
		}
		return cmpInt(a.seq, b.seq)
	},
}

func cmpInt[T int64 | uint64 | int32](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mix is splitmix64's finaliser: a good 64-bit hash of a 64-bit value.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// The reasons a job is dropped, common to the formats.
const (
	dropWindow  = "arrived outside --start/--duration"
	dropSample  = "left out by --sample"
	dropMaxCPU  = "above --max-cpu"
	dropMaxMem  = "above --max-memory"
	dropNoRun   = "ran for no time (under a microsecond)"
	microsecond = int64(time.Microsecond)
)

// emit keeps a job, of cores vCPUs and gib GiB, if the window, the sample
// and the size limits let it.
func (c *converter) emit(j job, cores, gib float64) error {
	o := &c.o
	if j.at < int64(o.Start) || o.Duration > 0 && j.at >= int64(o.Start+o.Duration) {
		c.st.drop(dropWindow, 1)
		return nil
	}
	if o.Sample > 0 && o.Sample < 1 && float64(mix(j.id^mix(o.Seed))>>11)/(1<<53) >= o.Sample {
		c.st.drop(dropSample, 1)
		return nil
	}
	j.cpu = ceilUnits(cores * 1000)
	j.mem = ceilUnits(gib*1024) << 20
	if j.cpu == 0 || j.mem == 0 {
		c.st.Raised++
		j.cpu, j.mem = max(j.cpu, 1), max(j.mem, 1<<20)
	}
	if o.MaxCPUMillis > 0 && j.cpu > o.MaxCPUMillis {
		c.st.drop(dropMaxCPU, 1)
		return nil
	}
	if o.MaxMemoryBytes > 0 && j.mem > o.MaxMemoryBytes {
		c.st.drop(dropMaxMem, 1)
		return nil
	}
	c.seq++
	j.seq = c.seq
	return c.jobs.add(j)
}

// ceilUnits rounds up to a whole unit, forgiving the float error of a
// product that should be whole (0.3 * 1000), and caps absurd values.
func ceilUnits(x float64) uint64 {
	if !(x > 0) {
		return 0
	}
	return uint64(math.Ceil(min(x-1e-6, 1<<40)))
}

// write writes the jobs kept, in order of arrival.
func (c *converter) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	first := int64(-1)
	errStop := errors.New("stop")
	err := c.jobs.each(func(j *job) error {
		run := j.run
		if j.open >= 0 {
			run += c.end - j.open
		}
		run = (run + microsecond/2) / microsecond * microsecond
		if run <= 0 {
			c.st.drop(dropNoRun, 1)
			return nil
		}
		if c.o.Limit > 0 && c.st.Jobs >= int64(c.o.Limit) {
			c.st.Limited = true
			return errStop
		}
		at := j.at
		if first < 0 {
			first = at
			c.st.First = time.Duration(at)
			c.header(bw)
		}
		if !c.o.KeepTime {
			at -= first
		}
		if c.o.Speedup > 0 && c.o.Speedup != 1 {
			at = int64(math.Round(float64(at) / c.o.Speedup))
		}
		bw.WriteString(seconds(at))
		bw.WriteByte(',')
		bw.WriteString(strconv.FormatUint(j.cpu, 10))
		bw.WriteString("m,")
		bw.WriteString(protocol.FormatBytes(j.mem))
		bw.WriteByte(',')
		bw.WriteString(seconds(run))
		bw.WriteByte('\n')
		c.st.Jobs++
		return nil
	})
	if err != nil && err != errStop {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// header writes the comment saying where the trace came from, and the
// columns.
func (c *converter) header(w *bufio.Writer) {
	o := &c.o
	fmt.Fprintf(w, "# cuivre sim convert --from %s", o.Format)
	if o.Format == Google2019 {
		fmt.Fprintf(w, " --cpu-scale %g", o.CPUScale)
	}
	fmt.Fprintf(w, " --memory-scale %g", o.MemoryScale)
	if o.Start > 0 {
		fmt.Fprintf(w, " --start %s", o.Start)
	}
	if o.Duration > 0 {
		fmt.Fprintf(w, " --duration %s", o.Duration)
	}
	if o.Sample > 0 && o.Sample < 1 {
		fmt.Fprintf(w, " --sample %g --seed %d", o.Sample, o.Seed)
	}
	if o.Limit > 0 {
		fmt.Fprintf(w, " --limit %d", o.Limit)
	}
	if o.Speedup > 0 && o.Speedup != 1 {
		fmt.Fprintf(w, " --speedup %g", o.Speedup)
	}
	if o.MaxCPUMillis > 0 {
		fmt.Fprintf(w, " --max-cpu %dm", o.MaxCPUMillis)
	}
	if o.MaxMemoryBytes > 0 {
		fmt.Fprintf(w, " --max-memory %s", protocol.FormatBytes(o.MaxMemoryBytes))
	}
	if o.KeepTime {
		w.WriteString(" --shift=false\n")
	} else {
		fmt.Fprintf(w, "\n# arrivals shifted by %s of trace time, so that the first is at 0\n", fmtDur(c.st.First))
	}
	w.WriteString("at,cpu,memory,run\n")
}

// seconds writes ns as plain seconds to the microsecond, as the trace reads them.
func seconds(ns int64) string {
	us := (ns + microsecond/2) / microsecond
	s := strconv.FormatInt(us/1e6, 10)
	if f := us % 1e6; f != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", f), "0")
	}
	return s
}
