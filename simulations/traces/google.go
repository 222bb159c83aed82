package traces

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Google's ClusterData 2019 (cluster-usage traces v3), instance_events
// table: see clusterdata_trace_format_v3.proto and "Google cluster-usage
// traces v3" in github.com/google/cluster-data.

// The event types of the trace (EventType in the proto).
const (
	gSubmit = iota
	gQueue
	gEnable
	gSchedule
	gEvict
	gFail
	gFinish
	gKill
	gLost
	gUpdatePending
	gUpdateRunning
)

var gTypeNames = []string{"SUBMIT", "QUEUE", "ENABLE", "SCHEDULE", "EVICT", "FAIL", "FINISH", "KILL", "LOST", "UPDATE_PENDING", "UPDATE_RUNNING"}

// gRank orders the events of one instance at one microsecond: an end before
// a resubmission, a submission before its scheduling.
var gRank = [...]int8{
	gEvict: 0, gFail: 0, gFinish: 0, gKill: 0, gLost: 0,
	gSubmit: 1, gQueue: 2, gEnable: 3, gUpdatePending: 4, gSchedule: 5, gUpdateRunning: 6,
}

const (
	// gStart is the trace's start: times are microseconds since 600 s
	// before it. 0 stands for before the trace.
	gStart = 600_000_000
	// gAfter (2^63 - 1) stands for after the trace's end.
	gAfter = math.MaxInt64
)

// The reasons a Google event or instance is dropped.
const (
	gDropAlloc    = "events of alloc instances (collection_type 1: reservations, not tasks)"
	gDropOrphan   = "events of an instance before any SUBMIT (its submission is not in the inputs)"
	gDropBefore   = "instances submitted before the trace began (time 0): their arrival is unknown"
	gDropAfter    = "instances submitted after the trace ended (time 2^63-1)"
	gDropUnplaced = "instances never scheduled (pending at the end, or killed or failed while pending)"
)

// gEvent is the part of an instance event the conversion uses.
type gEvent struct {
	coll     int64
	time     int64 // µs, as in the trace
	seq      uint64
	idx      int32
	cpu, mem float32 // normalised; -1 if absent
	typ      int8
}

var gEventCodec = codec[gEvent]{
	size: 37,
	put: func(b []byte, e *gEvent) {
		binary.LittleEndian.PutUint64(b[0:], uint64(e.coll))
		binary.LittleEndian.PutUint64(b[8:], uint64(e.time))
		binary.LittleEndian.PutUint64(b[16:], e.seq)
		binary.LittleEndian.PutUint32(b[24:], uint32(e.idx))
		binary.LittleEndian.PutUint32(b[28:], math.Float32bits(e.cpu))
		binary.LittleEndian.PutUint32(b[32:], math.Float32bits(e.mem))
		b[36] = byte(e.typ)
	},
	get: func(b []byte, e *gEvent) {
		e.coll = int64(binary.LittleEndian.Uint64(b[0:]))
		e.time = int64(binary.LittleEndian.Uint64(b[8:]))
		e.seq = binary.LittleEndian.Uint64(b[16:])
		e.idx = int32(binary.LittleEndian.Uint32(b[24:]))
		e.cpu = math.Float32frombits(binary.LittleEndian.Uint32(b[28:]))
		e.mem = math.Float32frombits(binary.LittleEndian.Uint32(b[32:]))
		e.typ = int8(b[36])
	},
	// By instance, then time: each instance's history in order.
	cmp: func(a, b *gEvent) int {
		switch {
		case a.coll != b.coll:
			return cmpInt(a.coll, b.coll)
		case a.idx != b.idx:
			return cmpInt(a.idx, b.idx)
		case a.time != b.time:
			return cmpInt(a.time, b.time)
		case a.typ != b.typ:
			return cmpInt(int32(gRank[a.typ]), int32(gRank[b.typ]))
		}
		return cmpInt(a.seq, b.seq)
	},
}

// gFields are the texts of one event's fields; present says which were given.
type gFields struct {
	time, typ, coll, idx, ctype, cpus, mem string
	hasCtype, hasCPUs, hasMem              bool
}

// google converts instance_events: every file's events are sorted by
// instance and time, then each instance's history gives its jobs.
func (c *converter) google(inputs []string) error {
	events := newSorter(gEventCodec, c.o.Chunk, c.o.TempDir)
	defer events.close()
	last := int64(-1)
	add := func(e gEvent) error {
		if e.time != gAfter && e.time > last {
			last = e.time
		}
		return events.add(e)
	}
	for _, path := range inputs {
		err := c.eachSource(path, func(src *source) error {
			return c.googleSource(src, uint64(c.st.Files), add)
		})
		if err != nil {
			return err
		}
	}
	if c.errs.total > 0 && !c.o.SkipBad {
		return nil
	}
	if last >= gStart {
		c.end = (last - gStart) * 1000
	}
	g := &gInstance{c: c, open: -1}
	if err := events.each(g.step); err != nil {
		return err
	}
	return g.finish()
}

// googleSource reads one file of events, JSON lines or CSV with a header.
func (c *converter) googleSource(src *source, fi uint64, add func(gEvent) error) error {
	event := func(line int64, f *gFields) error {
		c.st.Records++
		e, msg := parseGoogle(f)
		switch {
		case msg != "":
			c.errs.add(src.name, line, "%s", msg)
			return nil
		case e.typ < 0:
			c.st.drop(gDropAlloc, 1)
			return nil
		}
		e.seq = fi<<40 | uint64(line)
		return add(e)
	}
	if src.firstByte() == '{' {
		return c.googleJSON(src, event)
	}
	return c.googleCSV(src, event)
}

// flexText is a JSON number or string, as text; null or absent is unset.
type flexText struct {
	s   string
	set bool
}

func (f *flexText) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &f.s); err != nil {
			return err
		}
	case len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		f.s = string(b)
	default:
		return fmt.Errorf("%s: want a number or a string", truncate(string(b)))
	}
	f.set = true
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// maxLine is the longest line read; a line of instance_events is a few
// hundred bytes, constraints included.
const maxLine = 16 << 20

func (c *converter) googleJSON(src *source, event func(int64, *gFields) error) error {
	lr := lineReader{r: src.r}
	for {
		b, ok := lr.next()
		if !ok {
			break
		}
		line := lr.line
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var j gJSON
		if err := decodeEvent(b, &j); err != nil {
			c.st.Records++
			var se *json.SyntaxError
			if errors.As(err, &se) {
				c.errs.add(src.name, line, "bad JSON at byte %d: %v", se.Offset, err)
			} else {
				c.errs.add(src.name, line, "bad JSON: %v", err)
			}
			continue
		}
		f := gFields{time: j.Time.s, typ: j.Type.s, coll: j.CollectionID.s, idx: j.InstanceIndex.s,
			ctype: j.CollectionType.s, hasCtype: j.CollectionType.set}
		var missing []string
		for _, v := range []struct {
			name string
			f    flexText
		}{{"time", j.Time}, {"type", j.Type}, {"collection_id", j.CollectionID}, {"instance_index", j.InstanceIndex}} {
			if !v.f.set {
				missing = append(missing, v.name)
			}
		}
		if len(missing) > 0 {
			f.typ = "missing " + strings.Join(missing, ", ")
		}
		if r := j.ResourceRequest; r != nil {
			f.cpus, f.hasCPUs = r.CPUs.s, r.CPUs.set
			f.mem, f.hasMem = r.Memory.s, r.Memory.set
		}
		if err := event(line, &f); err != nil {
			return err
		}
	}
	switch {
	case lr.err == errTooLong:
		c.errs.add(src.name, lr.line+1, "a line longer than %d MiB: is this instance_events as JSON lines?", maxLine>>20)
	case lr.err != nil:
		c.errs.add(src.name, lr.line+1, "%s", readErr(lr.err))
	}
	return nil
}

var errTooLong = errors.New("line too long")

// lineReader reads lines of any length up to maxLine. A line cut short by
// a read error is not returned: the error is.
type lineReader struct {
	r    *bufio.Reader
	buf  []byte
	line int64 // lines returned
	err  error
}

func (l *lineReader) next() ([]byte, bool) {
	l.buf = l.buf[:0]
	for {
		frag, err := l.r.ReadSlice('\n')
		if err == nil && len(l.buf) == 0 {
			l.line++
			return frag, true
		}
		l.buf = append(l.buf, frag...)
		switch {
		case err == nil:
			l.line++
			return l.buf, true
		case err == bufio.ErrBufferFull:
			if len(l.buf) > maxLine {
				l.err = errTooLong
				return nil, false
			}
		case err == io.EOF:
			if len(l.buf) == 0 {
				return nil, false
			}
			l.line++
			return l.buf, true
		default:
			l.err = err
			return nil, false
		}
	}
}

// The CSV columns, by the names a BigQuery export of a query flattening
// resource_request gives them (resource_request.cpus AS cpus) or keeps.
var gColumns = map[string]string{
	"time": "time", "type": "type", "collection_id": "collection_id", "instance_index": "instance_index",
	"collection_type": "collection_type",
	"cpus":            "cpus", "resource_request.cpus": "cpus", "resource_request_cpus": "cpus",
	"memory": "memory", "resource_request.memory": "memory", "resource_request_memory": "memory",
}

func (c *converter) googleCSV(src *source, event func(int64, *gFields) error) error {
	r := csv.NewReader(src.r)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	r.TrimLeadingSpace = true
	r.Comment = '#'
	header, err := r.Read()
	if err == io.EOF {
		c.errs.add(src.name, 0, "empty")
		return nil
	}
	if err != nil {
		c.csvErr(src.name, err)
		return nil
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if k, ok := gColumns[h]; ok {
			if _, dup := col[k]; dup {
				c.errs.add(src.name, 1, "two columns for %s", k)
				return nil
			}
			col[k] = i
		}
	}
	var missing []string
	for _, k := range []string{"time", "type", "collection_id", "instance_index"} {
		if _, ok := col[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		c.errs.add(src.name, 1, "not instance_events: neither JSON lines nor CSV with a header naming time, type, collection_id, instance_index (and cpus, memory); missing %s",
			strings.Join(missing, ", "))
		return nil
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if c.csvErr(src.name, err) {
				return nil
			}
			continue
		}
		line, _ := r.FieldPos(0)
		get := func(k string) (string, bool) {
			i, ok := col[k]
			if !ok {
				return "", false
			}
			if i >= len(rec) {
				return "", true
			}
			return strings.TrimSpace(rec[i]), true
		}
		var f gFields
		f.time, _ = get("time")
		f.typ, _ = get("type")
		f.coll, _ = get("collection_id")
		f.idx, _ = get("instance_index")
		f.ctype, f.hasCtype = get("collection_type")
		f.cpus, f.hasCPUs = get("cpus")
		f.mem, f.hasMem = get("memory")
		f.hasCtype = f.hasCtype && f.ctype != ""
		f.hasCPUs = f.hasCPUs && f.cpus != ""
		f.hasMem = f.hasMem && f.mem != ""
		if len(rec) != len(header) {
			c.st.Records++
			c.errs.add(src.name, int64(line), "%d fields, the header has %d", len(rec), len(header))
			continue
		}
		if err := event(int64(line), &f); err != nil {
			return err
		}
	}
}

// csvErr records a CSV error; true if reading cannot go on.
func (c *converter) csvErr(name string, err error) bool {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		c.st.Records++
		c.errs.add(name, int64(pe.Line), "%v", pe.Err)
		return false
	}
	c.errs.add(name, 0, "%s", readErr(err))
	return true
}

// parseGoogle checks an event's fields. An alloc instance's event comes
// back with typ -1.
func parseGoogle(f *gFields) (gEvent, string) {
	e := gEvent{cpu: -1, mem: -1}
	if strings.HasPrefix(f.typ, "missing ") {
		return e, f.typ
	}
	t, err := strconv.ParseInt(f.time, 10, 64)
	if err != nil || t < 0 {
		return e, fmt.Sprintf("time %q: want microseconds, 0 or more", f.time)
	}
	e.time = t
	typ := -1
	if n, err := strconv.Atoi(f.typ); err == nil {
		typ = n
	} else {
		for i, name := range gTypeNames {
			if strings.EqualFold(f.typ, name) {
				typ = i
			}
		}
	}
	if typ < 0 || typ >= len(gTypeNames) {
		return e, fmt.Sprintf("type %q: want 0 to 10 (SUBMIT to UPDATE_RUNNING)", f.typ)
	}
	e.typ = int8(typ)
	if e.coll, err = strconv.ParseInt(f.coll, 10, 64); err != nil {
		return e, fmt.Sprintf("collection_id %q: want an integer", f.coll)
	}
	idx, err := strconv.ParseInt(f.idx, 10, 32)
	if err != nil || idx < 0 {
		return e, fmt.Sprintf("instance_index %q: want an integer, 0 or more", f.idx)
	}
	e.idx = int32(idx)
	if f.hasCtype {
		switch f.ctype {
		case "0", "JOB":
		case "1", "ALLOC_SET":
			e.typ = -1
			return e, ""
		default:
			return e, fmt.Sprintf("collection_type %q: want 0 (job) or 1 (alloc set)", f.ctype)
		}
	}
	norm := func(name, s string, dst *float32) string {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e6 {
			return fmt.Sprintf("%s %q: want a normalised amount, 0 or more", name, s)
		}
		*dst = float32(v)
		return ""
	}
	if f.hasCPUs {
		if msg := norm("resource_request.cpus", f.cpus, &e.cpu); msg != "" {
			return e, msg
		}
	}
	if f.hasMem {
		if msg := norm("resource_request.memory", f.mem, &e.mem); msg != "" {
			return e, msg
		}
	}
	return e, ""
}

// gInstance follows one instance's history, the events in time order, and
// makes its jobs: a job from a SUBMIT to a FINISH, or to the end of the
// history. An EVICT, FAIL, KILL or LOST followed by a SUBMIT is a retry of
// the same work and stays one job; a SUBMIT after a FINISH is a new job.
// A job's run time is the time it was scheduled, over every try.
type gInstance struct {
	c         *converter
	coll      int64
	idx       int32
	started   bool // an event has been seen
	have      bool // a job in progress
	ordinal   uint64
	submit    int64 // µs
	running   bool
	scheduled bool
	runStart  int64 // µs
	ran       int64 // µs
	open      int64 // µs: start of a run going past the trace's end; -1
	cpu, mem  float32
}

func (g *gInstance) step(e *gEvent) error {
	if !g.started || e.coll != g.coll || e.idx != g.idx {
		if err := g.finish(); err != nil {
			return err
		}
		*g = gInstance{c: g.c, coll: e.coll, idx: e.idx, started: true, open: -1}
	}
	if e.typ == gSubmit && !g.have {
		g.have, g.submit, g.ordinal = true, e.time, g.ordinal+1
		g.running, g.scheduled, g.ran, g.open, g.cpu, g.mem = false, false, 0, -1, 0, 0
	}
	if !g.have {
		g.c.st.drop(gDropOrphan, 1)
		return nil
	}
	if e.cpu >= 0 {
		g.cpu = max(g.cpu, e.cpu)
	}
	if e.mem >= 0 {
		g.mem = max(g.mem, e.mem)
	}
	switch e.typ {
	case gSchedule:
		if !g.running && e.time != gAfter {
			g.running, g.scheduled, g.runStart = true, true, e.time
		}
	case gEvict, gFail, gKill, gLost:
		g.stop(e.time)
	case gFinish:
		g.stop(e.time)
		return g.finish()
	}
	return nil
}

// stop ends a run at t (µs); a run ending after the trace ended goes on to
// the trace's end.
func (g *gInstance) stop(t int64) {
	if !g.running {
		return
	}
	g.running = false
	if t == gAfter {
		g.open = g.runStart
		return
	}
	g.ran += t - g.runStart
}

// finish makes the job in progress, if any: one still running at the end
// of the history runs to the trace's end.
func (g *gInstance) finish() error {
	if !g.have {
		return nil
	}
	g.have = false
	if g.running {
		g.running = false
		g.open = g.runStart
	}
	st := g.c.st
	switch {
	case g.submit < gStart:
		st.drop(gDropBefore, 1)
		return nil
	case g.submit == gAfter:
		st.drop(gDropAfter, 1)
		return nil
	case !g.scheduled:
		st.drop(gDropUnplaced, 1)
		return nil
	}
	j := job{
		at:   (g.submit - gStart) * 1000,
		run:  g.ran * 1000,
		open: -1,
		id:   mix(uint64(g.coll) ^ mix(uint64(uint32(g.idx))<<24^g.ordinal)),
	}
	if g.open >= 0 {
		j.open = (max(g.open, gStart) - gStart) * 1000
	}
	o := &g.c.o
	return g.c.emit(j, float64(g.cpu)*o.CPUScale, float64(g.mem)*o.MemoryScale)
}
