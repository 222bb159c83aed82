package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/protocol/wire"
)

// TestMatchJob: a job is named by its CID, a unique prefix of it or a
// unique name; an ambiguous one lists the candidates, newest first, and an
// unknown one says where to look.
func TestMatchJob(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	jobs := []requester.JobView{
		{CID: "bafkreiaaa111", Name: "hello", State: "succeeded", Submitted: t0},
		{CID: "bafkreiaab222", Name: "hello", State: "failed", Submitted: t0.Add(time.Minute)},
		{CID: "bafkreibbb333", Name: "primes", State: "running", Submitted: t0.Add(2 * time.Minute)},
		// A job whose name is another's CID prefix: the CID wins only
		// when whole.
		{CID: "bafkreiccc444", Name: "bafkreibbb", State: "placing", Submitted: t0.Add(3 * time.Minute)},
	}
	for _, c := range []struct {
		ref, want string
		err       []string // each in the error, in order
	}{
		{ref: "bafkreiaaa111", want: "bafkreiaaa111"},
		{ref: "bafkreiaaa", want: "bafkreiaaa111"},
		{ref: "bafkreib", want: "bafkreibbb333"},
		{ref: "bafkreibbb", err: []string{`"bafkreibbb" names 2 jobs`, "bafkreiccc444  bafkreibbb  placing", "bafkreibbb333  primes  running"}},
		{ref: "primes", want: "bafkreibbb333"},
		{ref: "hello", err: []string{`"hello" names 2 jobs`, "bafkreiaab222  hello  failed  2026-12-01T10:01:00Z", "bafkreiaaa111  hello  succeeded"}},
		{ref: "bafkreiaa", err: []string{"names 2 jobs"}},
		{ref: "nothing", err: []string{`no job "nothing" on this node`, "cuivre job list"}},
		{ref: "", err: []string{"no job named"}},
	} {
		t.Run(c.ref, func(t *testing.T) {
			got, err := matchJob(jobs, c.ref)
			if c.err == nil {
				if err != nil || got != c.want {
					t.Fatalf("got %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			rest := err.Error()
			for _, w := range c.err {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q: want %q (after what came before)", err, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestMatchJobManyCandidates: a name run many times lists the newest ten
// and says how to narrow it down.
func TestMatchJobManyCandidates(t *testing.T) {
	var jobs []requester.JobView
	for i := range 12 {
		jobs = append(jobs, requester.JobView{CID: fmt.Sprintf("bafkrei%03d", i), Name: "hello", Submitted: time.Unix(int64(i), 0)})
	}
	_, err := matchJob(jobs, "hello")
	if err == nil || !strings.Contains(err.Error(), "bafkrei011") || strings.Contains(err.Error(), "bafkrei001") ||
		!strings.Contains(err.Error(), "and 2 more: `cuivre job list --name hello`") {
		t.Fatalf("error %v: want the newest ten and a hint", err)
	}
}

// TestResolveJob: a whole CID is asked of the daemon alone; a prefix, a
// name, or a CID no job has (which may be a name) go through the list; an
// error answer other than not found is the command's error.
func TestResolveJob(t *testing.T) {
	known, other := wire.SumCID([]byte("known")).String(), wire.SumCID([]byte("other")).String()
	jobs := []requester.JobView{{CID: known, Name: "hello"}, {CID: wire.SumCID([]byte("third")).String(), Name: other}}
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		switch r.URL.Path {
		case "/v1/jobs":
			json.NewEncoder(w).Encode(jobs)
		case "/v1/jobs/" + known:
			json.NewEncoder(w).Encode(jobs[0])
		case "/v1/jobs/" + wire.SumCID([]byte("broken")).String():
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]string{"error": "the store is closed"})
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": "no job on this node"})
		}
	}))
	defer srv.Close()
	c := api.NewClient(srv.URL, "")
	for _, tc := range []struct {
		ref, want, err string
		asked          []string
	}{
		{ref: known, want: known, asked: []string{"/v1/jobs/" + known}},
		{ref: known[:12], want: known, asked: []string{"/v1/jobs"}},
		{ref: "hello", want: known, asked: []string{"/v1/jobs"}},
		{ref: other, want: jobs[1].CID, asked: []string{"/v1/jobs/" + other, "/v1/jobs"}},
		{ref: wire.SumCID([]byte("broken")).String(), err: "the store is closed", asked: []string{"/v1/jobs/" + wire.SumCID([]byte("broken")).String()}},
	} {
		asked = nil
		got, err := resolveJob(c, tc.ref)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) || !slices.Equal(asked, tc.asked) {
			t.Errorf("resolveJob(%q) = %q, %v, asking %v; want %q, %q, asking %v", tc.ref, got, err, asked, tc.want, tc.err, tc.asked)
		}
	}
}
