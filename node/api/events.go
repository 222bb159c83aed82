package api

import (
	"encoding/json"
	"net/http"
	"reflect"

	"github.com/cuivre/cuivre/node/requester"
)

// JobEvent is one line of GET /v1/jobs/{cid}/events: the job as it stands
// when it changed, and what its runs wrote since the line before.
type JobEvent struct {
	Job    requester.JobView `json:"job"`
	Stdout string            `json:"stdout,omitempty"`
	Stderr string            `json:"stderr,omitempty"`
	// Done says the job has reached its final state: this is the last line.
	Done bool `json:"done,omitempty"`
}

// eventRoutes serves a job's changes as they happen, pushed by the node
// rather than polled: newline-delimited JSON, one JobEvent a change (a slot
// placed, a run started, output written, the end), the first at once. The
// stream ends after the line with done, or when the client goes.
func eventRoutes(n Backend, mux *http.ServeMux, a *API) {
	mux.Handle("GET /v1/jobs/{cid}/events", a.authRaw(func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("cid")
		if _, _, _, _, ok := n.Logs(key); !ok {
			http.Error(w, notFound(key).Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-cache")
		enc := json.NewEncoder(w)
		flush := func() {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		var last requester.JobView
		sentOut, sentErr := 0, 0
		for first := true; ; first = false {
			// The channel first, then the state: a change after this read
			// closes the channel held, and is sent on the next turn.
			out, errOut, changed, done, _ := n.Logs(key)
			view, _ := n.Job(key)
			ev := JobEvent{Job: view, Stdout: string(out[min(sentOut, len(out)):]), Stderr: string(errOut[min(sentErr, len(errOut)):]), Done: done}
			if first || done || ev.Stdout != "" || ev.Stderr != "" || !reflect.DeepEqual(view, last) {
				if enc.Encode(ev) != nil {
					return
				}
				flush()
				last, sentOut, sentErr = view, len(out), len(errOut)
			}
			if done {
				return
			}
			select {
			case <-changed:
			case <-r.Context().Done():
				return
			}
		}
	}))
}
