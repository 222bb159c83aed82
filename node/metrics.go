package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cuivre/cuivre/node/api"
)

// Build names the binary a node runs, for its cuivre_build_info series.
type Build struct {
	// Version is the release, such as "v0.3.0"; "dev" when empty.
	Version string
	// Commit is the commit it was built from; "unknown" when empty.
	Commit string
}

// buildInfo is the cuivre_build_info gauge: always 1, its labels naming the
// version, the commit and the Go version, as Prometheus' own build_info does,
// so that a dashboard can tell which nodes run what.
func buildInfo(b Build) prometheus.Collector {
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cuivre_build_info",
		Help:        "Always 1; its labels name the version, the commit and the Go version the node was built with.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": runtime.Version()}},
		func() float64 { return 1 })
}

// MetricsAddrFile is the file of a data dir to which the daemon writes the
// base URL of its metrics address (config metrics.listen), as it writes the
// API's to DIR/api; it removes it when it stops, or serves none.
const MetricsAddrFile = "metrics.addr"

// metricsServer serves GET /metrics, and nothing else, without a token.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	file string
}

// serveMetrics serves g at addr (host:port; port 0 picks one) and writes its
// base URL to dir's MetricsAddrFile. With addr empty it serves nothing, and
// removes a file a previous run left.
func serveMetrics(addr, dir string, g prometheus.Gatherer, log *slog.Logger) (*metricsServer, error) {
	file := filepath.Join(dir, MetricsAddrFile)
	if addr == "" {
		if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	url := "http://" + ln.Addr().String()
	if err := api.WriteFileAtomic(file, []byte(url+"\n"), 0o644); err != nil {
		ln.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	// The address may face the network: a few scrapes at once are plenty.
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{MaxRequestsInFlight: 4}))
	m := &metricsServer{ln: ln, file: file, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}}
	go m.srv.Serve(ln)
	log.Info("serving metrics", "url", url+"/metrics")
	return m, nil
}

// close stops the server and removes its address file; a nil server is none.
func (m *metricsServer) close(ctx context.Context) error {
	if m == nil {
		return nil
	}
	err := m.srv.Shutdown(ctx)
	if rerr := os.Remove(m.file); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}
