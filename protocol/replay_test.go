package protocol

import (
	"errors"
	"testing"
	"time"

	"github.com/cuivre/cuivre/protocol/pb"
)

func TestReplayCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewReplayCache(2)
	n1, n2, n3 := fill(1, NonceSize), fill(2, NonceSize), fill(3, NonceSize)
	exp := UnixMs(now.Add(time.Minute))
	if err := c.Check(n1, exp, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(n1, exp, now); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second use: got %v, want replayed", err)
	}
	if err := c.Check(n2, UnixMs(now), now); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired nonce: got %v, want expired", err)
	}
	if err := c.Check(n2, exp+1, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(n3, exp, now); CodeOf(err) != pb.Code_CODE_RATE_LIMITED {
		t.Fatalf("full cache: got %v, want rate limited", err)
	}
	if err := c.Check([]byte{1}, exp, now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short nonce: got %v, want malformed", err)
	}
	// Once n1 expires it is forgotten, which frees room, and replaying it is
	// refused as expired rather than accepted.
	later := FromUnixMs(exp)
	if err := c.Check(n1, exp, later); !errors.Is(err, ErrExpired) {
		t.Fatalf("replay after expiry: got %v, want expired", err)
	}
	if err := c.Check(n3, exp+60_000, later); err != nil {
		t.Fatalf("after pruning: %v", err)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
}
