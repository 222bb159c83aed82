package memnet_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/memnet"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol/pb"
)

// echo answers offers with a refusal naming the request's nonce, and streams
// n watch events.
type echo struct {
	transport.Handler
	n int
}

func (echo) Offer(_ context.Context, from string, req *pb.OfferRequest) *pb.OfferResponse {
	req.Nonce = nil // the request is the handler's own copy
	return &pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: &pb.Error{Message: from}}}
}

func (e echo) Watch(ctx context.Context, _ string, _ *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	for i := range e.n {
		if err := send(&pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: &pb.Status{Seq: uint64(i)}}}); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestExchange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New(clock.Real{}, 1)
		n.SetDelay(10*time.Millisecond, 0)
		a, b := n.Join("a"), n.Join("b")
		b.Serve(echo{n: 3})
		req := &pb.OfferRequest{Nonce: []byte("n")}
		start := time.Now()
		resp, err := a.Offer(context.Background(), "b", req)
		if err != nil || resp.GetRefusal().GetMessage() != "a" || string(req.Nonce) != "n" {
			t.Fatalf("offer: %v, %v; request %v", resp, err, req)
		}
		if rtt := time.Since(start); rtt != 20*time.Millisecond {
			t.Fatalf("round trip %v, want two hops of 10ms", rtt)
		}
		var seqs []uint64
		err = a.Watch(context.Background(), "b", &pb.WatchRequest{}, func(ev *pb.WatchEvent) bool {
			seqs = append(seqs, ev.GetStatus().GetSeq())
			return len(seqs) < 3
		})
		if err != nil || len(seqs) != 3 || seqs[2] != 2 {
			t.Fatalf("watch: %v, %v", seqs, err)
		}
	})
}

// TestFaults: a partitioned, lost or crashed peer is silent (the caller's
// context ends the wait); a crash breaks the streams it serves; healing and
// rejoining restore service.
func TestFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New(clock.Real{}, 1)
		a, b := n.Join("a"), n.Join("b")
		b.Serve(echo{n: 1})
		ask := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := a.Offer(ctx, "b", &pb.OfferRequest{})
			return err
		}
		n.Partition("a", "b")
		if err := ask(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("across a partition: %v", err)
		}
		n.Heal("a", "b")
		if err := ask(); err != nil {
			t.Fatalf("healed: %v", err)
		}
		n.SetLoss(1)
		if err := ask(); err == nil {
			t.Fatal("a lost message was answered")
		}
		n.SetLoss(0)

		broke := make(chan error, 1)
		go func() {
			broke <- a.Watch(context.Background(), "b", &pb.WatchRequest{}, func(*pb.WatchEvent) bool { return true })
		}()
		synctest.Wait()
		n.Crash("b")
		if err := <-broke; err == nil {
			t.Fatal("a crash did not break the stream")
		}
		if err := ask(); err == nil {
			t.Fatal("a crashed peer answered")
		}
		n.Join("b").Serve(echo{})
		if err := ask(); err != nil {
			t.Fatalf("restarted: %v", err)
		}
	})
}

// TestLossIsSeeded: the same seed loses the same messages.
func TestLossIsSeeded(t *testing.T) {
	run := func(seed uint64) (lost []int) {
		synctest.Test(t, func(t *testing.T) {
			n := memnet.New(clock.Real{}, seed)
			n.SetLoss(0.5)
			a := n.Join("a")
			n.Join("b").Serve(echo{})
			for i := range 32 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				if _, err := a.Offer(ctx, "b", &pb.OfferRequest{}); err != nil {
					lost = append(lost, i)
				}
				cancel()
			}
		})
		return lost
	}
	x, y, z := run(7), run(7), run(8)
	if len(x) == 0 || len(x) == 32 || len(x) != len(y) || (len(x) == len(z) && x[0] == z[0] && x[len(x)-1] == z[len(z)-1]) {
		t.Fatalf("seed 7 lost %v then %v; seed 8 lost %v", x, y, z)
	}
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("seed 7 lost %v then %v", x, y)
		}
	}
}
