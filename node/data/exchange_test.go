package data_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/memnet"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// holder serves the blocks of a store, and counts them.
type holder struct {
	transport.Handler
	s      *data.Store
	srv    *data.Server
	served atomic.Int64
	lie    bool // flip a byte of every block it sends
}

// newHolder returns a holder of a new store, which grants nothing yet.
func newHolder(t *testing.T) *holder {
	s := open(t)
	return &holder{s: s, srv: data.NewServer(s, data.ServerLimits{})}
}

func (h *holder) Blocks(ctx context.Context, from string, req *pb.BlockRequest, send func(*pb.BlockResponse) error) error {
	return h.srv.Serve(ctx, from, req, func(r *pb.BlockResponse) error {
		if len(r.Data) > 0 {
			h.served.Add(1)
			if h.lie {
				r.Data = bytes.Clone(r.Data)
				r.Data[0] ^= 0xff
			}
		}
		return send(r)
	})
}

// cutter is a transport that breaks every exchange once after blocks have
// come through it, as a connection cut halfway.
type cutter struct {
	transport.Transport
	after int64
	seen  atomic.Int64
	asked atomic.Int64 // CIDs asked
}

func (c *cutter) Blocks(ctx context.Context, to string, req *pb.BlockRequest, fn func(*pb.BlockResponse) bool) error {
	c.asked.Add(int64(len(req.Cids)))
	var cut error
	err := c.Transport.Blocks(ctx, to, req, func(r *pb.BlockResponse) bool {
		if c.after > 0 && c.seen.Add(1) > c.after {
			cut = errors.New("connection cut")
			return false
		}
		return fn(r)
	})
	if cut != nil {
		return cut
	}
	return err
}

// dag adds a directory of about 3 MiB (a dozen leaves and more) to s.
func dag(t *testing.T, s *data.Store) (cid.Cid, map[string][]byte) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "in")
	files := map[string][]byte{"big.bin": pseudo(12*data.ChunkSize+99, 3), "small.txt": []byte("small\n"), "d/e.txt": []byte("e\n")}
	for name, b := range files {
		write(t, filepath.Join(src, name), b)
	}
	root, err := s.AddPath(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return root, files
}

func net(t *testing.T, holders ...*holder) (*memnet.Network, *memnet.Peer, []string) {
	n := memnet.New(clock.Real{}, 1)
	var ids []string
	for i, h := range holders {
		id := string(rune('a' + i))
		n.Join(id).Serve(h)
		ids = append(ids, id)
	}
	return n, n.Join("fetcher"), ids
}

func check(t *testing.T, s *data.Store, root cid.Cid, files map[string][]byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	if err := s.Get(context.Background(), root, out); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(out, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(got), err, len(want))
		}
	}
}

// TestFetch: a DAG fetched from two holders comes whole, both holders
// serving part of it; a root no holder has is not found.
func TestFetch(t *testing.T) {
	ctx := context.Background()
	a, b := newHolder(t), newHolder(t)
	root, files := dag(t, a.s)
	a.srv.Share(root)
	b.srv.Share(root)
	var car bytes.Buffer
	if err := a.s.ExportCAR(ctx, root, &car); err != nil {
		t.Fatal(err)
	}
	if _, err := b.s.ImportCAR(ctx, &car, 1<<30); err != nil {
		t.Fatal(err)
	}
	_, p, ids := net(t, a, b)
	s := open(t)
	if err := s.Fetch(ctx, p, ids, root, data.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	check(t, s, root, files)
	if a.served.Load() == 0 || b.served.Load() == 0 {
		t.Errorf("served %d and %d blocks: want both holders asked", a.served.Load(), b.served.Load())
	}
	missing := protocolCID("never added")
	a.srv.Share(missing)
	b.srv.Share(missing)
	if err := s.Fetch(ctx, p, ids, missing, data.FetchOptions{}); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("a root no holder has: %v, want ErrNotFound", err)
	}
}

// TestFetchResumes: a fetch cut halfway keeps what it got, and the next
// fetch asks only for the rest.
func TestFetchResumes(t *testing.T) {
	ctx := context.Background()
	a := newHolder(t)
	root, files := dag(t, a.s)
	a.srv.Grant("fetcher", root)
	_, p, ids := net(t, a)
	s := open(t)
	cut := &cutter{Transport: p, after: 8}
	if err := s.Fetch(ctx, cut, ids, root, data.FetchOptions{}); err == nil {
		t.Fatal("a cut fetch succeeded")
	}
	kept := count(t, s)
	again := &cutter{Transport: p}
	if err := s.Fetch(ctx, again, ids, root, data.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	check(t, s, root, files)
	whole := count(t, s)
	t.Logf("the cut fetch kept %d blocks of %d; the second asked for %d", kept, whole, again.asked.Load())
	if asked := again.asked.Load(); kept == 0 || kept == whole || asked != int64(whole-kept) {
		t.Fatalf("the cut fetch kept %d blocks of %d, the second asked for %d: want exactly the rest", kept, whole, asked)
	}
}

// TestFetchRefusesLies: a holder whose blocks do not hash to their CIDs
// stops the fetch with CODE_MALFORMED, and nothing it sent is kept.
func TestFetchRefusesLies(t *testing.T) {
	ctx := context.Background()
	a := newHolder(t)
	a.lie = true
	root, _ := dag(t, a.s)
	a.srv.Share(root)
	_, p, ids := net(t, a)
	s := open(t)
	if err := s.Fetch(ctx, p, ids, root, data.FetchOptions{}); !errors.Is(err, &protocol.Error{Code: protocol.CodeMalformed}) {
		t.Fatalf("lying holder: %v, want malformed", err)
	}
	if ok, _ := s.Has(ctx, root); ok {
		t.Fatal("a block that lies was kept")
	}
}

// count returns the number of blocks s holds.
func count(t *testing.T, s *data.Store) int {
	t.Helper()
	keys, err := s.Blockstore().AllKeysChan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys {
		n++
	}
	return n
}

func protocolCID(s string) cid.Cid {
	c, _ := cid.V1Builder{Codec: cid.Raw, MhType: 0x12}.Sum([]byte(s))
	return c
}
