// Package protocol is the wire contract of cuivre: the protobuf messages, versioned
// protocol IDs, length-prefixed framing with size limits, signed record types and
// their signing domains, the job spec and its CID, and DHT facet keys.
//
// SPEC.md at the root of the repository is the prose form of this package; code
// comments cite its sections ("SPEC 6.2"). testdata/ holds byte-exact vectors that
// another implementation can check itself against.
//
// Nothing here reads the clock: every check that depends on time takes now as a
// parameter, so the scheduler and the simulator can call it with virtual time.
package protocol
