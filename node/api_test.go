package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol/wire"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAPI(t *testing.T) {
	prov, _ := newPair(t)
	dir := t.TempDir()
	if _, err := prov.ServeAPI("0.0.0.0:0", dir); err == nil {
		t.Fatal("the API listened on a public address")
	}
	srv, err := prov.ServeAPI("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())

	tok, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "api.token")); fi.Mode().Perm() != 0o600 {
		t.Errorf("api.token mode %v, want 0600", fi.Mode().Perm())
	}
	addr, _ := os.ReadFile(filepath.Join(dir, "api"))
	base := strings.TrimSpace(string(addr))
	if base != srv.Addr() {
		t.Fatalf("api file says %q, API is at %q", base, srv.Addr())
	}

	if code, _ := get(t, base+"/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get(t, base+"/readyz", ""); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	if code, _ := get(t, base+"/v1/status", ""); code != 401 {
		t.Errorf("/v1/status without a token: %d, want 401", code)
	}
	if code, _ := get(t, base+"/v1/status", "wrong"); code != 401 {
		t.Errorf("/v1/status with a wrong token: %d, want 401", code)
	}
	code, body := get(t, base+"/v1/status", strings.TrimSpace(string(tok)))
	var st api.NodeStatus
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.ID != prov.ID().String() || st.Peers != 1 {
		t.Errorf("/v1/status: %d %s", code, body)
	}
	code, body = get(t, base+"/metrics", "")
	if code != 200 || !strings.Contains(body, "cuivre_dht_routing_table_peers 1") {
		t.Errorf("/metrics: %d, lacks the routing table gauge", code)
	}
}

// TestAPIModules: a module is held, or not: the CLI sends its bytes with a
// job only when not.
func TestAPIModules(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := New(Options{Identity: newKey(t), Market: testMarket(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dir := t.TempDir()
	srv, err := n.ServeAPI("127.0.0.1:0", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	base := srv.Addr()
	tok, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	held, err := n.AddModule([]byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/v1/modules/"+held.String(), strings.TrimSpace(string(tok))); code != 200 {
		t.Errorf("/v1/modules of a module held: %d %s", code, body)
	}
	if code, _ := get(t, base+"/v1/modules/"+wire.SumCID([]byte("other")).String(), strings.TrimSpace(string(tok))); code != 404 {
		t.Errorf("/v1/modules of a module not held: %d, want 404", code)
	}
	if code, _ := get(t, base+"/v1/modules/not-a-cid", strings.TrimSpace(string(tok))); code != 400 {
		t.Errorf("/v1/modules of no CID: %d, want 400", code)
	}
}
