package specyaml

import (
	"fmt"
	"strings"
)

// SpecError is a mistake in a document (a job spec, a scenario, a trace),
// located in it. Line and Column count from 1 and are 0 when unknown; Path
// names the field as it is written in the document ("task.resources.memory",
// "constraints[1]"). Err, when set, is the underlying error: for a job spec, a
// *protocol.FieldError for a rule of SPEC 5, or the module resolver's error.
type SpecError struct {
	File   string // the document's name, as the parser was given it; may be ""
	Line   int
	Column int
	Path   string
	Msg    string
	Err    error
}

// Error formats the error as "file:line:col: path: msg", the way compilers do,
// or "line L, column C: path: msg" when the file is not known.
func (e *SpecError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0 && e.Column > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0 && e.Column > 0:
		fmt.Fprintf(&b, "line %d, column %d: ", e.Line, e.Column)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func (e *SpecError) Unwrap() error { return e.Err }
