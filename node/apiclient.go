package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// APIClient talks to a daemon's local API, found through the data dir.
type APIClient struct {
	base, token string
	http        *http.Client
}

// DialAPI reads dir/api and dir/api.token, which a running daemon writes.
func DialAPI(dir string) (*APIClient, error) {
	addr, err := os.ReadFile(filepath.Join(dir, "api"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no daemon API in %s: start one with `cuivre daemon --data-dir %s`", dir, dir)
	}
	if err != nil {
		return nil, err
	}
	tok, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		return nil, fmt.Errorf("api token: %w", err)
	}
	return &APIClient{base: strings.TrimSpace(string(addr)), token: strings.TrimSpace(string(tok)),
		http: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Get fetches path (e.g. "/v1/status") into out.
func (c *APIClient) Get(path string, out any) error {
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("daemon API at %s: %w (is `cuivre daemon` running?)", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("daemon API %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}
