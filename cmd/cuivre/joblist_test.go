package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/node/requester"
)

// TestJobListFilter: job list's flags select and page a node's jobs, the
// newest first; a bad flag is refused saying how to write it.
func TestJobListFilter(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	// Jobs j0 (oldest) to j5 (newest), an hour apart, ending an hour ago.
	var jobs []requester.JobView
	for i, s := range []string{"succeeded", "failed", "succeeded", "running", "failed", "placing"} {
		name := "hello"
		if i%2 == 1 {
			name = "primes"
		}
		jobs = append(jobs, requester.JobView{CID: fmt.Sprintf("bafkreij%d", i), Name: name, State: s, Submitted: now.Add(time.Duration(i-6) * time.Hour)})
	}
	for _, c := range []struct {
		name  string
		flags jobListFlags
		want  []string // CIDs' last characters, in order
		more  int
		err   string
	}{
		{name: "all, newest first", want: []string{"5", "4", "3", "2", "1", "0"}},
		{name: "limit", flags: jobListFlags{limit: 2}, want: []string{"5", "4"}, more: 4},
		{name: "state", flags: jobListFlags{state: "failed"}, want: []string{"4", "1"}},
		{name: "name", flags: jobListFlags{name: "primes"}, want: []string{"5", "3", "1"}},
		{name: "since a duration", flags: jobListFlags{since: "150m"}, want: []string{"5", "4"}},
		{name: "since a date", flags: jobListFlags{since: "2026-12-03"}, want: []string{"5", "4", "3", "2", "1", "0"}},
		{name: "since a time, in its zone", flags: jobListFlags{since: "2026-12-03T08:30:00+01:00"}, want: []string{"5", "4", "3", "2"}},
		{name: "filters together", flags: jobListFlags{state: "succeeded", name: "hello", since: "5h"}, want: []string{"2"}},
		{name: "next page", flags: jobListFlags{limit: 2, before: "bafkreij4"}, want: []string{"3", "2"}, more: 2},
		{name: "last page", flags: jobListFlags{limit: 2, before: "bafkreij2"}, want: []string{"1", "0"}},
		{name: "page and filter", flags: jobListFlags{before: "bafkreij5", state: "failed", limit: 1}, want: []string{"4"}, more: 1},
		{name: "nothing matches", flags: jobListFlags{name: "nobody"}, want: []string{}},
		{name: "before an ambiguous job", flags: jobListFlags{before: "hello"}, err: "--before: \"hello\" names 3 jobs"},
		{name: "before an unknown job", flags: jobListFlags{before: "bafkreix"}, err: `--before: no job "bafkreix"`},
		{name: "a state that is none", flags: jobListFlags{state: "done"}, err: `--state "done": use one of submitted, placing, running, succeeded, failed, cancelled`},
		{name: "a since that is none", flags: jobListFlags{since: "yesterday"}, err: `--since "yesterday": write a duration`},
		{name: "a negative since", flags: jobListFlags{since: "-2h"}, err: "without a sign"},
		{name: "a negative limit", flags: jobListFlags{limit: -1}, err: "--limit -1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := append([]requester.JobView(nil), jobs...)
			f, err := c.flags.filter(in, now)
			if !wantErr(t, err, c.err) {
				return
			}
			shown, more := f.apply(in)
			got := []string{}
			for _, j := range shown {
				got = append(got, strings.TrimPrefix(j.CID, "bafkreij"))
			}
			if diff := cmp.Diff(c.want, got); diff != "" || more != c.more {
				t.Fatalf("shown (-want +got):\n%s; more %d, want %d", diff, more, c.more)
			}
		})
	}
}

// TestMorePages: the hint names the --before of the next page, and says
// nothing when all is shown.
func TestMorePages(t *testing.T) {
	var b strings.Builder
	morePages(&b, []requester.JobView{{CID: "a"}, {CID: "b"}}, 0)
	morePages(&b, []requester.JobView{{CID: "a"}, {CID: "b"}}, 3)
	if want := "3 more: the next page with --before b, or all with --limit 0\n"; b.String() != want {
		t.Fatalf("hint %q, want %q", b.String(), want)
	}
}
