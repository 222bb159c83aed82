// Package wire, in the protocol room, holds the two encodings cuivre takes
// from the libp2p and multiformats stack: the unsigned-varint length-prefixed
// frames of every stream (SPEC 2.2), read and written by Reader and Writer
// within a size limit, and CIDs (SPEC 2.4), made by SumCID, JobCID and
// FacetCID and read by ParseCID and DecodeCID.
//
// The rule of which CIDs are accepted is package protocol's CheckCID, which
// reads bytes without go-cid; the package is apart from protocol so that the
// wire contract, which the scheduler imports, carries no libp2p or
// multiformats code.
package wire
