// Package node is the daemon: it composes the node's rooms into one running
// node. The libp2p transport (node/p2p) carries the protocols; the provider's
// driver (node/provider) serves on it; the requester's driver
// (node/requester) places on it; the local API (node/api) serves the CLI; the
// announcements in the DHT and the metrics registry live here, served at the
// API's /metrics and, when the config's metrics.listen names an address, by a
// server of the Daemon's own there, which Stop closes.
//
// # The drivers' manual
//
// The scheduler's core decides and never does I/O. Three drivers step it:
// this node (real streams, real time), the simulator (a virtual clock and a
// modelled network), and the tests (node/nodetest on the in-memory
// node/memnet, in a testing/synctest bubble). The node's drivers reach the
// network only through a transport.Transport and read time only from a
// clock.Clock; node/requester and node/provider each say, in their package
// documentation, which goroutines they own, what each lock guards, and the
// order of durability and messages that every action keeps.
//
// # Goroutines
//
// A Node owns one goroutine of its own, the advertiser (advertise), which
// announces the node's facet keys and capacity record, and stops when the
// node drains or closes. A requester-only node (Options.RequesterOnly)
// announces nothing and has none; it has no provider's driver either, and
// its host answers only the module and block requests of the providers
// that run its jobs (buyer). Everything else belongs to the room that started it,
// and Close stops them in order: the advertiser, the requester (its jobs stay
// in the store), the provider (runs still going are cancelled and recorded),
// then the host.
//
// # Lifetime and draining
//
// A node's lifetime is its own: New takes no context, so a signal that asks
// the daemon to stop does not cut its runs short. Daemon.Stop drains: offers
// are refused at once, the advertiser stops (records expire), running leases
// get the grace period, the rest are cancelled, billed, and their watching
// requesters told; then everything closes.
package node
