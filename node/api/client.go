package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Client talks to a daemon's local API, found through the data dir.
type Client struct {
	base, token string
	http        *http.Client
}

// Dial reads dir/api and dir/api.token, which a running daemon writes.
func Dial(dir string) (*Client, error) {
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
	return NewClient(strings.TrimSpace(string(addr)), strings.TrimSpace(string(tok))), nil
}

// NewClient talks to the API at base ("http://127.0.0.1:4243") with token.
func NewClient(base, token string) *Client {
	// A node under a burst of submissions may take seconds to answer.
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: time.Minute}}
}

// Get fetches path (e.g. "/v1/status") into out.
func (c *Client) Get(path string, out any) error { return c.Do("GET", path, nil, out) }

// StatusError is the daemon's error answer to a request: its HTTP status,
// and its message, which is the error's text.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

// Do sends in (JSON, if not nil) with method to path and decodes the answer
// into out (if not nil). An error answer comes back as an error carrying the
// daemon's message.
func (c *Client) Do(method, path string, in, out any) error {
	resp, err := c.send(context.Background(), method, path, in, c.http)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return &StatusError{Code: resp.StatusCode, Msg: e.Error}
		}
		return &StatusError{Code: resp.StatusCode, Msg: fmt.Sprintf("daemon API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// Stream copies a plain-text answer (logs) to w as it comes, with no timeout.
func (c *Client) Stream(path string, w io.Writer) error {
	body, err := c.open(context.Background(), path)
	if err != nil {
		return err
	}
	defer body.Close()
	_, err = io.Copy(w, body)
	return err
}

// open GETs a streamed answer, with no timeout but ctx's.
func (c *Client) open(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, "GET", path, nil, &http.Client{})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return resp.Body, nil
}

// Upload posts body, of media type typ, to path with no timeout, and decodes
// the JSON answer into out.
func (c *Client) Upload(path, typ string, body io.Reader, out any) error {
	req, err := http.NewRequest("POST", c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", typ)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("daemon API at %s: %w (is `cuivre daemon` running?)", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("daemon API POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

func (c *Client) send(ctx context.Context, method, path string, in any, hc *http.Client) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("daemon API at %s: %w (is `cuivre daemon` running?)", c.base, err)
	}
	return resp, nil
}

// UIURL is the link to the node's operator page, with the token in its
// fragment: the page keeps it for its tab, and the browser never sends a
// fragment to a server.
func (c *Client) UIURL() string { return c.base + "/ui/#token=" + c.token }

// Follow reads a job's events as the node pushes them (GET
// /v1/jobs/{cid}/events), calling f with each, until the one that says the
// job is done, f's error, or ctx's end.
func (c *Client) Follow(ctx context.Context, key string, f func(JobEvent) error) error {
	body, err := c.open(ctx, "/v1/jobs/"+url.PathEscape(key)+"/events")
	if err != nil {
		return err
	}
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var ev JobEvent
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the node's events of %s ended before the job did: %w", key, err)
		}
		if err := f(ev); err != nil || ev.Done {
			return err
		}
	}
}
