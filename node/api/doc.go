// Package api is the node's local HTTP API for the CLI, and its client: JSON
// under /v1 behind a bearer token, and /healthz, /readyz and /metrics, on a
// loopback address. It serves a Backend (the node) and holds no state of its
// own; net/http runs each request in its own goroutine.
package api
