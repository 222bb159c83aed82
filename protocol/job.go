package protocol

import (
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/protocol/pb"
)

// JobCID returns the CID that identifies a job: SumCID of its canonical encoding
// (SPEC 5.3).
func JobCID(j *pb.Job) (cid.Cid, error) {
	b, err := Canonical(j)
	if err != nil {
		return cid.Undef, fmt.Errorf("encode job: %w", err)
	}
	return SumCID(b), nil
}
