package p2p_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/p2p"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol/pb"
)

// newHost starts a libp2p host on 127.0.0.1.
func newHost(t *testing.T) *p2p.Host {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(p2p.Options{Identity: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func openStore(t *testing.T) *data.Store {
	t.Helper()
	s, err := data.Open(filepath.Join(t.TempDir(), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// blocks serves a data.Server's blocks.
type blocks struct {
	transport.Handler
	srv *data.Server
}

func (b *blocks) Blocks(ctx context.Context, from string, req *pb.BlockRequest, send func(*pb.BlockResponse) error) error {
	return b.srv.Serve(ctx, from, req, send)
}

// counting is the fetcher's transport, which counts the blocks that come
// through it and, with cancel, cancels the fetch once n have.
type counting struct {
	*p2p.Host
	n      int64
	got    atomic.Int64
	cancel context.CancelFunc
}

func (c *counting) Blocks(ctx context.Context, to string, req *pb.BlockRequest, fn func(*pb.BlockResponse) bool) error {
	return c.Host.Blocks(ctx, to, req, func(r *pb.BlockResponse) bool {
		if len(r.Data) > 0 && c.got.Add(1) == c.n && c.cancel != nil {
			c.cancel()
		}
		return fn(r)
	})
}

func count(t *testing.T, s *data.Store) int64 {
	t.Helper()
	keys, err := s.Blockstore().AllKeysChan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for range keys {
		n++
	}
	return n
}

// TestFetchResumesOverLibp2p: two hosts on loopback; a fetch of a DAG of
// 12 MiB granted to the fetcher is cancelled once about half its blocks
// have arrived, and a second fetch gets the rest: it receives exactly the
// blocks the fetcher did not hold, and the DAG comes whole.
func TestFetchResumesOverLibp2p(t *testing.T) {
	ctx := context.Background()
	a, b := newHost(t), newHost(t)
	src, dst := openStore(t), openStore(t)
	payload := make([]byte, 12<<20)
	mrand.NewChaCha8([32]byte{1}).Read(payload)
	root, err := src.AddReader(ctx, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	total := count(t, src)
	srv := &blocks{srv: data.NewServer(src, data.ServerLimits{})}
	a.Serve(srv)
	if err := b.Host().Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if err := dst.Fetch(ctx, b, []string{a.Self()}, root, data.FetchOptions{}); err == nil {
		t.Fatal("a fetch of a root not granted succeeded")
	}
	srv.srv.Grant(b.Self(), root)

	cctx, cancel := context.WithCancel(ctx)
	cut := &counting{Host: b, n: total / 2, cancel: cancel}
	if err := dst.Fetch(cctx, cut, []string{a.Self()}, root, data.FetchOptions{}); err == nil {
		t.Fatal("a cancelled fetch succeeded")
	}
	held := count(t, dst)
	if held == 0 || held >= total {
		t.Fatalf("the cut fetch kept %d blocks of %d", held, total)
	}
	// Counted as the fetcher receives them: the holder may still be
	// answering the cut fetch's requests, which are not the second's.
	rest := &counting{Host: b}
	if err := dst.Fetch(ctx, rest, []string{a.Self()}, root, data.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d blocks, %d held after the cut, %d fetched after", total, held, rest.got.Load())
	if got := rest.got.Load(); got != total-held {
		t.Fatalf("the second fetch received %d blocks, want %d of %d", got, total-held, total)
	}
	if n := count(t, dst); n != total {
		t.Fatalf("%d blocks held, want %d", n, total)
	}
	var back bytes.Buffer
	if err := dst.ExportCAR(ctx, root, &back); err != nil {
		t.Fatalf("the DAG is not whole: %v", err)
	}
	check := openStore(t)
	if _, err := check.ImportCAR(ctx, &back, 1<<30); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := check.Get(ctx, root, out); err != nil {
		t.Fatal(err)
	}
	if got, err := readFile(out); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("%d bytes back (%v), want %d", len(got), err, len(payload))
	}
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
