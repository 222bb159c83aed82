package main

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/requester"
)

// jobRefHelp says, in every command that takes a job, how one is named.
const jobRefHelp = `JOB is the job's CID, a prefix of it that no other job of the node shares, or
the job's name if no other job of the node has it; an ambiguous one is refused
with the jobs it could be.`

// resolveJob turns what a customer typed for a job into the job's CID: a
// whole CID of one of the node's jobs at once (GET /v1/jobs/{cid}), anything
// else from the node's list of its jobs (GET /v1/jobs).
func resolveJob(c *api.Client, ref string) (string, error) {
	if _, err := cid.Decode(ref); err == nil {
		var v requester.JobView
		err := c.Get("/v1/jobs/"+url.PathEscape(ref), &v)
		if se := (*api.StatusError)(nil); err == nil || !errors.As(err, &se) || se.Code != http.StatusNotFound {
			return v.CID, err
		}
		// No job has this CID; a job may still have it as its name.
	}
	var jobs []requester.JobView
	if err := c.Get("/v1/jobs", &jobs); err != nil {
		return "", err
	}
	return matchJob(jobs, ref)
}

// maxCandidates is the most jobs an ambiguous reference's error lists.
const maxCandidates = 10

// matchJob finds the one job ref names among jobs: the one whose CID it is,
// else the one whose name it is or whose CID it begins. It never picks
// among several, even the newest: a command such as stop must not act on
// a job the customer did not mean.
func matchJob(jobs []requester.JobView, ref string) (string, error) {
	if ref == "" {
		return "", errors.New("no job named: give its CID, a unique prefix of it, or its name (`cuivre job list` shows them)")
	}
	var found []requester.JobView
	for _, j := range jobs {
		if j.CID == ref {
			return j.CID, nil
		}
		if j.Name == ref || strings.HasPrefix(j.CID, ref) {
			found = append(found, j)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no job %q on this node, by CID, prefix or name: `cuivre job list` shows its jobs", ref)
	case 1:
		return found[0].CID, nil
	}
	newestFirst(found)
	lines := make([]string, 0, maxCandidates+1)
	for _, j := range found[:min(len(found), maxCandidates)] {
		lines = append(lines, fmt.Sprintf("  %s  %s  %s  %s", j.CID, j.Name, j.State, j.Submitted.Format(time.RFC3339)))
	}
	if n := len(found) - maxCandidates; n > 0 {
		lines = append(lines, fmt.Sprintf("  and %d more: `cuivre job list --name %s` or a longer prefix", n, ref))
	}
	return "", fmt.Errorf("%q names %d jobs: give more of the CID of the one you mean\n%s", ref, len(found), strings.Join(lines, "\n"))
}

// newestFirst sorts jobs by submission, the newest first, ties by CID.
func newestFirst(jobs []requester.JobView) {
	slices.SortFunc(jobs, func(a, b requester.JobView) int {
		return cmp.Or(b.Submitted.Compare(a.Submitted), strings.Compare(a.CID, b.CID))
	})
}
