package api

import (
	"net/http"
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// LeaseView is a lease running on this node, as its operator sees it: whose
// job, what it holds, and the last of its output.
type LeaseView struct {
	ID        string              `json:"id"` // hex
	Epoch     uint64              `json:"epoch"`
	Job       string              `json:"job"` // CID
	Requester string              `json:"requester"`
	State     string              `json:"state"` // committed, fetching, running
	Since     *time.Time          `json:"since,omitempty"`
	Committed time.Time           `json:"committed"`
	Reserved  scheduler.Resources `json:"reserved"`
	Price     string              `json:"cpu_per_hour"` // the leased offer's, per vCPU-hour
	Stdout    string              `json:"stdout"`       // its last LeaseLogTail bytes at most
	Stderr    string              `json:"stderr"`
	Cut       bool                `json:"cut,omitempty"` // a stream was cut at the log limit
}

// LeaseLogTail is how much of each output stream a LeaseView carries.
const LeaseLogTail = 4 << 10

func leaseRoutes(n Backend, mux *http.ServeMux, a *API) {
	mux.Handle("GET /v1/leases", a.auth(func(*http.Request) (any, error) { return n.Leases(), nil }))
}
