package wire

import (
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// SumCID returns the CIDv1 (raw codec, sha2-256) of data (SPEC 2.4). Modules,
// outputs, jobs and facet keys are all named this way.
func SumCID(data []byte) cid.Cid {
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		panic("sha2-256 multihash: " + err.Error()) // cannot fail for a registered hash
	}
	return cid.NewCidV1(cid.Raw, h)
}

// ParseCID reads a CID from its binary form, and accepts only the CIDv1 raw
// sha2-256 form cuivre uses (protocol.CheckCID).
func ParseCID(b []byte) (cid.Cid, error) {
	if err := protocol.CheckCID(b); err != nil {
		return cid.Undef, protocol.Errorf(protocol.CodeMalformed, "cid: %v", err)
	}
	return cid.Cast(b)
}

// DecodeCID reads a CID from its text form (base32 "bafk..." and the like).
func DecodeCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, protocol.Errorf(protocol.CodeMalformed, "cid %q: %v", s, err)
	}
	if err := protocol.CheckCID(c.Bytes()); err != nil {
		return cid.Undef, protocol.Errorf(protocol.CodeMalformed, "cid %s: %v", s, err)
	}
	return c, nil
}

// JobCID returns the CID that identifies a job: SumCID of its canonical encoding
// (SPEC 5.3).
func JobCID(j *pb.Job) (cid.Cid, error) {
	b, err := protocol.Canonical(j)
	if err != nil {
		return cid.Undef, fmt.Errorf("encode job: %w", err)
	}
	return SumCID(b), nil
}

// FacetCID returns the DHT key of a facet key: SumCID of its canonical string
// (SPEC 4.3).
func FacetCID(k protocol.FacetKey) cid.Cid { return SumCID([]byte(k.String())) }
