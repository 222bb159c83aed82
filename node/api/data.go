package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// CARType is the media type of a CAR stream (IPIP-412).
const CARType = "application/vnd.ipld.car"

// DataResponse is the answer to POST /v1/data.
type DataResponse struct {
	CID string `json:"cid"`
}

// ErrNotHeld is what a Backend's StatData wraps for a DAG it does not hold
// whole.
var ErrNotHeld = errors.New("not held whole by this node")

// DataStat is the answer to GET /v1/data/{cid}/stat: a DAG held whole.
type DataStat struct {
	CID     string `json:"cid"`
	Size    uint64 `json:"size"`    // bytes of its files' contents
	Entries int    `json:"entries"` // files and directories, the root included
	Dir     bool   `json:"dir"`
}

// dataRoutes serves the node's content-addressed data as CAR streams: POST
// /v1/data takes a CAR of one root, whose every block is checked against its
// CID and whose DAG must be whole, and with public=1 shares it with every
// peer (SPEC 6.6); GET /v1/data/{cid} streams the DAG of a
// root the node holds, fetching it first from the peers named by from=
// (repeatable) when given.
func dataRoutes(n Backend, mux *http.ServeMux, a *API) {
	mux.Handle("POST /v1/data", a.auth(func(r *http.Request) (any, error) {
		public := r.URL.Query().Get("public")
		if public != "" && public != "0" && public != "1" {
			return nil, badRequest(errors.New("public: give 0 or 1"))
		}
		c, err := n.ImportData(r.Context(), r.Body, public == "1")
		if err != nil {
			return nil, badRequest(err)
		}
		return DataResponse{CID: c.String()}, nil
	}))
	mux.Handle("GET /v1/data/{cid}/stat", a.auth(func(r *http.Request) (any, error) {
		c, err := cid.Decode(r.PathValue("cid"))
		if err != nil {
			return nil, badRequest(fmt.Errorf("not a CID: %w", err))
		}
		st, err := n.StatData(r.Context(), c)
		if errors.Is(err, ErrNotHeld) {
			return nil, &apiError{http.StatusNotFound, err}
		}
		return st, err
	}))
	mux.Handle("GET /v1/data/{cid}", a.authRaw(func(w http.ResponseWriter, r *http.Request) {
		c, err := cid.Decode(r.PathValue("cid"))
		if err != nil {
			http.Error(w, "not a CID: "+err.Error(), http.StatusBadRequest)
			return
		}
		var from []peer.ID
		for _, s := range r.URL.Query()["from"] {
			p, err := peer.Decode(s)
			if err != nil {
				http.Error(w, "from: not a peer ID: "+err.Error(), http.StatusBadRequest)
				return
			}
			from = append(from, p)
		}
		if len(from) > 0 {
			if err := n.FetchData(r.Context(), c, from); err != nil {
				http.Error(w, "fetching "+c.String()+": "+err.Error(), http.StatusBadGateway)
				return
			}
		}
		if !n.HasData(r.Context(), c) {
			http.Error(w, c.String()+" is not held by this node", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", CARType)
		if err := n.ExportData(r.Context(), c, w); err != nil && !errors.Is(err, r.Context().Err()) {
			// The status is sent: a broken CAR is what the client sees,
			// and refuses.
			panic(http.ErrAbortHandler)
		}
	}))
}
