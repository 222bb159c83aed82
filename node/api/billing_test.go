package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/billing"
)

// biller is a Backend that only answers Billing, with the window it got.
type biller struct {
	Backend
	got *billing.Window
}

func (b *biller) Billing(w billing.Window) (billing.Statement, error) {
	b.got = &w
	return billing.Statement{Node: "n"}, nil
}

// TestBillingQuery: GET /v1/billing reads its window as the CLI sends it,
// refuses a bound that does not parse with a 400 that says how to write
// it, without asking the node, and wants the token like every /v1 route.
func TestBillingQuery(t *testing.T) {
	n := &biller{}
	mux := http.NewServeMux()
	billingRoutes(n, mux, &API{token: "t"})
	get := func(path, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	if w := get("/v1/billing", "wrong"); w.Code != http.StatusUnauthorized || n.got != nil {
		t.Errorf("wrong token: %d, node asked: %v", w.Code, n.got != nil)
	}
	w := get("/v1/billing?since=2026-13-01", "t")
	var e map[string]string
	if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e["error"], "write a date") || n.got != nil {
		t.Errorf("a bad since: %d %s, node asked: %v; want 400 saying how to write it", w.Code, w.Body, n.got != nil)
	}
	want, _ := billing.ParseWindow("2026-12-01", "2026-12-31")
	w = get("/v1/billing?"+want.Query().Encode(), "t")
	if w.Code != http.StatusOK || n.got == nil || !n.got.Since.Equal(want.Since) || !n.got.Until.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a window: %d %s, node asked for %+v, want %+v", w.Code, w.Body, n.got, want)
	}
}
