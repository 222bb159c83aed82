package data_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// serve asks srv, as from, for cids under root, and returns the answers.
func serve(t *testing.T, srv *data.Server, from string, root cid.Cid, cids ...cid.Cid) []*pb.BlockResponse {
	t.Helper()
	req := &pb.BlockRequest{Root: root.Bytes()}
	for _, c := range cids {
		req.Cids = append(req.Cids, c.Bytes())
	}
	var out []*pb.BlockResponse
	if err := srv.Serve(context.Background(), from, req, func(r *pb.BlockResponse) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// refused checks that answers are one refusal with code.
func refused(t *testing.T, what string, answers []*pb.BlockResponse, code pb.Code) {
	t.Helper()
	if len(answers) != 1 || answers[0].Error == nil || answers[0].Error.Code != code {
		t.Fatalf("%s: %v, want one %s", what, answers, code)
	}
}

// served checks that answers are n blocks.
func served(t *testing.T, what string, answers []*pb.BlockResponse, n int) {
	t.Helper()
	if len(answers) != n {
		t.Fatalf("%s: %d answers, want %d", what, len(answers), n)
	}
	for _, a := range answers {
		if a.Error != nil || a.Missing {
			t.Fatalf("%s: %v", what, a)
		}
	}
}

// links returns the CIDs the dag-pb block c of s links to.
func links(t *testing.T, s *data.Store, c cid.Cid) []cid.Cid {
	t.Helper()
	blk, err := s.Blockstore().Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := merkledag.DecodeProtobufBlock(blk)
	if err != nil {
		t.Fatal(err)
	}
	var out []cid.Cid
	for _, l := range nd.Links() {
		out = append(out, l.Cid)
	}
	return out
}

// TestServerAuthorizes: a root neither granted nor shared is refused, to
// every peer but the one granted; under a granted root, a CID is served
// only once its parent was, so that a CID of the store outside the DAG, or
// deeper than the peer went, is refused; a Revoke refuses the root again
// and forgets how far the peer went.
func TestServerAuthorizes(t *testing.T) {
	s := open(t)
	root, _ := dag(t, s)
	other, err := s.AddReader(context.Background(), strings.NewReader("another DAG of the same store"))
	if err != nil {
		t.Fatal(err)
	}
	var metered uint64
	srv := data.NewServer(s, data.ServerLimits{OnServe: func(peer string, r cid.Cid, n int) {
		if peer == "p" && r == root {
			metered += uint64(n)
		}
	}})
	refused(t, "a root not granted", serve(t, srv, "p", root, root), protocol.CodeUnauthorized)

	srv.Grant("p", root)
	refused(t, "a root granted to another peer", serve(t, srv, "q", root, root), protocol.CodeUnauthorized)
	refused(t, "a CID of the store outside the DAG", serve(t, srv, "p", root, other), protocol.CodeUnauthorized)
	refused(t, "another root of the store, not granted", serve(t, srv, "p", other, other), protocol.CodeUnauthorized)
	kids := links(t, s, root) // big.bin, d, small.txt
	leaves := links(t, s, kids[0])
	refused(t, "a leaf before its parent was served", serve(t, srv, "p", root, leaves[0]), protocol.CodeUnauthorized)
	served(t, "the granted root", serve(t, srv, "p", root, root), 1)
	refused(t, "a leaf before its parent was served", serve(t, srv, "p", root, leaves[0]), protocol.CodeUnauthorized)
	served(t, "the root's links", serve(t, srv, "p", root, kids...), len(kids))
	served(t, "big.bin's leaves, once big.bin was served", serve(t, srv, "p", root, leaves...), len(leaves))
	if got := srv.Served("p", root); got < uint64(len(leaves)-1)*data.ChunkSize || got != metered || srv.Served("q", root) != 0 {
		t.Errorf("served %d bytes to p (metered %d), %d to q", got, metered, srv.Served("q", root))
	}
	refused(t, "65 CIDs", serve(t, srv, "p", root, make([]cid.Cid, protocol.MaxBlocksAsked+1)...), protocol.CodeMalformed)

	srv.Revoke("p", root)
	refused(t, "a revoked root", serve(t, srv, "p", root, root), protocol.CodeUnauthorized)
	srv.Grant("p", root)
	refused(t, "a leaf after a revoke and a new grant", serve(t, srv, "p", root, leaves[0]), protocol.CodeUnauthorized)
	served(t, "the root granted again", serve(t, srv, "p", root, root), 1)

	// Grants are counted: two leases grant, one revokes, the other's holds.
	srv.Grant("p", root)
	srv.Revoke("p", root)
	served(t, "a root granted twice and revoked once", serve(t, srv, "p", root, root), 1)
	srv.Revoke("p", root)
	refused(t, "a root granted twice and revoked twice", serve(t, srv, "p", root, root), protocol.CodeUnauthorized)
}

// TestServerShares: a shared root is served to any peer, whom a Fetch
// names in its refusal before; Unshare refuses it again.
func TestServerShares(t *testing.T) {
	ctx := context.Background()
	a := newHolder(t)
	root, files := dag(t, a.s)
	_, p, ids := net(t, a)
	s := open(t)
	err := s.Fetch(ctx, p, ids, root, data.FetchOptions{})
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeUnauthorized}) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("a root not shared: %v, want unauthorized, naming the holder", err)
	}
	a.srv.Share(root)
	if err := s.Fetch(ctx, p, ids, root, data.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	check(t, s, root, files)
	served(t, "a shared root, to anyone", serve(t, a.srv, "anyone", root, root), 1)
	a.srv.Unshare(root)
	refused(t, "an unshared root", serve(t, a.srv, "anyone", root, root), protocol.CodeUnauthorized)
}

// TestServerTransferCap: past MaxTransferBytes under one root, a peer is
// refused with CODE_TOO_LARGE, and a Fetch stops there.
func TestServerTransferCap(t *testing.T) {
	ctx := context.Background()
	a := newHolder(t)
	const limit = 3 * data.ChunkSize
	a.srv = data.NewServer(a.s, data.ServerLimits{MaxTransferBytes: limit})
	root, _ := dag(t, a.s)
	a.srv.Grant("fetcher", root)
	_, p, ids := net(t, a)
	err := open(t).Fetch(ctx, p, ids, root, data.FetchOptions{})
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeTooLarge}) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("a DAG past the cap: %v, want too large, naming the holder", err)
	}
	if got := a.srv.Served("fetcher", root); got > limit || got == 0 {
		t.Fatalf("served %d bytes, cap %d", got, limit)
	}
}

// TestServerRateLimit: one peer's requests past MaxInFlight are refused
// with CODE_RATE_LIMITED, another peer's are not; a Fetch refused so waits
// on its clock and asks again.
func TestServerRateLimit(t *testing.T) {
	ctx := context.Background()
	a := newHolder(t)
	a.srv = data.NewServer(a.s, data.ServerLimits{MaxInFlight: 1})
	root, files := dag(t, a.s)
	a.srv.Share(root)

	// A request of the fetcher's held in flight: its answer is not read.
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sending := make(chan struct{})
	go func() {
		defer wg.Done()
		req := &pb.BlockRequest{Root: root.Bytes(), Cids: [][]byte{root.Bytes()}}
		a.srv.Serve(ctx, "fetcher", req, func(*pb.BlockResponse) error {
			close(sending)
			<-release
			return nil
		})
	}()
	<-sending
	refused(t, "a second request in flight", serve(t, a.srv, "fetcher", root, root), pb.Code_CODE_RATE_LIMITED)
	served(t, "another peer's", serve(t, a.srv, "other", root, root), 1)

	_, p, ids := net(t, a)
	s := open(t)
	c := clock.NewFake(time.Unix(0, 0))
	done := make(chan error, 1)
	// Its own requests in parallel are refused too, but for one: it asks
	// again as long as it takes.
	go func() { done <- s.Fetch(ctx, p, ids, root, data.FetchOptions{Clock: c, Retries: 1000}) }()
	waitPending(t, c, done) // the fetch was refused and waits to ask again
	close(release)
	wg.Wait()
	if err := advanceUntil(c, done); err != nil {
		t.Fatal(err)
	}
	check(t, s, root, files)

	// Refused every time, it gives up naming the holder and the code.
	release = make(chan struct{})
	sending = make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		req := &pb.BlockRequest{Root: root.Bytes(), Cids: [][]byte{root.Bytes()}}
		a.srv.Serve(ctx, "fetcher", req, func(*pb.BlockResponse) error {
			close(sending)
			<-release
			return nil
		})
	}()
	<-sending
	s2 := open(t)
	go func() { done <- s2.Fetch(ctx, p, ids, root, data.FetchOptions{Clock: c, Retries: 2}) }()
	// Every refused request waits on c: pass each wait until the fetch
	// gives up, however many of its requests were in flight.
	err := advanceUntil(c, done)
	close(release)
	wg.Wait()
	if !errors.Is(err, &protocol.Error{Code: pb.Code_CODE_RATE_LIMITED}) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("refused every time: %v, want rate limited, naming the holder", err)
	}
}

// waitPending returns once something waits on c; a fetch that ends first
// fails the test.
func waitPending(t *testing.T, c *clock.Fake, done chan error) {
	t.Helper()
	for c.Pending() == 0 {
		select {
		case err := <-done:
			t.Fatalf("the fetch ended before it waited: %v", err)
		default:
			runtime.Gosched()
		}
	}
}

// advanceUntil passes every wait on c until done yields, and returns what
// it yields.
func advanceUntil(c *clock.Fake, done chan error) error {
	for {
		select {
		case err := <-done:
			return err
		default:
			if c.Pending() > 0 {
				c.Advance(time.Second)
			}
			runtime.Gosched()
		}
	}
}
