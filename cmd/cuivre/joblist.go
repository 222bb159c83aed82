package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/billing"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/scheduler"
)

// jobFilter is what `job list` shows of a node's jobs: its flags, read.
type jobFilter struct {
	limit       int       // 0: all
	state, name string    // "": any
	since       time.Time // zero: any
	before      string    // a job's CID: only those submitted before it, to page
}

// jobListFlags are the flags of `job list` as typed, before parsing.
type jobListFlags struct {
	limit                      int
	state, name, since, before string
}

// defaultJobLimit is how many jobs `job list` shows unless --limit says:
// a screenful, the newest.
const defaultJobLimit = 20

func (f *jobListFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.limit, "limit", defaultJobLimit, "show at most this many jobs, the newest (0: all)")
	fl.StringVar(&f.state, "state", "", "only jobs in this state: "+strings.Join(jobStates(), ", "))
	fl.StringVar(&f.name, "name", "", "only jobs of this name")
	fl.StringVar(&f.since, "since", "", "only jobs submitted since then: a duration back from now (2h, 30m), a date (2026-12-01, UTC) or an RFC 3339 time")
	fl.StringVar(&f.before, "before", "", "only jobs submitted before this one (its CID, a prefix or its name): the next page after a listing's last job")
	cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(jobStates(), cobra.ShellCompDirectiveNoFileComp))
}

// jobStates are the states a job view can be in, in the order a job goes
// through them.
func jobStates() []string {
	states := []string{"submitted"}
	for s := scheduler.JobPlacing; s <= scheduler.JobCancelled; s++ {
		states = append(states, s.String())
	}
	return states
}

// filter reads the flags at now; before, if given, is resolved among jobs.
func (f jobListFlags) filter(jobs []requester.JobView, now time.Time) (jobFilter, error) {
	jf := jobFilter{limit: f.limit, state: f.state, name: f.name}
	if f.limit < 0 {
		return jf, fmt.Errorf("--limit %d: give a number of jobs, or 0 for all", f.limit)
	}
	if f.state != "" && !slices.Contains(jobStates(), f.state) {
		return jf, fmt.Errorf("--state %q: use one of %s", f.state, strings.Join(jobStates(), ", "))
	}
	var err error
	if jf.since, err = parseSince(f.since, now); err != nil {
		return jf, err
	}
	if f.before != "" {
		if jf.before, err = matchJob(jobs, f.before); err != nil {
			return jf, fmt.Errorf("--before: %w", err)
		}
	}
	return jf, nil
}

// parseSince reads --since: empty for any time, a duration back from now,
// or a date or time as billing export reads them.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %s: give a duration back from now without a sign, such as 2h", s)
		}
		return now.Add(-d), nil
	}
	w, err := billing.ParseWindow(s, "")
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: write a duration back from now (2h, 30m), a date (2026-12-01, UTC) or an RFC 3339 time (2026-12-01T08:00:00Z)", s)
	}
	return w.Since, nil
}

// apply returns the jobs that pass f, the newest first, at most its limit,
// and how many more passed. It sorts jobs in place; the caller owns the
// result, which shares jobs' array.
func (f jobFilter) apply(jobs []requester.JobView) (shown []requester.JobView, more int) {
	newestFirst(jobs)
	if f.before != "" {
		i := slices.IndexFunc(jobs, func(j requester.JobView) bool { return j.CID == f.before })
		jobs = jobs[i+1:] // before was found among these jobs
	}
	shown = slices.DeleteFunc(jobs, func(j requester.JobView) bool {
		return (f.state != "" && j.State != f.state) || (f.name != "" && j.Name != f.name) ||
			(!f.since.IsZero() && j.Submitted.Before(f.since))
	})
	if f.limit > 0 && len(shown) > f.limit {
		return shown[:f.limit], len(shown) - f.limit
	}
	return shown, 0
}

// morePages says on w, for people and apart from the document, that a
// listing goes on, and how to see the rest.
func morePages(w io.Writer, shown []requester.JobView, more int) {
	if more > 0 && len(shown) > 0 {
		fmt.Fprintf(w, "%d more: the next page with --before %s, or all with --limit 0\n", more, shown[len(shown)-1].CID)
	}
}
