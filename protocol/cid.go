package protocol

import (
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
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
// sha2-256 form cuivre uses.
func ParseCID(b []byte) (cid.Cid, error) {
	n, c, err := cid.CidFromBytes(b)
	if err != nil {
		return cid.Undef, Errorf(CodeMalformed, "cid: %v", err)
	}
	if n != len(b) {
		return cid.Undef, Errorf(CodeMalformed, "cid: %d trailing bytes", len(b)-n)
	}
	return c, checkCID(c)
}

// DecodeCID reads a CID from its text form (base32 "bafk..." and the like).
func DecodeCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, Errorf(CodeMalformed, "cid %q: %v", s, err)
	}
	return c, checkCID(c)
}

func checkCID(c cid.Cid) error {
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return Errorf(CodeMalformed, "cid %s: want CIDv1, raw codec, sha2-256", c)
	}
	return nil
}
