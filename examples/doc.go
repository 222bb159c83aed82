// Package examples is the room of things people copy: job specs (jobs/), node
// configurations, WebAssembly workload sources (wasm/), simulation scenarios
// and a systemd unit for a provider node (systemd/).
// It holds no library code; the protocol tests check that every job spec here
// still parses.
package examples
