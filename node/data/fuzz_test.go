package data_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol/pb"
)

// writeFile writes b at path, making its directory.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// allCIDs lists the CIDs a store holds.
func allCIDs(t testing.TB, s *data.Store) []cid.Cid {
	keys, err := s.Blockstore().AllKeysChan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []cid.Cid
	for k := range keys {
		out = append(out, k)
	}
	return out
}

// FuzzServe: whatever request a peer sends, a holder answers it in order,
// each answer a block whose bytes hash to the CID it names, a "missing", or
// one refusal with a code that ends the stream; never more answers than
// CIDs asked.
func FuzzServe(f *testing.F) {
	s, err := data.Open(filepath.Join(f.TempDir(), "blocks"))
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	src := filepath.Join(f.TempDir(), "in")
	if err := writeFile(filepath.Join(src, "f.bin"), pseudo(3*data.ChunkSize+7, 9)); err != nil {
		f.Fatal(err)
	}
	root, err := s.AddPath(context.Background(), src)
	if err != nil {
		f.Fatal(err)
	}
	srv := data.NewServer(s, data.ServerLimits{})
	srv.Grant("peer", root)
	cids := allCIDs(f, s)
	seed := func(req *pb.BlockRequest) {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&pb.BlockRequest{Root: root.Bytes(), Cids: [][]byte{root.Bytes()}})
	all := &pb.BlockRequest{Root: root.Bytes()}
	for _, c := range cids {
		all.Cids = append(all.Cids, c.Bytes())
	}
	seed(all)
	seed(&pb.BlockRequest{Root: root.Bytes(), Cids: [][]byte{protocolCID("absent").Bytes(), {1, 2, 3}}})
	seed(&pb.BlockRequest{})
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Start()()
		var req pb.BlockRequest
		if proto.Unmarshal(b, &req) != nil {
			return // the transport refuses it before the server
		}
		var answers []*pb.BlockResponse
		err := srv.Serve(context.Background(), "peer", &req, func(r *pb.BlockResponse) error {
			answers = append(answers, r)
			return nil
		})
		if err != nil {
			t.Fatalf("Serve returned %v: a refusal must be an answer", err)
		}
		if len(answers) > max(len(req.Cids), 1) {
			t.Fatalf("%d answers to %d CIDs", len(answers), len(req.Cids))
		}
		for i, a := range answers {
			switch {
			case a.Error != nil:
				if a.Error.Code == pb.Code_CODE_UNSPECIFIED || i != len(answers)-1 {
					t.Fatalf("answer %d: refusal %v with no code or not last", i, a.Error)
				}
			case a.Missing:
			default:
				c, err := cid.Cast(a.Cid)
				if err != nil {
					t.Fatalf("answer %d names no CID: %v", i, err)
				}
				if got, err := c.Prefix().Sum(a.Data); err != nil || !got.Equals(c) {
					t.Fatalf("answer %d: its bytes are not block %s", i, c)
				}
			}
		}
	})
}

// liar answers the blocks asked of it as its script says, one byte per CID:
// the block, missing, other bytes, another block, or a refusal.
type liar struct {
	transport.Transport
	blocks map[cid.Cid][]byte
	other  []byte
	script []byte
}

func (l *liar) Blocks(ctx context.Context, to string, req *pb.BlockRequest, fn func(*pb.BlockResponse) bool) error {
	for _, raw := range req.Cids {
		if len(l.script) == 0 {
			return nil
		}
		b := l.script[0]
		l.script = l.script[1:]
		c, _ := cid.Cast(raw)
		r := &pb.BlockResponse{Cid: raw}
		switch b % 5 {
		case 0:
			d, ok := l.blocks[c]
			r.Data, r.Missing = d, !ok
		case 1:
			r.Missing = true
		case 2:
			r.Data = l.script
		case 3:
			r.Data = l.other
		default:
			code := pb.Code(b)
			if code == pb.Code_CODE_RATE_LIMITED || code == pb.Code_CODE_UNSPECIFIED {
				code = pb.Code_CODE_MALFORMED
			}
			r.Error = &pb.Error{Code: code}
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}

// FuzzFetch: whatever a holder answers, the fetcher keeps only blocks whose
// bytes hash to their CID, and reports success only with the whole DAG.
func FuzzFetch(f *testing.F) {
	holder, err := data.Open(filepath.Join(f.TempDir(), "holder"))
	if err != nil {
		f.Fatal(err)
	}
	defer holder.Close()
	src := filepath.Join(f.TempDir(), "in")
	if err := writeFile(filepath.Join(src, "f.bin"), pseudo(3*data.ChunkSize+7, 9)); err != nil {
		f.Fatal(err)
	}
	root, err := holder.AddPath(context.Background(), src)
	if err != nil {
		f.Fatal(err)
	}
	blocks := map[cid.Cid][]byte{}
	for _, c := range allCIDs(f, holder) {
		b, err := holder.Blockstore().Get(context.Background(), c)
		if err != nil {
			f.Fatal(err)
		}
		blocks[c] = b.RawData()
	}
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 2, 0, 0, 0})
	f.Add([]byte{0, 0, 3, 1, 4})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, script []byte) {
		defer fuzzguard.Start()()
		s, err := data.Open(filepath.Join(t.TempDir(), "blocks"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		l := &liar{blocks: blocks, other: []byte("not the block"), script: script}
		err = s.Fetch(context.Background(), l, []string{"holder"}, root, data.FetchOptions{Retries: 1})
		for _, c := range allCIDs(t, s) {
			b, gerr := s.Blockstore().Get(context.Background(), c)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if got, err := c.Prefix().Sum(b.RawData()); err != nil || !got.Equals(c) {
				t.Fatalf("the store kept bytes that are not block %s", c)
			}
		}
		if err == nil {
			for c := range blocks {
				if ok, _ := s.Has(context.Background(), c); !ok {
					t.Fatalf("Fetch succeeded without block %s", c)
				}
			}
		}
	})
}
