package record

import (
	"bytes"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// SignedJob is a job as a provider receives it: sealed by the customer.
type SignedJob struct {
	Job      *pb.Job
	CID      cid.Cid
	Customer peer.ID
	Envelope []byte // the sealed bytes, as received
}

// SealJob signs a job with the customer's key. The job must be valid; its nonce,
// if empty, is the caller's to set before (a job's CID covers its nonce).
func SealJob(key crypto.PrivKey, j *pb.Job) (*SignedJob, error) {
	if err := protocol.ValidateJob(j); err != nil {
		return nil, err
	}
	env, err := Seal(key, j)
	if err != nil {
		return nil, err
	}
	return OpenJob(env)
}

// OpenJob opens a sealed job: a valid signature under the job domain, a payload
// in canonical form (so the CID is the one every party computes), and a valid job.
func OpenJob(data []byte) (*SignedJob, error) {
	j := new(pb.Job)
	signer, raw, err := Open(data, j)
	if err != nil {
		return nil, err
	}
	canon, err := protocol.Canonical(j)
	if err != nil || !bytes.Equal(canon, raw) {
		return nil, protocol.Errorf(protocol.CodeMalformed, "job payload is not in canonical form")
	}
	if err := protocol.ValidateJob(j); err != nil {
		return nil, err
	}
	return &SignedJob{Job: j, CID: wire.SumCID(raw), Customer: signer, Envelope: data}, nil
}
