package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// streamTimeout bounds one request-response exchange.
const streamTimeout = 10 * time.Second

// closeWait bounds how long a provider waits, after its last message, for
// the asker to close its side of the stream.
const closeWait = 5 * time.Second

// ServiceName is the resource-manager service of cuivre's streams.
const ServiceName = "cuivre"

// cuivreProtocols are the protocols of SPEC 6 a host answers.
var cuivreProtocols = []p2pproto.ID{protocol.OfferID, protocol.LeaseID, protocol.WatchID, protocol.ModuleID, protocol.ReceiptID, protocol.BlocksID}

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

// Serve makes h answer the cuivre protocols (SPEC 6); nil stops answering.
// A RequesterOnly host answers only the module and block requests of the
// providers that run its jobs, and registers no other protocol.
func (h *Host) Serve(hd transport.Handler) {
	if hd == nil {
		h.handler.Store(nil)
		for _, id := range cuivreProtocols {
			h.host.RemoveStreamHandler(id)
		}
		return
	}
	h.handler.Store(&hd)
	h.serveBuyer()
	if h.opts.RequesterOnly {
		return
	}
	h.serve(protocol.OfferID, func(ctx context.Context, e *exchange, from string, hd transport.Handler) error {
		var req pb.OfferRequest
		if err := e.r.ReadMsg(&req); err != nil {
			return h.malformed(e, from, hd, fmt.Errorf("offer request: %w", err))
		}
		return e.w.WriteMsg(hd.Offer(ctx, from, &req))
	})
	h.serve(protocol.LeaseID, func(ctx context.Context, e *exchange, from string, hd transport.Handler) error {
		var req pb.LeaseRequest
		if err := e.r.ReadMsg(&req); err != nil {
			return h.malformed(e, from, hd, err)
		}
		ans, then := hd.Lease(ctx, from, &req)
		err := e.w.WriteMsg(ans)
		if then != nil {
			then() // the lease is committed: its run starts whatever became of the answer
		}
		return err
	})
	h.serve(protocol.WatchID, func(ctx context.Context, e *exchange, from string, hd transport.Handler) error {
		var req pb.WatchRequest
		if err := e.r.ReadMsg(&req); err != nil {
			return h.malformed(e, from, hd, err)
		}
		e.s.SetDeadline(time.Time{}) // a watch lasts as long as the run
		defer h.protect(from)()
		return hd.Watch(ctx, from, &req, func(ev *pb.WatchEvent) error { return e.w.WriteMsg(ev) })
	})
	h.serve(protocol.ReceiptID, func(ctx context.Context, e *exchange, from string, hd transport.Handler) error {
		var sub pb.ReceiptSubmit
		if err := e.r.ReadMsg(&sub); err != nil {
			return h.malformed(e, from, hd, err)
		}
		return e.w.WriteMsg(hd.Receipt(ctx, from, &sub))
	})
}

// serveBuyer registers what every node answers, one that sells nothing too:
// the modules and the blocks of its jobs, which their providers fetch from
// it (SPEC 6.5, 6.6).
func (h *Host) serveBuyer() {
	h.serve(protocol.ModuleID, func(ctx context.Context, e *exchange, from string, hd transport.Handler) error {
		var req pb.ModuleRequest
		if err := e.r.ReadMsg(&req); err != nil {
			return h.malformed(e, from, hd, err)
		}
		return hd.Module(ctx, from, &req, func(ch *pb.ModuleChunk) error { return e.w.WriteMsg(ch) })
	})
	h.serve(protocol.BlocksID, func(ctx context.Context, e *exchange, from string, hd transport.Handler) error {
		var req pb.BlockRequest
		if err := e.r.ReadMsg(&req); err != nil {
			return h.malformed(e, from, hd, err)
		}
		return hd.Blocks(ctx, from, &req, func(r *pb.BlockResponse) error { return e.w.WriteMsg(r) })
	})
}

// LeaseTag is the connection manager's protection of a peer with which a
// watch is open, that is with which a lease runs: its connections are never
// trimmed.
const LeaseTag = "cuivre-lease"

// protect protects peer p under LeaseTag while a watch with it is open; it
// returns the undoing. Watches are counted, so that the tag stays while
// one is open.
func (h *Host) protect(p string) func() {
	id := peer.ID(p)
	h.watchMu.Lock()
	if h.watches == nil {
		h.watches = map[peer.ID]int{}
	}
	if h.watches[id]++; h.watches[id] == 1 {
		h.host.ConnManager().Protect(id, LeaseTag)
	}
	h.watchMu.Unlock()
	return func() {
		h.watchMu.Lock()
		defer h.watchMu.Unlock()
		if h.watches[id]--; h.watches[id] == 0 {
			delete(h.watches, id)
			h.host.ConnManager().Unprotect(id, LeaseTag)
		}
	}
}

// malformed answers a request that could not be read with its protocol's
// typed error, and tells the handler.
func (h *Host) malformed(e *exchange, from string, hd transport.Handler, err error) error {
	id := string(e.s.Protocol())
	hd.Malformed(id, from, err)
	return e.w.WriteMsg(conv.ErrorAnswer(id, err))
}

// serve registers a protocol's stream handler; errors reset the stream and
// are logged once.
func (h *Host) serve(id p2pproto.ID, fn func(ctx context.Context, e *exchange, from string, hd transport.Handler) error) {
	h.host.SetStreamHandler(id, func(s network.Stream) {
		hd := h.handler.Load()
		h.mu.Lock()
		if hd == nil || h.closing {
			h.mu.Unlock()
			s.Reset()
			return
		}
		h.wg.Add(1) // under mu: counted before Close can wait
		h.mu.Unlock()
		defer h.wg.Done()
		s.SetDeadline(time.Now().Add(streamTimeout))
		from := s.Conn().RemotePeer()
		conn := "direct"
		if s.Conn().Stat().Limited {
			conn = "relayed"
		}
		h.reach.served.WithLabelValues(string(id), conn).Inc()
		e, err := newExchange(s)
		if err != nil {
			h.streamErr.WithLabelValues(string(id)).Inc()
			h.log.Warn("stream refused", "protocol", id, "from", from, "err", err)
			s.Reset()
			return
		}
		defer e.close()
		if ok, wait := h.rates.allow(h.opts.Now(), string(from), string(id)); !ok {
			h.limited.WithLabelValues(string(id)).Inc()
			refusal := protocol.Errorf(pb.Code_CODE_RATE_LIMITED, "more than %g requests a second on %s", h.opts.Limits.rateOf(string(id)), id)
			refusal.RetryAfter = max(wait, time.Millisecond)
			err = e.w.WriteMsg(conv.ErrorAnswer(string(id), refusal))
		} else {
			err = fn(transport.WithOrigin(h.ctx, h.opts.Limits.origin(s.Conn().RemoteMultiaddr())), e, string(from), *hd)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			h.streamErr.WithLabelValues(string(id)).Inc()
			h.log.Info("stream failed", "protocol", id, "from", from, "err", err)
			s.Reset()
			return
		}
		// The answer is written, not yet received: wait, briefly, until the
		// asker has read it and closed its side, so that a host closing
		// right after (a drain's end) does not drop the last message.
		s.CloseWrite()
		s.SetReadDeadline(time.Now().Add(closeWait))
		io.Copy(io.Discard, io.LimitReader(s, 1<<10))
	})
}

// overRelay are the protocols whose streams may go through a circuit relay
// when hole punching failed: placement's small messages, within a relay's
// limits (SPEC 4.4). Modules and blocks wait for a direct connection.
var overRelay = map[p2pproto.ID]bool{protocol.OfferID: true, protocol.LeaseID: true, protocol.WatchID: true, protocol.ReceiptID: true}

// defaultPunchWait is Options.PunchWait's default.
const defaultPunchWait = 5 * time.Second

// ErrRelayOnly is why a module or blocks are not fetched from a peer
// reachable only through a relay.
var ErrRelayOnly = errors.New("only a relayed connection (hole punching failed): modules and data are not sent through a relay")

// open starts an exchange with a peer.
func (h *Host) open(ctx context.Context, to string, id p2pproto.ID) (*exchange, error) {
	p := peer.ID(to)
	s, err := h.newStream(ctx, p, id)
	if err != nil {
		return nil, fmt.Errorf("%s to %s: %w", id, protocol.ShortPeerID(string(p)), err)
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

// newStream opens a stream on a direct connection to p, dialling it if
// need be, through a relay if that is the only way and hole punching to it
// then. A placement stream goes through the relay where no direct
// connection came within Options.PunchWait (or half the time ctx leaves); any other is refused with ErrRelayOnly.
func (h *Host) newStream(ctx context.Context, p peer.ID, id p2pproto.ID) (network.Stream, error) {
	if h.host.Network().Connectedness(p) != network.Connected {
		// Any connection first: a relayed one when that is all there is.
		if err := h.host.Connect(network.WithAllowLimitedConn(ctx, "cuivre"), peer.AddrInfo{ID: p}); err != nil {
			return nil, err
		}
	}
	if !h.relayOnly(p) {
		return h.host.NewStream(ctx, p, id)
	}
	if overRelay[id] && (!h.opts.NAT.HolePunching || h.punchFailed(p)) {
		// No hole punching here, or it failed a moment ago: a relayed
		// connection stays one, and a lease must not wait out its offer.
		return h.relayedStream(ctx, p, id)
	}
	// Wait for hole punching, but leave half the exchange's time to the
	// relay: an offer request has a second or two.
	wait := h.opts.PunchWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	s, err := h.host.NewStream(network.WithDialPeerTimeout(ctx, wait), p, id)
	if err == nil || ctx.Err() != nil || !h.relayOnly(p) {
		return s, err
	}
	h.punches.Store(p, h.opts.Now())
	if !overRelay[id] {
		return nil, ErrRelayOnly
	}
	return h.relayedStream(ctx, p, id)
}

// punchRetry is how long after a wait for hole punching to a peer failed
// placement streams to it go through the relay without waiting again.
const punchRetry = time.Minute

// punchFailed says whether a wait for a direct connection to p failed
// within punchRetry.
func (h *Host) punchFailed(p peer.ID) bool {
	t, ok := h.punches.Load(p)
	if !ok {
		return false
	}
	if h.opts.Now().Sub(t.(time.Time)) > punchRetry {
		h.punches.Delete(p)
		return false
	}
	return true
}

func (h *Host) relayedStream(ctx context.Context, p peer.ID, id p2pproto.ID) (network.Stream, error) {
	s, err := h.host.NewStream(network.WithAllowLimitedConn(ctx, "cuivre placement"), p, id)
	if err == nil && s.Conn().Stat().Limited {
		h.reach.relayed.WithLabelValues(string(id)).Inc()
	}
	return s, err
}

// relayOnly says whether every connection to p goes through a relay.
func (h *Host) relayOnly(p peer.ID) bool {
	cs := h.host.Network().ConnsToPeer(p)
	for _, c := range cs {
		if !c.Stat().Limited {
			return false
		}
	}
	return len(cs) > 0
}

// roundTrip sends one request and reads one answer.
func (h *Host) roundTrip(ctx context.Context, to string, id p2pproto.ID, req, ans proto.Message) error {
	e, err := h.open(ctx, to, id)
	if err != nil {
		return err
	}
	defer e.close()
	// The stream's deadline is ctx's; a cancel ends the exchange too, at
	// once, rather than at the deadline (a dead peer never answers).
	stop := context.AfterFunc(ctx, func() { e.s.Reset() })
	defer stop()
	if err := e.w.WriteMsg(req); err != nil {
		return err
	}
	if err := e.r.ReadMsg(ans); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("%s answer from %s: %w", id, protocol.ShortPeerID(to), err)
	}
	return nil
}

// Offer asks to for an offer (SPEC 6.1).
func (h *Host) Offer(ctx context.Context, to string, req *pb.OfferRequest) (*pb.OfferResponse, error) {
	var resp pb.OfferResponse
	return &resp, h.roundTrip(ctx, to, protocol.OfferID, req, &resp)
}

// Lease sends a lease, a decline or a cancel (SPEC 6.2).
func (h *Host) Lease(ctx context.Context, to string, req *pb.LeaseRequest) (*pb.LeaseAnswer, error) {
	var a pb.LeaseAnswer
	return &a, h.roundTrip(ctx, to, protocol.LeaseID, req, &a)
}

// Receipt hands a countersigned receipt back (SPEC 6.4).
func (h *Host) Receipt(ctx context.Context, to string, sub *pb.ReceiptSubmit) (*pb.ReceiptAck, error) {
	var a pb.ReceiptAck
	return &a, h.roundTrip(ctx, to, protocol.ReceiptID, sub, &a)
}

// Watch follows a lease epoch (SPEC 6.3). The stream has no deadline but
// ctx's.
func (h *Host) Watch(ctx context.Context, to string, req *pb.WatchRequest, fn func(*pb.WatchEvent) bool) error {
	defer h.protect(to)()
	return follow(h, ctx, to, protocol.WatchID, true, req, fn)
}

// Blocks asks for blocks of a DAG (SPEC 6.6).
func (h *Host) Blocks(ctx context.Context, to string, req *pb.BlockRequest, fn func(*pb.BlockResponse) bool) error {
	return follow(h, ctx, to, protocol.BlocksID, false, req, fn)
}

// Module fetches a module in chunks (SPEC 6.5).
func (h *Host) Module(ctx context.Context, to string, req *pb.ModuleRequest, fn func(*pb.ModuleChunk) bool) error {
	return follow(h, ctx, to, protocol.ModuleID, false, req, fn)
}

// follow sends one request and hands each answer to fn until fn returns
// false or the stream ends. The stream's deadline is ctx's, or streamTimeout;
// a lasting one (a watch, as long as its run) has none but ctx's.
func follow[M any, PM interface {
	*M
	proto.Message
}](h *Host, ctx context.Context, to string, id p2pproto.ID, lasting bool, req proto.Message, fn func(PM) bool) error {
	e, err := h.open(ctx, to, id)
	if err != nil {
		return err
	}
	defer e.close()
	if _, ok := ctx.Deadline(); !ok && lasting {
		e.s.SetDeadline(time.Time{})
	}
	// A cancelled asker stops reading at once, and the other side sending.
	stop := context.AfterFunc(ctx, func() { e.s.Reset() })
	defer stop()
	if err := e.w.WriteMsg(req); err != nil {
		return err
	}
	for {
		m := PM(new(M))
		if err := e.r.ReadMsg(m); err != nil {
			return err
		}
		if !fn(m) {
			return nil
		}
	}
}
