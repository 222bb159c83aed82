// Package conformance, a room of its own, is the conformance kit of the cuivre
// protocol: suites that drive an implementation only through the wire, as a
// third party would, and check it against SPEC.md. It imports only the
// protocol room and libraries (go-libp2p, kad-dht), never the node or the
// scheduler, so that what it checks is the specification, not our code.
//
// RunProvider plays a requester and a customer against a provider reached at
// a multiaddr: it reads the provider's capacity record and facet keys from the
// DHT, asks for offers, leases, declines, cancels and re-leases at higher
// epochs, serves the job's module over /cuivre/module (SPEC 6.5), watches the
// runs on one and two streams, serves jobs' inputs over /cuivre/blocks and
// fetches a run's output from it (SPEC 6.6), checks the receipts (recomputing
// each amount with the formula of SPEC 5.5 from the receipt's own fields),
// countersigns them, and sends malformed, oversized, wrong-domain, expired
// and replayed messages, jobs breaking one rule of SPEC 5.2 each, and
// modules and inputs with one fault each, to see them refused with the right
// codes.
//
// RunRequester plays three providers, announced in a DHT of their own, for a
// requester under test that bootstraps from them and places one job: it
// checks the requester's offer requests and leases, that it does not lease an
// offer whose total lies, that it serves its job's module (SPEC 6.5), that it
// cancels a lease gone silent and leases the slot again at a higher epoch
// (SPEC 9), and that it countersigns the run's receipt (SPEC 6.4).
//
// Each check has an ID, the SPEC section it tests and a result: pass, fail
// (with the rule and what was seen) or skip (with why). A check never depends
// on the order in which a peer applies its own checks (SPEC 6): every refusal
// the kit provokes comes from a request with exactly one fault.
//
// The kit waits on events, never on timers, except where the protocol itself
// is about time (an expired lease, a silent one); every wait is bounded by
// the caller's context.
package conformance
