package simulations

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"hash/fnv"
	"math/rand/v2"
)

// evKind is what an event of the simulation does.
type evKind uint8

const (
	evArrive   evKind = iota + 1 // the next job arrives
	evTimer                      // a placement's timer is due (id)
	evToJob                      // a message reaches a job (msg is a scheduler.Event)
	evToProv                     // a message reaches a provider (msg is a scheduler.Action)
	evBeat                       // a provider sends a heartbeat (id = epoch)
	evEnd                        // a run ends (id = epoch)
	evCrash                      // a provider crashes
	evRejoin                     // a provider comes back
	evSample                     // a point of the time series
	evRewatch                    // a requester watches a lease again after its stream broke (id = epoch, inc = its incarnation, msg = lease ID)
	evNoAnswer                   // an offer request or a lease went unanswered until its deadline
	evDeadline                   // a job's placement deadline, for the omniscient scheduler's queue
	evLookup                     // a DHT lookup ends (job: the job that started it, or -1; prov: the requester; msg: *lookupRun)
)

// event is one entry of the queue. at and seq order it: events at the same
// virtual time run in the order they were scheduled, so a run is a function
// of its seed alone.
type event struct {
	at   int64 // nanoseconds since the start
	seq  uint64
	kind evKind
	inc  uint32 // the provider's incarnation the event belongs to (runs, beats)
	job  int32
	prov int32
	id   uint64
	msg  any
}

func (a *event) before(b *event) bool {
	return a.at < b.at || a.at == b.at && a.seq < b.seq
}

// queue is a 4-ary min-heap of events, written out rather than through
// container/heap so that pushes and pops do not box events; four children a
// node halve the levels a pop walks down, each level one cache line or two.
const arity = 4

type queue struct {
	h   []event
	seq uint64
}

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	h := q.h
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / arity
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *queue) pop() event {
	h := q.h
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = event{} // let the GC have the message
	h = h[:n]
	q.h = h
	i := 0
	for {
		first := arity*i + 1
		if first >= n {
			break
		}
		m := first
		for c := first + 1; c < min(first+arity, n); c++ {
			if h[c].before(&h[m]) {
				m = c
			}
		}
		if !h[m].before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top
}

func (q *queue) len() int { return len(q.h) }

// tracer hashes the events a run processes, in order, into its trace hash.
type tracer struct {
	h   hash.Hash
	buf []byte
}

func newTracer() *tracer { return &tracer{h: sha256.New(), buf: make([]byte, 0, 32<<10)} }

func (t *tracer) add(e *event) {
	b := t.buf
	b = binary.LittleEndian.AppendUint64(b, uint64(e.at))
	b = append(b, byte(e.kind))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.job))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.prov))
	b = binary.LittleEndian.AppendUint64(b, e.id)
	if len(b) > cap(b)-32 {
		t.h.Write(b)
		b = b[:0]
	}
	t.buf = b
}

func (t *tracer) sum() []byte {
	t.h.Write(t.buf)
	t.buf = t.buf[:0]
	return t.h.Sum(nil)
}

// stream returns the random stream of one component of a run: every component
// draws from its own PCG, seeded from the run's seed and the component's
// name, so that adding draws to one component leaves the others' unchanged.
func stream(seed uint64, component string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(component))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// seed32 draws a 32-byte seed for a scheduler component from r.
func seed32(r *rand.Rand) [32]byte {
	var s [32]byte
	for i := 0; i < 32; i += 8 {
		binary.LittleEndian.PutUint64(s[i:], r.Uint64())
	}
	return s
}
