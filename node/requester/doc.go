// Package requester is the node's requester driver: it places customers' jobs
// by driving one scheduler.Placement per job (SPEC 6, SPEC 9). The placement
// decides; this package carries its actions out over a transport.Transport
// and turns what comes back into its events, with time from a clock.Clock.
//
// # Goroutines
//
// Each job has one goroutine, drive, the only one that steps its placement;
// it lives until the job is final and linger has passed, or Close. Every
// exchange an action asks for (a lookup, an offer request, a lease and the
// watch that follows it, a decline, a cancel, a receipt) runs in a goroutine
// of its own that answers with an event; so does each job's writer of
// statuses (saveJob). All of them are started with spawn, and Close waits
// for every one: once it returns, nothing writes to the store.
//
// # Locks
//
//   - jobsMu guards the jobs map.
//   - each job's mu guards its status, results, logs, pending save and
//     change channel. Never take jobsMu while holding a job's mu.
//   - the candidate cache's mu guards its entries; the dead set's mu, the
//     providers that did not answer, which every placement's candidates
//     leave out for deadFor.
//
// # Durability and messages
//
//   - Submit returns only after the job's first record is synced; the
//     placement starts beside that write, not after it.
//   - A status is reported in memory at once and saved behind the
//     placement; the latest wins. A crash may lose the last steps: a
//     resumed placement re-places what it no longer knows of, and a lease
//     orphaned so is never countersigned, so it is never billed twice.
//   - A result is handed to the placement before its receipt is settled;
//     the receipt and its countersignature are synced before the
//     countersignature is sent to the provider.
//   - Stop never blocks: a job whose placement has ended has nothing to
//     cancel.
package requester
