package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/ipfs/go-cid"
)

// SubmitRequest is the body of POST /v1/jobs.
type SubmitRequest struct {
	Job    []byte `json:"job"`              // the customer-sealed job envelope
	Module []byte `json:"module,omitempty"` // the module's bytes, if the node does not hold them
	Spec   string `json:"spec,omitempty"`   // the spec file's name, for display
}

// SubmitResponse is the answer to POST /v1/jobs.
type SubmitResponse struct {
	CID string `json:"cid"`
}

// maxSubmit bounds a submission: a module, base64 in JSON, and a job.
const maxSubmit = store.DefaultMaxModuleSize*4/3 + 2<<20

func jobRoutes(n Backend, mux *http.ServeMux, a *API) {
	mux.Handle("POST /v1/jobs", a.limit(a.auth(func(r *http.Request) (any, error) {
		var req SubmitRequest
		if err := decodeBody(r, &req, "submission"); err != nil {
			return nil, err
		}
		key, err := n.Submit(req.Job, req.Module, req.Spec)
		if err != nil {
			return nil, badRequest(err)
		}
		return SubmitResponse{CID: key}, nil
	})))
	// A module held answers 200, one not held 404: a client sends a
	// module's bytes with a job only when the node lacks them.
	mux.Handle("GET /v1/modules/{cid}", a.auth(func(r *http.Request) (any, error) {
		c, err := cid.Parse(r.PathValue("cid"))
		if err != nil {
			return nil, badRequest(fmt.Errorf("module: %w", err))
		}
		if !n.HasModule(c) {
			return nil, notFound(r.PathValue("cid"))
		}
		return map[string]string{"cid": c.String()}, nil
	}))
	mux.Handle("GET /v1/jobs", a.auth(func(*http.Request) (any, error) {
		jobs := n.Jobs()
		sort.Slice(jobs, func(i, k int) bool { return jobs[i].Submitted.Before(jobs[k].Submitted) })
		return jobs, nil
	}))
	mux.Handle("GET /v1/jobs/{cid}", a.auth(func(r *http.Request) (any, error) {
		v, ok := n.Job(r.PathValue("cid"))
		if !ok {
			return nil, notFound(r.PathValue("cid"))
		}
		return v, nil
	}))
	mux.Handle("DELETE /v1/jobs/{cid}", a.auth(func(r *http.Request) (any, error) {
		if !n.Stop(r.PathValue("cid")) {
			return nil, notFound(r.PathValue("cid"))
		}
		v, _ := n.Job(r.PathValue("cid"))
		return v, nil
	}))
	mux.Handle("POST /v1/offers", a.limit(a.auth(func(r *http.Request) (any, error) {
		var req SubmitRequest
		if err := decodeBody(r, &req, "quote"); err != nil {
			return nil, err
		}
		q, err := n.Quote(r.Context(), req.Job)
		if err != nil {
			return nil, badRequest(err)
		}
		return q, nil
	})))
	mux.Handle("GET /v1/providers", a.auth(func(r *http.Request) (any, error) { return n.Providers(r.Context()), nil }))
	// Logs are plain text, streamed while the job runs when follow=true.
	mux.Handle("GET /v1/jobs/{cid}/logs", a.authRaw(func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("cid")
		follow := r.URL.Query().Get("follow") == "true"
		stderr := r.URL.Query().Get("stream") == "stderr"
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		sent := 0
		for {
			out, errOut, changed, done, ok := n.Logs(key)
			if !ok {
				http.Error(w, notFound(key).Error(), http.StatusNotFound)
				return
			}
			if stderr {
				out = errOut
			}
			if len(out) > sent {
				w.Write(out[sent:])
				sent = len(out)
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
			}
			if !follow || done {
				return
			}
			select {
			case <-changed:
			case <-time.After(time.Second):
			case <-r.Context().Done():
				return
			}
		}
	}))
}

// limit caps the body of a request at the API's maxBody: past it, reading
// the body fails with an *http.MaxBytesError (decodeBody answers 413), and
// the server closes the connection rather than read the rest.
func (a *API) limit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, a.maxBody)
		h.ServeHTTP(w, r)
	})
}

// decodeBody decodes a JSON request body into v: a body over the limit is
// 413 Request Entity Too Large, one that is not the JSON asked for is 400.
func decodeBody(r *http.Request, v any, what string) error {
	err := json.NewDecoder(r.Body).Decode(v)
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		return &apiError{http.StatusRequestEntityTooLarge, fmt.Errorf(
			"%s: the body is over %d bytes, the most this node takes (a module of at most %d bytes, base64, and its job)",
			what, big.Limit, store.DefaultMaxModuleSize)}
	case err != nil:
		return badRequest(fmt.Errorf("%s: %w", what, err))
	}
	return nil
}

type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func badRequest(err error) error { return &apiError{http.StatusBadRequest, err} }
func notFound(key string) error {
	return &apiError{http.StatusNotFound, fmt.Errorf("no job %s on this node", key)}
}

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status
	}
	if protocol.CodeOf(err) != 0 && protocol.CodeOf(err).String() != "CODE_INTERNAL" {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
