package bench

import (
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/devnet"
)

// sinkID is the bench's protocol for the copy floor: it reads a stream to its
// end, then writes one byte.
const sinkID protocol.ID = "/cuivre/bench/sink/1.0.0"

func sink(s network.Stream) {
	defer s.Close()
	if _, err := io.Copy(io.Discard, s); err == nil {
		s.Write([]byte{1})
	}
}

// transfer measures moving o.TransferBytes between providers 0 and 1: the
// floor, those bytes copied raw on one libp2p stream, then a DAG of them
// (fresh each repeat, so that nothing is held already) fetched by provider 1
// from provider 0 over /cuivre/blocks, every block checked and kept.
func (b *bench) transfer(ctx context.Context, d *devnet.Devnet, repeat int) error {
	a, z := d.Providers[0], d.Providers[1]
	n := b.o.TransferBytes
	payload := &pseudo{r: mrand.New(mrand.NewPCG(uint64(repeat), 7)), left: n}

	// What the stores wrote before (the last repeat's DAGs) is on disk
	// before anything is timed, and the holder's new DAG too: the figures
	// are the transfer's, not the backlog's.
	for _, p := range []*node.Node{a, z} {
		if err := p.Data().Settle(ctx); err != nil {
			return err
		}
	}
	z.Host().SetStreamHandler(sinkID, sink)
	defer z.Host().RemoveStreamHandler(sinkID)
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: z.ID(), Addrs: z.Host().Addrs()}); err != nil {
		return fmt.Errorf("connect provider 1 to 2: %w", err)
	}
	s, err := a.Host().NewStream(network.WithAllowLimitedConn(ctx, "bench"), z.ID(), sinkID)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := io.Copy(s, io.LimitReader(&pseudo{r: mrand.New(mrand.NewPCG(uint64(repeat), 8)), left: n}, n)); err != nil {
		s.Reset()
		return fmt.Errorf("copy floor: %w", err)
	}
	s.CloseWrite()
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		s.Reset()
		return fmt.Errorf("copy floor: %w", err)
	}
	copied := time.Since(t0)
	s.Close()

	root, err := a.Data().AddReader(ctx, payload)
	if err != nil {
		return fmt.Errorf("add %d bytes: %w", n, err)
	}
	a.Blocks().Grant(string(z.ID()), root)
	if err := a.Data().Settle(ctx); err != nil {
		return err
	}
	t0 = time.Now()
	if err := z.FetchData(ctx, root, []peer.ID{a.ID()}); err != nil {
		return fmt.Errorf("fetch %s: %w", root, err)
	}
	fetched := time.Since(t0)

	mb := float64(n) / 1e6
	floor, got := mb/copied.Seconds(), mb/fetched.Seconds()
	b.add("transfer_copy_mb_s", floor)
	b.add("transfer_mb_s", got)
	b.add("transfer_over_copy", got/floor)
	b.logf("transfer of %.0f MB: raw stream copy %.0f MB/s, DAG fetched %.0f MB/s (%.0f%% of the floor)", mb, floor, got, 100*got/floor)
	return nil
}

// pseudo reads left bytes from a seeded source.
type pseudo struct {
	r    *mrand.Rand
	left int64
}

func (p *pseudo) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.left)]
	for i := range b {
		b[i] = byte(p.r.Uint32())
	}
	p.left -= int64(len(b))
	return len(b), nil
}
