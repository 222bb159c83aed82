// Package provider is the node's provider driver: the provider's side of each
// protocol (SPEC 6) around a scheduler.Market. It answers offer requests,
// commits leases, runs them on the executor, streams their status and logs to
// watchers, signs usage receipts and takes their countersignatures back. It
// reaches the network only through a transport.Transport (to fetch modules)
// and is reached only as a transport.Handler; it reads time only from a
// clock.Clock.
//
// # Goroutines
//
// The provider owns one goroutine per running lease (execute), started after
// the lease's acknowledgement, and the clock's timers that forget an ended
// run after runLinger. Handler calls run in the transport's goroutines, one
// per request; a Watch call lives as long as its stream.
//
// # Locks
//
//   - mu guards the market (and the released channel): every Quote, Commit,
//     Decline and Release happens under it, so capacity is never
//     over-committed.
//   - runsMu guards the runs map; each run's own mu guards its state, Status seq, logs,
//     result and changed channel. Never hold mu and runsMu together.
//
// # Durability and messages
//
//   - A lease is committed in the market, then written with its nonce in one
//     synced store transaction, then acknowledged; its run starts after the
//     acknowledgement. A kill -9 therefore loses nothing acknowledged.
//   - A run's intermediate states (fetching, running) are told to watchers at
//     once and written with its final state: a restart ends every lease that
//     was live, whatever its state (recover.go), so they need no fsync of
//     their own.
//   - A run's end (state, outcome, receipt) is released from the market, then
//     written in one synced transaction, and only then told to watchers.
//   - A countersignature is synced before it is acknowledged.
package provider
