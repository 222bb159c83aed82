package p2p_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node/p2p"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol/pb"
)

// limitedHost starts a host on 127.0.0.1 with limits and a clock that
// stands still, so that no token comes back during a test.
func limitedHost(t *testing.T, l p2p.Limits) *p2p.Host {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	h, err := p2p.New(p2p.Options{Identity: k, Limits: l, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// origins answers every offer request with a refusal naming the origin the
// transport gave it, and holds watches open until released.
type origins struct {
	transport.Handler
	mu      sync.Mutex
	seen    []string
	watched chan struct{}
	release chan struct{}
}

func (o *origins) Offer(ctx context.Context, from string, req *pb.OfferRequest) *pb.OfferResponse {
	o.mu.Lock()
	o.seen = append(o.seen, transport.Origin(ctx))
	o.mu.Unlock()
	return &pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: &pb.Error{Code: pb.Code_CODE_INSUFFICIENT_CPU}}}
}

func (o *origins) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	o.watched <- struct{}{}
	<-o.release
	return send(&pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: &pb.Error{Code: pb.Code_CODE_UNKNOWN_LEASE}}})
}

func connect(t *testing.T, from, to *p2p.Host) {
	t.Helper()
	if err := from.Host().Connect(context.Background(), to.AddrInfo()); err != nil {
		t.Fatal(err)
	}
}

// TestRateLimit: a peer asking past its rate on a protocol is refused with
// CODE_RATE_LIMITED and a retry-after, before its request reaches the
// handler; another peer is not.
func TestRateLimit(t *testing.T) {
	srv := limitedHost(t, p2p.Limits{RequestsPerSecond: 5}) // bursts of 10
	h := &origins{}
	srv.Serve(h)
	ctx := context.Background()
	for _, name := range []string{"first peer", "second peer"} {
		c := newHost(t)
		connect(t, c, srv)
		refused := 0
		for i := range 15 {
			resp, err := c.Offer(ctx, srv.Self(), &pb.OfferRequest{})
			if err != nil {
				t.Fatalf("%s, request %d: %v", name, i, err)
			}
			r := resp.GetRefusal()
			switch {
			case r.GetCode() == pb.Code_CODE_RATE_LIMITED:
				refused++
				if r.RetryAfterMs == 0 {
					t.Errorf("%s, request %d: rate-limited without a retry-after", name, i)
				}
			case i >= 10:
				t.Errorf("%s, request %d: answered %v, want CODE_RATE_LIMITED past the burst of 10", name, i, r)
			}
		}
		if refused != 5 {
			t.Errorf("%s: %d of 15 requests refused, want the 5 past the burst", name, refused)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) != 20 {
		t.Errorf("the handler saw %d requests, want the 2 x 10 within the limit", len(h.seen))
	}
}

// TestOrigin: a provider's handler learns the network a request comes from,
// as an IPv4 /24; loopback is exempt unless the limits say otherwise.
func TestOrigin(t *testing.T) {
	for _, tt := range []struct {
		loopback bool
		want     string
	}{{false, ""}, {true, "127.0.0.0/24"}} {
		srv := limitedHost(t, p2p.Limits{Loopback: tt.loopback})
		h := &origins{}
		srv.Serve(h)
		c := newHost(t)
		connect(t, c, srv)
		if _, err := c.Offer(context.Background(), srv.Self(), &pb.OfferRequest{}); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		seen := h.seen[0]
		h.mu.Unlock()
		if seen != tt.want {
			t.Errorf("loopback limited %v: origin %q, want %q", tt.loopback, seen, tt.want)
		}
	}
}

// TestWatchProtects: while a watch is open (a lease runs), both ends keep
// the connection out of the connection manager's trimming.
func TestWatchProtects(t *testing.T) {
	srv, c := newHost(t), newHost(t)
	h := &origins{watched: make(chan struct{}), release: make(chan struct{})}
	srv.Serve(h)
	connect(t, c, srv)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(context.Background(), srv.Self(), &pb.WatchRequest{}, func(*pb.WatchEvent) bool { return false })
	}()
	<-h.watched
	if !srv.Host().ConnManager().IsProtected(c.ID(), p2p.LeaseTag) || !c.Host().ConnManager().IsProtected(srv.ID(), p2p.LeaseTag) {
		t.Error("a connection carrying a watch is not protected at both ends")
	}
	close(h.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Host().ConnManager().IsProtected(srv.ID(), p2p.LeaseTag) {
		t.Error("the watcher still protects the connection after the watch ended")
	}
	// The server unprotects when its handler returns, which may be just
	// after the watcher read the last event; Close waits for handlers.
	srv.Close()
	if srv.Host().ConnManager().IsProtected(c.ID(), p2p.LeaseTag) {
		t.Error("the provider still protects the connection after the watch ended")
	}
}
