package conformance

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// Outcome is the result of one check.
type Outcome int

const (
	Skip Outcome = iota // not run, or not applicable; Seen says why
	Pass
	Fail
)

func (o Outcome) String() string {
	switch o {
	case Pass:
		return "pass"
	case Fail:
		return "FAIL"
	}
	return "skip"
}

// Check is one requirement of SPEC.md the kit tests.
type Check struct {
	ID      string // stable, e.g. "watch.seq"
	Section string // the SPEC section it tests, e.g. "6.3"
	Rule    string // the requirement, in one line
}

// Result is a check and what became of it.
type Result struct {
	Check
	Outcome Outcome
	Seen    string // on failure, what the peer did; on skip, why
}

// Report is the results of a suite, in the order of its catalogue.
type Report []Result

// Failed returns the IDs of the failed checks, sorted.
func (r Report) Failed() []string {
	var out []string
	for _, x := range r {
		if x.Outcome == Fail {
			out = append(out, x.ID)
		}
	}
	slices.Sort(out)
	return out
}

// Count returns how many checks had outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, x := range r {
		if x.Outcome == o {
			n++
		}
	}
	return n
}

// Get returns the result of the check id.
func (r Report) Get(id string) (Result, bool) {
	for _, x := range r {
		if x.ID == id {
			return x, true
		}
	}
	return Result{}, false
}

// Print writes one line per check (outcome, section, ID, rule), then, for a
// failure, what was seen, and a summary line.
func (r Report) Print(w io.Writer) {
	for _, x := range r {
		fmt.Fprintf(w, "%-4s  %-5s %-32s %s\n", x.Outcome, x.Section, x.ID, x.Rule)
		if x.Seen != "" && x.Outcome != Pass {
			fmt.Fprintf(w, "      %s\n", strings.ReplaceAll(x.Seen, "\n", "\n      "))
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", r.Count(Pass), r.Count(Fail), r.Count(Skip))
}

// recorder collects outcomes for a catalogue. A check recorded twice keeps
// its worst outcome: a failure is never overwritten by a later pass.
type recorder struct {
	mu        sync.Mutex // the requester suite's handlers record concurrently
	catalogue []Check
	got       map[string]Result
}

func newRecorder(c []Check) *recorder {
	return &recorder{catalogue: c, got: map[string]Result{}}
}

func (r *recorder) check(id string) Check {
	for _, c := range r.catalogue {
		if c.ID == id {
			return c
		}
	}
	panic("conformance: check " + id + " is not in the catalogue") // a bug in the kit, not input
}

func (r *recorder) set(id string, o Outcome, seen string) {
	c := r.check(id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.got[id]; ok && (old.Outcome == Fail || (old.Outcome == Pass && o == Skip)) {
		return
	}
	r.got[id] = Result{Check: c, Outcome: o, Seen: seen}
}

func (r *recorder) pass(id string) { r.set(id, Pass, "") }

func (r *recorder) fail(id, format string, args ...any) {
	r.set(id, Fail, fmt.Sprintf(format, args...))
}

func (r *recorder) skip(id, format string, args ...any) {
	r.set(id, Skip, fmt.Sprintf(format, args...))
}

// expect passes id when ok, else fails it with what was seen.
func (r *recorder) expect(id string, ok bool, format string, args ...any) {
	if ok {
		r.pass(id)
	} else {
		r.fail(id, format, args...)
	}
}

func (r *recorder) report() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(Report, 0, len(r.catalogue))
	for _, c := range r.catalogue {
		res, ok := r.got[c.ID]
		if !ok {
			res = Result{Check: c, Outcome: Skip, Seen: "not reached"}
		}
		out = append(out, res)
	}
	return out
}
