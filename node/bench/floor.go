package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/protocol/wire"
)

// echoID is the bench's own protocol, registered on two providers for the
// time of the floor measures: it echoes 8-byte messages until EOF.
const echoID protocol.ID = "/cuivre/bench/echo/1.0.0"

func echo(s network.Stream) {
	defer s.Close()
	buf := make([]byte, 8)
	for {
		if _, err := io.ReadFull(s, buf); err != nil {
			return
		}
		if _, err := s.Write(buf); err != nil {
			return
		}
	}
}

// floors measures what placement stands on: a round trip on an open stream
// and on a new one between providers 0 and 1, and a raw DHT lookup.
func (b *bench) floors(ctx context.Context, d *devnet.Devnet) error {
	if len(d.Providers) < 2 {
		return fmt.Errorf("the stream floor needs 2 providers, the devnet has %d", len(d.Providers))
	}
	a, z := d.Providers[0].Host(), d.Providers[1].Host()
	a.SetStreamHandler(echoID, echo)
	z.SetStreamHandler(echoID, echo)
	defer a.RemoveStreamHandler(echoID)
	defer z.RemoveStreamHandler(echoID)
	if err := a.Connect(ctx, d.Providers[1].AddrInfo()); err != nil {
		return fmt.Errorf("connect provider 1 to 2: %w", err)
	}
	rtt, err := roundTrips(ctx, a.NewStream, z.ID(), 500, true)
	if err != nil {
		return fmt.Errorf("stream round trip: %w", err)
	}
	b.add("stream_rtt_ms", rtt)
	fresh, err := roundTrips(ctx, a.NewStream, z.ID(), 200, false)
	if err != nil {
		return fmt.Errorf("new stream round trip: %w", err)
	}
	b.add("new_stream_rtt_ms", fresh)

	var finds []float64
	for range 20 {
		p := d.Providers[mrand.IntN(len(d.Providers))]
		c := wire.SumCID([]byte(rand.Text()))
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.Provide(pctx, c)
		cancel()
		if err != nil {
			return fmt.Errorf("provide: %w", err)
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t0 := time.Now()
		found := d.Requester.FindCID(fctx, c, 1)
		took := time.Since(t0)
		cancel()
		if len(found) == 0 || found[0] != p.ID() {
			return fmt.Errorf("the requester did not find the provider of %s", c)
		}
		finds = append(finds, ms(took))
	}
	b.add("dht_find_providers_ms", percentile(finds, 50))
	b.logf("floors: stream %.3f ms, new stream %.3f ms, DHT find %.2f ms (p50)", rtt, fresh, percentile(finds, 50))
	return nil
}

// roundTrips measures n round trips of 8 bytes to peer p under echoID and
// returns their p50 in milliseconds: on one stream kept open, or each on a
// new stream, opened and closed.
func roundTrips(ctx context.Context, open func(context.Context, peer.ID, ...protocol.ID) (network.Stream, error), p peer.ID, n int, keep bool) (float64, error) {
	msg, buf := []byte("cuivre!\n"), make([]byte, 8)
	lat := make([]float64, 0, n)
	var s network.Stream
	for range n {
		t0 := time.Now()
		if s == nil {
			var err error
			if s, err = open(ctx, p, echoID); err != nil {
				return 0, err
			}
		}
		if _, err := s.Write(msg); err != nil {
			s.Reset()
			return 0, err
		}
		if _, err := io.ReadFull(s, buf); err != nil {
			s.Reset()
			return 0, err
		}
		if !keep {
			s.Close()
			s = nil
		}
		lat = append(lat, ms(time.Since(t0)))
	}
	if s != nil {
		s.Close()
	}
	return percentile(lat, 50), nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
