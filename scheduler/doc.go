// Package scheduler is the deterministic placement core of cuivre: no I/O,
// goroutines, clock or global randomness.
//
// It holds the decisions that make cuivre a market, as state machines that take
// events and a time and return actions:
//
//   - Placement is the requester's side of one job: look up facet keys, ask d x
//     slots candidates for offers (Sparrow-style batch sampling), rank the
//     offers, lease the best, decline the rest at once, watch heartbeats, and
//     reschedule a lost lease under a new epoch so a late result from the old
//     provider is refused; that provider is ranked down for the job
//     (LostLeasePenalty), not barred. When a job cannot be placed, its status
//     says why, per provider asked and in aggregate, as codes (Reason: the
//     provider's protocol code or the scheduler's own) that become words only
//     where they are shown.
//   - Market is a provider's capacity ledger and price policy: Quote reserves
//     tentatively until the offer expires, Commit turns a live offer into a
//     lease, Release bills it. It never over-commits.
//   - Ranking is feasible -> score -> limit, as in Nomad: small scorers (price,
//     load, fit, affinity, spread) weighted into a Policy; ties broken by a
//     seeded shuffle, never by map order. Each scorer's score of each offer
//     ranked is kept in the status (Scores), so it says why the winner won as
//     well as why the others lost.
//
// The node drives these with real streams and timers, the simulator with
// modelled ones, and the tests with scripts (testdata/*.txt, run by
// TestScripts; go test -rewrite regenerates their output). Same seed, same
// inputs, same decisions: TestDeterminism hashes a trace to prove it. The rooms
// test at the root of the repository enforces that no file here (tests aside)
// imports a network, file or peer-to-peer package, reads the clock, sleeps, or starts
// a goroutine.
//
// Figures (go test -bench . -benchmem -cpu 1, one core, see docs/BENCHMARKS.md):
// one whole placement with d=2 over 50 candidates takes about 7 us and 50
// allocations (about 140,000 placements per second); a provider's
// quote-commit-release about 0.3 us; ranking 1,000 offers about 160 us; an idle
// market takes about 380 bytes, one holding 4 leases about 1.6 KiB.
package scheduler
