// Package record, in the protocol room, signs and opens the signed records of
// cuivre (SPEC 3): offers, leases, usage receipts, countersignatures, capacity
// records and jobs, each sealed in a libp2p signed envelope under the signing
// domain of its kind, so that a signature made for one kind never verifies as
// another.
//
// Open and the Open functions of each kind check the signature, the signer,
// the sizes and, given now, the expiry; replay is the caller's check
// (protocol.ReplayCache). The package is apart from package protocol so that
// the wire contract, which the scheduler imports, carries no libp2p.
package record
