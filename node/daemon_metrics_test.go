package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/exec/exectest"
)

// TestDaemonMetricsAddress: a daemon whose config sets metrics.listen
// serves its metrics there without a token, cuivre_build_info among them,
// writes the address to DIR/metrics.addr and removes it when it stops; one
// that sets none removes the file a previous run left.
func TestDaemonMetricsAddress(t *testing.T) {
	dir, c := loopbackDaemon(t)
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	file := filepath.Join(dir, MetricsAddrFile)

	// No metrics address: a stale file goes.
	if err := os.WriteFile(file, []byte("http://127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := StartDaemon(ctx, dir, c, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("without metrics.listen, %s: %v, want it removed", MetricsAddrFile, err)
	}
	if err := d.Stop(0); err != nil {
		t.Fatal(err)
	}

	c.Metrics.Listen = "127.0.0.1:0"
	d, err = StartDaemon(ctx, dir, c, log, WithBuild(Build{Version: "v1.2.3", Commit: "abc123"}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		d.Stop(0)
		t.Fatal(err)
	}
	base := strings.TrimSpace(string(b))
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Errorf("%s holds %q, want the base URL of the port taken", MetricsAddrFile, base)
	}
	code, body := get(t, base+"/metrics", "")
	want := `cuivre_build_info{commit="abc123",goversion="` + runtime.Version() + `",version="v1.2.3"} 1`
	if code != 200 || !strings.Contains(body, want) || !strings.Contains(body, "\ncuivre_peers 0\n") {
		t.Errorf("GET %s/metrics without a token: %d, want 200 with %s and cuivre_peers:\n%s", base, code, want, body)
	}
	if code, _ := get(t, base+"/v1/status", ""); code != http.StatusNotFound {
		t.Errorf("GET %s/v1/status: %d, want 404: the metrics address serves metrics only", base, code)
	}
	if err := d.Stop(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Stop, %s: %v, want it removed", MetricsAddrFile, err)
	}
	if resp, err := http.Get(base + "/metrics"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Errorf("after Stop, GET %s/metrics answered %s", base, resp.Status)
	}
}

func ptr[T any](v T) *T { return &v }

// loopbackDaemon makes a data dir and the config of a daemon in it that
// listens on loopback only and sells 2 vCPUs and 2 GiB.
func loopbackDaemon(t *testing.T) (dir string, c config.Config) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "node")
	if _, err := config.Init(dir, false); err != nil {
		t.Fatal(err)
	}
	c = config.Default()
	c.Listen = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	c.API.Listen = "127.0.0.1:0"
	c.Capacity.Auto, c.Capacity.CPU, c.Capacity.Memory, c.Capacity.Scratch = false, ptr(config.CPU(2000)), ptr(config.Bytes(2<<30)), ptr(config.Bytes(0))
	c.Executor.CacheDir = exectest.CacheDir(t)
	return dir, c
}
