package api

import (
	"net/http"

	"github.com/cuivre/cuivre/node/billing"
)

// billingRoutes serves GET /v1/billing?since=&until=: the node's statement
// of the receipts that ended in the window (billing.ParseWindow reads the
// bounds; either may be left out). A bound that does not parse is a 400.
func billingRoutes(n Backend, mux *http.ServeMux, a *API) {
	mux.Handle("GET /v1/billing", a.auth(func(r *http.Request) (any, error) {
		q := r.URL.Query()
		w, err := billing.ParseWindow(q.Get("since"), q.Get("until"))
		if err != nil {
			return nil, badRequest(err)
		}
		return n.Billing(w)
	}))
}
