package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// submitter is a Backend that only takes submissions; any other method
// called panics on the nil interface, which fails the test.
type submitter struct {
	Backend
	got []byte
}

func (s *submitter) Submit(job, _ []byte, _ string) (string, error) {
	s.got = job
	return "bafy-test", nil
}

// TestBodyLimit: a submission over the body limit answers 413 with a message
// that says the limit (it used to be a 400 "unexpected EOF", the limit cut
// silently), without reaching the node; one within it is submitted; one
// that is not JSON is a 400.
func TestBodyLimit(t *testing.T) {
	const limit = 1 << 10
	n := &submitter{}
	a := &API{token: "t", maxBody: limit}
	mux := http.NewServeMux()
	jobRoutes(n, mux, a)
	post := func(path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer t")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	job := func(n int) string { return `{"job":"` + strings.Repeat("QUFB", n/4) + `"}` }

	for _, path := range []string{"/v1/jobs", "/v1/offers"} {
		w := post(path, job(limit))
		var e map[string]string
		if w.Code != http.StatusRequestEntityTooLarge || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e["error"], "over 1024 bytes") {
			t.Errorf("%s over the limit: %d %s, want 413 saying the limit", path, w.Code, w.Body)
		}
	}
	if n.got != nil {
		t.Fatalf("a body over the limit reached the node")
	}
	if w := post("/v1/jobs", job(limit/2)); w.Code != http.StatusOK || len(n.got) != 3*limit/8 {
		t.Errorf("within the limit: %d %s, %d bytes submitted", w.Code, w.Body, len(n.got))
	}
	if w := post("/v1/jobs", `{"job":`); w.Code != http.StatusBadRequest {
		t.Errorf("not JSON: %d %s, want 400", w.Code, w.Body)
	}
}
