// Package protocol, the base of the protocol room, is the wire contract of cuivre:
// the protobuf messages, versioned protocol IDs and size limits, the rules of a
// job, of a label and of a CID, DHT facet keys, prices and quantities, the
// seed of a job's random stream, and the typed errors shared by the wire and
// Go code. Signed records and their signing domains live in package record,
// framing and CIDs as go-cid values in package wire, the YAML job spec in
// package jobspec.
//
// It imports no libp2p, multiformats or YAML code, so neither does the
// scheduler, which imports it; the rooms test at the root of the repository
// keeps it so.
//
// SPEC.md at the root of the repository is the prose form of this package; code
// comments cite its sections ("SPEC 6.2"). testdata/ holds byte-exact vectors that
// another implementation can check itself against.
//
// Nothing here reads the clock: every check that depends on time takes now as a
// parameter, so the scheduler and the simulator can call it with virtual time.
package protocol
