package protocol_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// FuzzReplayCache drives a replay cache with nonces and expiries as peers
// send them (SPEC 3.4), and a clock that moves on, against a reference that
// applies the six steps of SPEC 3.4 to a plain map. Each input is a script
// of 3-byte steps: which nonce (the top bits pick a length other than 16 or
// a reload with Add), its expiry relative to now, and how far now moves.
func FuzzReplayCache(f *testing.F) {
	f.Add([]byte{0, 10, 0, 0, 10, 0, 1, 10, 0})                         // accept, replay, another
	f.Add([]byte{0, 1, 2, 0, 1, 0})                                     // expired, then reused
	f.Add([]byte{0, 9, 0, 1, 9, 0, 2, 9, 0, 3, 9, 0, 4, 9, 0, 5, 9, 0}) // fills up
	f.Add([]byte{0x40, 5, 0, 0, 5, 0})                                  // reloaded, then replayed
	f.Add([]byte{0x80, 5, 0, 0xc0, 0, 1})                               // malformed sizes
	f.Add([]byte{0, 9, 0, 1, 9, 0, 2, 9, 0, 3, 9, 1, 4, 9, 0})          // full, all expire at the new now
	const max = 4
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, script []byte) {
		defer fuzzguard.Start()()
		c := protocol.NewReplayCache(max)
		ref := map[string]uint64{}
		now := base
		for i := 0; i+3 <= len(script) && i < 3*256; i += 3 {
			sel, rel, step := script[i], script[i+1], script[i+2]
			nonce := bytes.Repeat([]byte{sel & 0x3f}, protocol.NonceSize)
			switch sel >> 6 {
			case 2:
				nonce = nonce[:sel&0x0f]
			case 3:
				nonce = append(nonce, sel)
			}
			nowMs := protocol.UnixMs(now)
			exp := nowMs + uint64(rel) - 8 // some already expired
			if sel>>6 == 1 {
				c.Add(nonce, exp)
				if _, ok := ref[string(nonce)]; !ok {
					ref[string(nonce)] = exp
				}
			} else {
				got := protocol.CodeOf(c.Check(nonce, exp, now))
				want := pb.Code_CODE_UNSPECIFIED
				switch {
				case len(nonce) != protocol.NonceSize:
					want = protocol.CodeMalformed
				case exp <= nowMs:
					want = protocol.CodeExpired
				default:
					for n, e := range ref {
						if e <= nowMs {
							delete(ref, n)
						}
					}
					if _, ok := ref[string(nonce)]; ok {
						want = protocol.CodeReplayed
					} else if len(ref) >= max {
						want = pb.Code_CODE_RATE_LIMITED
					} else {
						ref[string(nonce)] = exp
					}
				}
				if got != want {
					t.Fatalf("step %d: nonce %x expiring at +%d ms: %v, the reference says %v", i/3, nonce, int64(exp-nowMs), got, want)
				}
			}
			now = now.Add(time.Duration(step) * time.Millisecond)
		}
	})
}
