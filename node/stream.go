package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/wire"
)

// streamTimeout bounds one request-response exchange.
const streamTimeout = 10 * time.Second

// ServiceName is the resource-manager service of cuivre's streams.
const ServiceName = "cuivre"

// exchange is one stream with its framing, as both sides see it.
type exchange struct {
	s network.Stream
	r *wire.Reader
	w *wire.Writer
}

func newExchange(s network.Stream) (*exchange, error) {
	id := s.Protocol()
	max := protocol.MaxMsgSize(id)
	if max == 0 {
		return nil, fmt.Errorf("no frame limit for %s", id)
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		return nil, fmt.Errorf("%s: resource scope: %w", id, err)
	}
	// A reader buffers at most one frame: reserve it, or refuse the stream.
	if err := s.Scope().ReserveMemory(max, network.ReservationPriorityAlways); err != nil {
		return nil, fmt.Errorf("%s: reserve %d bytes: %w", id, max, err)
	}
	return &exchange{s: s, r: wire.NewReader(s, max), w: wire.NewWriter(s, max)}, nil
}

func (e *exchange) close() {
	e.s.Scope().ReleaseMemory(protocol.MaxMsgSize(e.s.Protocol()))
	e.s.Close()
}

// serve registers a handler; errors reset the stream and are logged once.
func (n *Node) serve(id p2pproto.ID, fn func(ctx context.Context, e *exchange) error) {
	n.host.SetStreamHandler(id, func(s network.Stream) {
		n.wg.Add(1)
		defer n.wg.Done()
		s.SetDeadline(time.Now().Add(streamTimeout))
		e, err := newExchange(s)
		if err != nil {
			n.metrics.streamErr.WithLabelValues(string(id)).Inc()
			n.log.Warn("stream refused", "protocol", id, "from", s.Conn().RemotePeer(), "err", err)
			s.Reset()
			return
		}
		defer e.close()
		if err := fn(n.ctx, e); err != nil && !errors.Is(err, io.EOF) {
			n.metrics.streamErr.WithLabelValues(string(id)).Inc()
			n.log.Info("stream failed", "protocol", id, "from", s.Conn().RemotePeer(), "err", err)
			s.Reset()
		}
	})
}

// open starts an exchange with a peer.
func (n *Node) open(ctx context.Context, p peer.ID, id p2pproto.ID) (*exchange, error) {
	s, err := n.host.NewStream(ctx, p, id)
	if err != nil {
		return nil, fmt.Errorf("%s to %s: %w", id, p.ShortString(), err)
	}
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	} else {
		s.SetDeadline(time.Now().Add(streamTimeout))
	}
	e, err := newExchange(s)
	if err != nil {
		s.Reset()
		return nil, err
	}
	return e, nil
}
