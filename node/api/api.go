package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cuivre/cuivre/node/billing"
	"github.com/cuivre/cuivre/node/requester"
)

// Backend is what the API serves: the node. Its methods are safe for
// concurrent use.
type Backend interface {
	// Ready says why the node is not ready to place jobs yet, or nil.
	Ready() error
	Metrics() prometheus.Gatherer
	Identify() Identity
	Peers() []Peer
	Status() NodeStatus
	Providers(ctx context.Context) []ProviderView
	// Leases are the leases running here, for their operator (none on a
	// requester).
	Leases() []LeaseView
	Submit(jobEnv, module []byte, spec string) (string, error)
	// HasModule says whether the node holds a module, so that a client
	// need not send its bytes with a job.
	HasModule(c cid.Cid) bool
	Jobs() []requester.JobView
	Job(key string) (requester.JobView, bool)
	Stop(key string) bool
	Logs(key string) (stdout, stderr []byte, changed <-chan struct{}, done bool, ok bool)
	Quote(ctx context.Context, jobEnv []byte) ([]requester.QuoteView, error)
	// ImportData keeps the DAG of a CAR stream and returns its root
	// (public: shared with every peer, SPEC 6.6);
	// HasData says whether a root is held; ExportData streams a root's
	// DAG as a CAR.
	ImportData(ctx context.Context, car io.Reader, public bool) (cid.Cid, error)
	HasData(ctx context.Context, c cid.Cid) bool
	FetchData(ctx context.Context, c cid.Cid, from []peer.ID) error
	ExportData(ctx context.Context, c cid.Cid, w io.Writer) error
	// StatData sizes a DAG held whole (an error wrapping ErrNotHeld if it
	// is not).
	StatData(ctx context.Context, c cid.Cid) (DataStat, error)
	// Billing is the statement of the receipts in the node's store that
	// ended within w.
	Billing(w billing.Window) (billing.Statement, error)
	Wholesale
}

// API is the node's local HTTP API for the CLI: JSON under /v1 behind a bearer
// token, and /healthz, /readyz, /metrics and the operator's page /ui/, on a
// loopback address.
type API struct {
	srv     *http.Server
	ln      net.Listener
	token   string
	maxBody int64 // bytes of a JSON request body: a submission or a quote
}

// ServeAPI listens on addr (host:port, loopback) and writes the address to
// dir/api and a fresh token to dir/api.token (mode 0600), so the CLI finds
// both, as kubo does. An empty dir writes nothing.
func Serve(n Backend, addr, dir string) (*API, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("api address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("api address %q: listen on a loopback address (127.0.0.1 or ::1)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	tok := make([]byte, 32)
	rand.Read(tok)
	a := &API{ln: ln, token: hex.EncodeToString(tok), maxBody: maxSubmit}
	if dir != "" {
		if err := WriteFileAtomic(filepath.Join(dir, "api.token"), []byte(a.token+"\n"), 0o600); err != nil {
			ln.Close()
			return nil, err
		}
		if err := WriteFileAtomic(filepath.Join(dir, "api"), []byte("http://"+ln.Addr().String()+"\n"), 0o644); err != nil {
			ln.Close()
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := n.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.Metrics(), promhttp.HandlerOpts{}))
	mux.Handle("GET /v1/id", a.auth(func(*http.Request) (any, error) { return n.Identify(), nil }))
	mux.Handle("GET /v1/peers", a.auth(func(*http.Request) (any, error) { return n.Peers(), nil }))
	mux.Handle("GET /v1/status", a.auth(func(*http.Request) (any, error) { return n.Status(), nil }))
	billingRoutes(n, mux, a)
	jobRoutes(n, mux, a)
	dataRoutes(n, mux, a)
	leaseRoutes(n, mux, a)
	eventRoutes(n, mux, a)
	wholesaleRoutes(n, mux, a)
	uiRoutes(mux)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go a.srv.Serve(ln)
	return a, nil
}

// Addr returns the API's base URL.
func (a *API) Addr() string { return "http://" + a.ln.Addr().String() }

// Token returns the API's bearer token.
func (a *API) Token() string { return a.token }

// Close stops the API.
func (a *API) Close(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// authRaw checks the bearer token before a handler that writes its own answer.
func (a *API) authRaw(f http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			http.Error(w, `{"error":"missing or wrong bearer token: read it from the data dir's api.token"}`, http.StatusUnauthorized)
			return
		}
		f(w, r)
	})
}

// auth serves a JSON document behind the bearer token.
func (a *API) auth(f func(*http.Request) (any, error)) http.Handler {
	return a.authRaw(func(w http.ResponseWriter, r *http.Request) {
		v, err := f(r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(statusOf(err))
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(v)
	})
}

// WriteFileAtomic writes a file by a synced temporary file and a rename.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
