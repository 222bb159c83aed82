package conformance

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// blockServer answers /cuivre/blocks/1.0.0 (SPEC 6.6) as a requester holding
// its jobs' inputs does: per root, a block (an input of one raw block is a
// UnixFS file), or a refusal, and it records the roots it was asked under.
type blockServer struct {
	mu     sync.Mutex
	blocks map[string][]byte  // root CID bytes -> the bytes served for it
	refuse map[string]pb.Code // root CID bytes -> the refusal answered
	asked  map[string]bool    // roots named by a request
}

func newBlockServer() *blockServer {
	return &blockServer{blocks: map[string][]byte{}, refuse: map[string]pb.Code{}, asked: map[string]bool{}}
}

func (b *blockServer) handle(s network.Stream) {
	defer s.Close()
	r, w := wire.NewReader(s, protocol.MaxBlocksMsg), wire.NewWriter(s, protocol.MaxBlocksMsg)
	var req pb.BlockRequest
	if err := r.ReadMsg(&req); err != nil {
		w.WriteMsg(&pb.BlockResponse{Error: protocol.ToPB(protocol.Errorf(protocol.CodeMalformed, "block request: %v", err))})
		return
	}
	b.mu.Lock()
	b.asked[string(req.Root)] = true
	data, ok := b.blocks[string(req.Root)]
	code := b.refuse[string(req.Root)]
	b.mu.Unlock()
	if code != 0 || !ok {
		w.WriteMsg(&pb.BlockResponse{Error: &pb.Error{Code: max(code, pb.Code_CODE_UNAUTHORIZED), Message: "the conformance kit grants no such root"}})
		return
	}
	for _, c := range req.Cids {
		if string(c) != string(req.Root) {
			w.WriteMsg(&pb.BlockResponse{Error: &pb.Error{Code: pb.Code_CODE_UNAUTHORIZED, Message: "not reached from the root"}})
			return
		}
		if w.WriteMsg(&pb.BlockResponse{Cid: c, Data: data}) != nil {
			return
		}
	}
}

// inputRuns leases jobs with one input each, a file of one raw block that
// the kit serves as the lease's requester (SPEC 6.6): fetched and checked,
// the run goes on; bytes that do not hash to the CID, a size other than the
// job signed, a root refused: the lease ends FAILED with the code 6.6 says.
func (s *provSuite) inputRuns(ctx context.Context) {
	content := []byte("an input of the conformance kit\n")
	for _, c := range []struct {
		id, name string
		serve    []byte  // the bytes served for the root
		size     uint64  // the size the job signs
		refuse   pb.Code // the holder's refusal, if any
		want     pb.LeaseState
		code     pb.Code
	}{
		{"inputs.fetch", "conformance-input", content, uint64(len(content)), 0, pb.LeaseState_LEASE_STATE_SUCCEEDED, 0},
		{"inputs.checked", "conformance-input-bad-bytes", []byte("other bytes than the CID names\n"), uint64(len(content)), 0, pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_MALFORMED},
		{"inputs.checked", "conformance-input-smaller", content, uint64(len(content)) + 1, 0, pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_MALFORMED},
		{"inputs.checked", "conformance-input-larger", content, uint64(len(content)) - 1, 0, pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_INSUFFICIENT_SCRATCH},
		{"inputs.refused", "conformance-input-refused", nil, uint64(len(content)), pb.Code_CODE_UNAUTHORIZED, pb.LeaseState_LEASE_STATE_FAILED, pb.Code_CODE_UNAUTHORIZED},
	} {
		// Each case its own root: the content with the case's name.
		body := append([]byte(c.name+": "), content...)
		root := wire.SumCID(body).Bytes()
		serve := body
		if c.serve != nil && string(c.serve) != string(content) {
			serve = c.serve
		}
		size := c.size + uint64(len(c.name)+2)
		s.blocks.mu.Lock()
		if c.refuse != 0 {
			s.blocks.refuse[string(root)] = c.refuse
		} else {
			s.blocks.blocks[string(root)] = serve
		}
		s.blocks.mu.Unlock()
		j := proto.Clone(s.job.Job).(*pb.Job)
		j.Nonce = random(protocol.NonceSize)
		j.Task.Inputs = []*pb.Input{{Path: "in.txt", Cid: root, Size: size}}
		job := s.sealJob(j)
		res, seen := s.leaseAndWatch(ctx, job, time.Minute, c.want)
		if res == nil {
			s.fail(c.id, "%s: %s", c.name, seen)
			continue
		}
		s.blocks.mu.Lock()
		asked := s.blocks.asked[string(root)]
		s.blocks.mu.Unlock()
		s.expect(c.id, asked && res.State == c.want && res.GetError().GetCode() == c.code,
			"%s: asked under its root %v; the Result %s, want %s %s", c.name, asked, resultSummary(res), c.want, c.code)
	}
}
