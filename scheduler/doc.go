// Package scheduler is the deterministic placement core of cuivre: no I/O,
// goroutines, clock or global randomness.
//
// It holds the decisions that make cuivre a market: which providers a requester
// asks, which offer wins, what a provider promises. They are state machines that
// take events and a time and return actions; the node drives them with real
// streams and timers, the simulator with modelled ones. Same seed, same inputs,
// same decisions. The rooms test at the root of the repository enforces that no
// file here (tests aside) imports a network, file or libp2p package, reads the
// clock, sleeps, or starts a goroutine.
package scheduler
