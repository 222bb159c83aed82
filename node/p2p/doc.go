// Package p2p is the node's libp2p transport: a host on QUIC (TCP as a
// fallback) with the resource manager set for an open network, the private
// Kademlia DHT (provider records for facet keys, signed capacity records),
// and the cuivre protocols carried over length-prefixed streams (SPEC 4,
// SPEC 6). It implements transport.Transport; what the messages mean is the
// drivers' business.
//
// # Goroutines and locks
//
// libp2p runs each incoming stream in a goroutine of its own; the host counts
// them in wg, and Close waits for them after it has stopped taking new ones.
// The handler is an atomic pointer, swapped by Serve; no other state is
// shared.
//
// # Deadlines
//
// Every exchange is bounded by its context's deadline, or streamTimeout; a
// watch stream has none but its context's, on both sides.
package p2p
