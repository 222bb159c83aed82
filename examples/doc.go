// Package examples is the room of things people copy: job specs (jobs/), node
// configurations, WebAssembly workload sources (wasm/) and simulation scenarios.
// It holds no library code; the protocol tests check that every job spec here
// still parses.
package examples
