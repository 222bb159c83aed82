package api

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// Wholesale is the part of the node the wholesale routes serve (SPEC 4.5,
// 6.7): its site's tariff and grants, and the slices it rents as a
// retailer.
type Wholesale interface {
	// Wholesale returns the node's published tariff (nil if it is no site)
	// and its live grants, made and held.
	Wholesale() (WholesaleView, error)
	// WholesaleSites looks up the sites that publish a tariff under a
	// jurisdiction, and reads their tariffs from the DHT.
	WholesaleSites(ctx context.Context, jurisdiction string) ([]TariffView, error)
	// RequestSlice asks a site for a slice at its published tariff.
	RequestSlice(ctx context.Context, ask SliceAsk) (GrantView, error)
	// WithdrawSlice ends a slice the node granted, no sooner than its
	// notice, and tells its grantee.
	WithdrawSlice(ctx context.Context, id string, end time.Time) (WithdrawView, error)
	// ReleaseSlice gives a slice the node holds back to its site at end,
	// no sooner than its notice.
	ReleaseSlice(ctx context.Context, id string, end time.Time) (GrantView, error)
	// BillRent bills every grantee of the site the rent of its slices since
	// the last bill, each bill a receipt the grantee countersigns.
	BillRent(ctx context.Context) ([]RentView, error)
	// WholesaleEvidence is what the node presents to an auditor of site:
	// the grants of that site it holds or refused, live or ended.
	WholesaleEvidence(site string) ([]record.Evidence, error)
	// AuditSite audits a site against its tariff and capacity record in
	// the DHT and the evidence given (SPEC 6.7).
	AuditSite(ctx context.Context, site string, evidence []record.Evidence) (record.AuditReport, error)
}

// RentView is one bill of a slice's rent (SPEC 6.7, rent).
type RentView struct {
	Grant         GrantView `json:"grant"`
	Epoch         uint64    `json:"epoch"` // the bill's number for the grant, from 1
	From          time.Time `json:"from"`
	Until         time.Time `json:"until"`
	Amount        string    `json:"amount"`
	Countersigned bool      `json:"countersigned"`
	Error         string    `json:"error,omitempty"` // why it is not countersigned
}

// AuditRequest is the body of POST /v1/wholesale/audit.
type AuditRequest struct {
	Site     string            `json:"site"`
	Evidence []record.Evidence `json:"evidence"`
}

// TariffView is a site's wholesale tariff (SPEC 4.5).
type TariffView struct {
	Site      string    `json:"site"`
	Seq       uint64    `json:"seq"`
	Hash      string    `json:"hash"` // hex sha2-256 of the sealed envelope, which slice requests name
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Prices per hour of one vCPU and one GiB of memory, and per GiB
	// sent out, with their currency ("0.02 EUR").
	CPUPerHour       string              `json:"cpu_per_hour"`
	MemoryGiBPerHour string              `json:"memory_gib_per_hour"`
	EgressPerGiB     string              `json:"egress_per_gib"`
	MinSlice         scheduler.Resources `json:"min_slice"`
	MinPeriod        string              `json:"min_period"`
	Notice           string              `json:"notice"`
	Capacity         scheduler.Resources `json:"capacity"`
	// Granted is what the site's live slices hold, on the site's own
	// node; left out elsewhere.
	Granted *scheduler.Resources `json:"granted,omitempty"`
	Labels  map[string]string    `json:"labels"`
}

// GrantView is a slice grant (SPEC 6.7), as the site or the retailer sees it.
type GrantView struct {
	ID      string `json:"id"` // hex grant ID
	Site    string `json:"site"`
	Grantee string `json:"grantee"`
	// Role is "site" on the node that granted it, "retailer" on the one
	// that holds it.
	Role      string              `json:"role"`
	State     string              `json:"state"` // pending (not started), active, ended
	Resources scheduler.Resources `json:"resources"`
	Start     time.Time           `json:"start"`
	End       time.Time           `json:"end"`     // the slice's end: the grant's, or a withdrawal's
	Granted   time.Time           `json:"granted"` // the grant's own end
	Withdrawn bool                `json:"withdrawn,omitempty"`
	// WithdrawalRefused says a withdrawal without the grant's notice was
	// refused, and kept as proof.
	WithdrawalRefused bool `json:"withdrawal_refused,omitempty"`
	// Released says its grantee gave it back, ending it sooner.
	Released         bool   `json:"released,omitempty"`
	CPUPerHour       string `json:"cpu_per_hour"`
	MemoryGiBPerHour string `json:"memory_gib_per_hour"`
	Notice           string `json:"notice"`
	// Cost is what the whole slice costs, from start to end, used or not.
	Cost string `json:"cost"`
}

// WholesaleView is GET /v1/wholesale.
type WholesaleView struct {
	Tariff *TariffView `json:"tariff"`
	Grants []GrantView `json:"grants"`
}

// SliceAsk is POST /v1/wholesale/slices: a slice to ask a site for.
type SliceAsk struct {
	Site      string              `json:"site"` // peer ID
	Resources scheduler.Resources `json:"resources"`
	Start     time.Time           `json:"start,omitzero"` // zero: now
	End       time.Time           `json:"end"`
}

// WithdrawView is POST /v1/wholesale/slices/{id}/withdraw.
type WithdrawView struct {
	Grant     GrantView `json:"grant"`
	Delivered bool      `json:"delivered"`
	Error     string    `json:"error,omitempty"` // why it was not delivered
}

// Withdrawal is the body of POST /v1/wholesale/slices/{id}/withdraw and
// .../release.
type Withdrawal struct {
	End time.Time `json:"end"`
}

// wholesaleRoutes serves the wholesale desk: GET /v1/wholesale,
// GET /v1/wholesale/sites?jurisdiction=, POST /v1/wholesale/slices,
// POST /v1/wholesale/slices/{id}/withdraw, GET /v1/wholesale/evidence?site=
// and POST /v1/wholesale/audit.
func wholesaleRoutes(n Wholesale, mux *http.ServeMux, a *API) {
	mux.Handle("GET /v1/wholesale", a.auth(func(*http.Request) (any, error) { return n.Wholesale() }))
	mux.Handle("GET /v1/wholesale/sites", a.auth(func(r *http.Request) (any, error) {
		j := r.URL.Query().Get("jurisdiction")
		if j == "" {
			return nil, badRequest(errors.New("name a jurisdiction, such as ?jurisdiction=fr"))
		}
		return n.WholesaleSites(r.Context(), j)
	}))
	mux.Handle("POST /v1/wholesale/slices", a.limit(a.auth(func(r *http.Request) (any, error) {
		var ask SliceAsk
		if err := decodeBody(r, &ask, "slice request"); err != nil {
			return nil, err
		}
		if ask.Site == "" || ask.End.IsZero() {
			return nil, badRequest(errors.New("a slice request names a site and an end"))
		}
		return n.RequestSlice(r.Context(), ask)
	})))
	mux.Handle("POST /v1/wholesale/rent", a.auth(func(r *http.Request) (any, error) { return n.BillRent(r.Context()) }))
	mux.Handle("GET /v1/wholesale/evidence", a.auth(func(r *http.Request) (any, error) {
		site := r.URL.Query().Get("site")
		if site == "" {
			return nil, badRequest(errors.New("name the audited site, such as ?site=12D3KooW..."))
		}
		return n.WholesaleEvidence(site)
	}))
	mux.Handle("POST /v1/wholesale/audit", a.limit(a.auth(func(r *http.Request) (any, error) {
		var req AuditRequest
		if err := decodeBody(r, &req, "audit request"); err != nil {
			return nil, err
		}
		if req.Site == "" {
			return nil, badRequest(errors.New("an audit names its site"))
		}
		return n.AuditSite(r.Context(), req.Site, req.Evidence)
	})))
	mux.Handle("POST /v1/wholesale/slices/{id}/withdraw", a.limit(a.auth(func(r *http.Request) (any, error) {
		id, end, err := shortening(r, "withdrawal")
		if err != nil {
			return nil, err
		}
		return n.WithdrawSlice(r.Context(), id, end)
	})))
	mux.Handle("POST /v1/wholesale/slices/{id}/release", a.limit(a.auth(func(r *http.Request) (any, error) {
		id, end, err := shortening(r, "release")
		if err != nil {
			return nil, err
		}
		return n.ReleaseSlice(r.Context(), id, end)
	})))
}

// shortening reads the grant ID of the path and the new end of the body of
// a withdrawal or a release.
func shortening(r *http.Request, what string) (id string, end time.Time, err error) {
	b, err := hex.DecodeString(r.PathValue("id"))
	if err != nil {
		return "", time.Time{}, badRequest(fmt.Errorf("grant ID %q: %w", r.PathValue("id"), err))
	}
	var body Withdrawal
	if err := decodeBody(r, &body, what); err != nil {
		return "", time.Time{}, err
	}
	if body.End.IsZero() {
		return "", time.Time{}, badRequest(fmt.Errorf("a %s names the slice's new end", what))
	}
	return string(b), body.End, nil
}
