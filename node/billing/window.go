package billing

import (
	"fmt"
	"net/url"
	"time"
)

// Window selects receipts by the time their lease epoch ended
// (UsageReceipt.ended_at_ms): Since inclusive, Until exclusive. A zero
// bound is open.
type Window struct {
	Since, Until time.Time
}

// dateLayout is the date a user may give instead of a full time.
const dateLayout = "2006-01-02"

// ParseWindow reads the bounds of --since and --until, each empty (open), a
// date (2026-12-01, in UTC) or an RFC 3339 time. A date given as until
// includes its whole day: --since 2026-12-01 --until 2026-12-31 is
// December. The errors name the flag and say how to write it.
func ParseWindow(since, until string) (Window, error) {
	var w Window
	var err error
	if w.Since, err = parseBound(since, false); err != nil {
		return Window{}, fmt.Errorf("--since %w", err)
	}
	if w.Until, err = parseBound(until, true); err != nil {
		return Window{}, fmt.Errorf("--until %w", err)
	}
	if !w.Since.IsZero() && !w.Until.IsZero() && !w.Since.Before(w.Until) {
		return Window{}, fmt.Errorf("--since %s is not before --until %s: no receipt can end in that window; give an earlier --since or a later --until",
			w.Since.Format(time.RFC3339Nano), w.Until.Format(time.RFC3339Nano))
	}
	return w, nil
}

// parseBound reads one bound; a date as an end bound is the start of the
// next day, so that the window's exclusive end takes the whole day in.
func parseBound(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(dateLayout, s); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: write a date (2026-12-01, UTC) or an RFC 3339 time (2026-12-01T08:00:00Z)", s)
	}
	return t.UTC(), nil
}

// Holds reports whether a receipt that ended at t falls in the window.
func (w Window) Holds(t time.Time) bool {
	return (w.Since.IsZero() || !t.Before(w.Since)) && (w.Until.IsZero() || t.Before(w.Until))
}

// Query is the window as the API's query parameters since and until, in
// RFC 3339 with nanoseconds, which ParseWindow reads back to the same
// instants: a date the client read is sent as the instant it stands for.
func (w Window) Query() url.Values {
	q := url.Values{}
	if !w.Since.IsZero() {
		q.Set("since", w.Since.Format(time.RFC3339Nano))
	}
	if !w.Until.IsZero() {
		q.Set("until", w.Until.Format(time.RFC3339Nano))
	}
	return q
}
