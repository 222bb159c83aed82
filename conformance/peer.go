package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// exchangeTimeout bounds one request and its answer. A watch has none but
// its context's.
const exchangeTimeout = 15 * time.Second

// newHost starts the kit's libp2p host: QUIC and TCP, on loopback only if
// loopback (so that a test never leaves it), else on every interface.
func newHost(key crypto.PrivKey, loopback bool) (host.Host, error) {
	ip := "0.0.0.0"
	if loopback {
		ip = "127.0.0.1"
	}
	return libp2p.New(libp2p.Identity(key),
		libp2p.ListenAddrStrings("/ip4/"+ip+"/udp/0/quic-v1", "/ip4/"+ip+"/tcp/0"))
}

// onLoopback reports whether any of addrs is a loopback address.
func onLoopback(addrs []ma.Multiaddr) bool {
	return slices.ContainsFunc(addrs, manet.IsIPLoopback)
}

// conn is the kit's side of one peer: its host and the peer's ID.
type conn struct {
	h  host.Host
	to peer.ID
}

// stream opens a stream on protocol id, with its framing.
func (c *conn) stream(ctx context.Context, id p2pproto.ID) (network.Stream, *wire.Reader, *wire.Writer, error) {
	s, err := c.h.NewStream(ctx, c.to, id)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open %s: %w", id, err)
	}
	max := protocol.MaxMsgSize(id)
	return s, wire.NewReader(s, max), wire.NewWriter(s, max), nil
}

// roundTrip writes one request, closes its write side and reads one answer.
func (c *conn) roundTrip(ctx context.Context, id p2pproto.ID, req, ans proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	s, r, w, err := c.stream(ctx, id)
	if err != nil {
		return err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := w.WriteMsg(req); err != nil {
		// A peer may answer before it has read the request (a
		// RATE_LIMITED refusal, SPEC 7) and close: its answer stands.
		if rerr := r.ReadMsg(ans); rerr == nil {
			return nil
		}
		return fmt.Errorf("%s: write: %w", id, err)
	}
	s.CloseWrite()
	if err := r.ReadMsg(ans); err != nil {
		return fmt.Errorf("%s: read the answer: %w", id, err)
	}
	return nil
}

// raw writes bytes as they are on a new stream (a frame the kit builds by
// hand), closes its write side and reads one answer.
func (c *conn) raw(ctx context.Context, id p2pproto.ID, b []byte, ans proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	s, r, _, err := c.stream(ctx, id)
	if err != nil {
		return err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if _, err := s.Write(b); err != nil {
		return fmt.Errorf("%s: write: %w", id, err)
	}
	s.CloseWrite()
	if err := r.ReadMsg(ans); err != nil {
		return fmt.Errorf("%s: read the answer: %w", id, err)
	}
	return nil
}

// maxRetries bounds the retries of a request refused CODE_RATE_LIMITED.
const maxRetries = 20

// polite sends a request again, after the retry_after_ms it is told, while
// it is refused CODE_RATE_LIMITED (SPEC 7: the kit sends many requests, and
// a provider limits their rate, as it should). refusal reads the code and
// retry_after_ms of an answer.
func polite[A proto.Message](ctx context.Context, send func() (A, error), refusal func(A) *pb.Error) (A, error) {
	for range maxRetries {
		a, err := send()
		e := refusal(a)
		if err != nil || e.GetCode() != pb.Code_CODE_RATE_LIMITED {
			return a, err
		}
		select {
		case <-time.After(time.Duration(max(e.GetRetryAfterMs(), 1)) * time.Millisecond):
		case <-ctx.Done():
			return a, ctx.Err()
		}
	}
	return send()
}

func (c *conn) offer(ctx context.Context, req *pb.OfferRequest) (*pb.OfferResponse, error) {
	return polite(ctx, func() (*pb.OfferResponse, error) {
		var a pb.OfferResponse
		return &a, c.roundTrip(ctx, protocol.OfferID, req, &a)
	}, (*pb.OfferResponse).GetRefusal)
}

func (c *conn) lease(ctx context.Context, req *pb.LeaseRequest) (*pb.LeaseAnswer, error) {
	return polite(ctx, func() (*pb.LeaseAnswer, error) {
		var a pb.LeaseAnswer
		return &a, c.roundTrip(ctx, protocol.LeaseID, req, &a)
	}, (*pb.LeaseAnswer).GetError)
}

func (c *conn) receipt(ctx context.Context, sub *pb.ReceiptSubmit) (*pb.ReceiptAck, error) {
	return polite(ctx, func() (*pb.ReceiptAck, error) {
		var a pb.ReceiptAck
		return &a, c.roundTrip(ctx, protocol.ReceiptID, sub, &a)
	}, (*pb.ReceiptAck).GetError)
}

// watched is what one watch stream brought, in order.
type watched struct {
	events []*pb.WatchEvent
	closed bool  // the provider closed the stream after its last event
	err    error // why reading stopped, if not a clean close
}

// result returns the first Result watched, or nil.
func (w *watched) result() *pb.Result {
	for _, ev := range w.events {
		if r := ev.GetResult(); r != nil {
			return r
		}
	}
	return nil
}

// watch follows a lease until the provider closes the stream or ctx ends.
// stop, if not nil, is called with each event; returning true stops reading.
func (c *conn) watch(ctx context.Context, req *pb.WatchRequest, stop func(*pb.WatchEvent) bool) *watched {
	out := &watched{}
	s, r, w, err := c.stream(ctx, protocol.WatchID)
	if err != nil {
		out.err = err
		return out
	}
	defer s.Close()
	halt := context.AfterFunc(ctx, func() { s.Reset() })
	defer halt()
	if err := w.WriteMsg(req); err != nil {
		out.err = err
		return out
	}
	for range 1 << 16 { // bounded: a run of the kit's module sends far fewer
		ev := new(pb.WatchEvent)
		if err := r.ReadMsg(ev); err != nil {
			if errors.Is(err, io.EOF) {
				out.closed = true
			} else {
				out.err = err
			}
			return out
		}
		out.events = append(out.events, ev)
		if stop != nil && stop(ev) {
			return out
		}
	}
	out.err = errors.New("more than 65536 events")
	return out
}

// moduleServer answers /cuivre/module/1.0.0 (SPEC 6.5) as a requester does:
// the kit's module, and per CID what a check needs (bytes that do not hash
// to it, a hold until released).
type moduleServer struct {
	mu       sync.Mutex
	modules  map[string][]byte            // CID bytes -> what is served
	chunks   map[string][]*pb.ModuleChunk // CID bytes -> chunks sent as they are, faults and all
	holds    map[string]chan struct{}     // CID bytes -> closed when the request may be answered
	asked    map[string]chan struct{}     // CID bytes -> closed when first asked
	requests []*pb.ModuleRequest
	from     []peer.ID
}

func newModuleServer() *moduleServer {
	return &moduleServer{modules: map[string][]byte{}, chunks: map[string][]*pb.ModuleChunk{}, holds: map[string]chan struct{}{}, asked: map[string]chan struct{}{}}
}

// add serves data under cid; hold, if true, makes requests wait for release.
// It returns a channel closed when cid is first asked.
func (m *moduleServer) add(cid []byte, data []byte, hold bool) <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if data != nil {
		m.modules[string(cid)] = data
	}
	if hold {
		m.holds[string(cid)] = make(chan struct{})
	}
	ch := make(chan struct{})
	m.asked[string(cid)] = ch
	return ch
}

// serveChunks answers requests for cid with chunks, as they are.
func (m *moduleServer) serveChunks(cid []byte, chunks []*pb.ModuleChunk) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.chunks[string(cid)] = chunks
}

// release lets the held requests for cid be answered.
func (m *moduleServer) release(cid []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.holds[string(cid)]; ok {
		close(ch)
		delete(m.holds, string(cid))
	}
}

// releaseAll lets every held request be answered (at the suite's end).
func (m *moduleServer) releaseAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, ch := range m.holds {
		close(ch)
		delete(m.holds, k)
	}
}

func (m *moduleServer) handle(s network.Stream) {
	defer s.Close()
	r, w := wire.NewReader(s, protocol.MaxModuleMsg), wire.NewWriter(s, protocol.MaxModuleMsg)
	var req pb.ModuleRequest
	if err := r.ReadMsg(&req); err != nil {
		w.WriteMsg(&pb.ModuleChunk{Error: protocol.ToPB(protocol.Errorf(protocol.CodeMalformed, "module request: %v", err))})
		return
	}
	m.mu.Lock()
	m.requests = append(m.requests, &req)
	m.from = append(m.from, s.Conn().RemotePeer())
	if ch, ok := m.asked[string(req.Cid)]; ok {
		close(ch)
		delete(m.asked, string(req.Cid))
	}
	hold := m.holds[string(req.Cid)]
	data, ok := m.modules[string(req.Cid)]
	chunks := m.chunks[string(req.Cid)]
	m.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if chunks != nil {
		for _, ch := range chunks {
			if w.WriteMsg(ch) != nil {
				return
			}
		}
		return
	}
	if !ok {
		w.WriteMsg(&pb.ModuleChunk{Error: protocol.ToPB(protocol.Errorf(pb.Code_CODE_MODULE_NOT_FOUND, "the conformance kit holds no such module"))})
		return
	}
	if req.Offset > uint64(len(data)) {
		w.WriteMsg(&pb.ModuleChunk{Error: protocol.ToPB(protocol.Errorf(protocol.CodeMalformed, "offset %d beyond the module's %d bytes", req.Offset, len(data)))})
		return
	}
	off := req.Offset
	for {
		n := min(uint64(len(data))-off, protocol.MaxModuleChunk)
		last := off+n == uint64(len(data))
		if err := w.WriteMsg(&pb.ModuleChunk{Size: uint64(len(data)), Offset: off, Data: data[off : off+n], Last: last}); err != nil || last {
			return
		}
		off += n
	}
}

// summary describes watch events in one short line: kinds, states and seqs.
func summary(evs []*pb.WatchEvent) string {
	var b []byte
	for i, ev := range evs {
		if i == 12 {
			b = fmt.Appendf(b, "... (%d events)", len(evs))
			break
		}
		switch e := ev.Event.(type) {
		case *pb.WatchEvent_Status:
			b = fmt.Appendf(b, "Status(%s seq %d) ", e.Status.State, e.Status.Seq)
		case *pb.WatchEvent_Log:
			b = fmt.Appendf(b, "Log(%s %d bytes) ", e.Log.Stream, len(e.Log.Data))
		case *pb.WatchEvent_Result:
			b = fmt.Appendf(b, "Result(%s %v) ", e.Result.State, e.Result.GetError().GetCode())
		case *pb.WatchEvent_Error:
			b = fmt.Appendf(b, "Error(%s) ", e.Error.Code)
		}
	}
	return string(b)
}

// resultSummary describes a Result in one short line.
func resultSummary(r *pb.Result) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprintf("%s exit %d error %v %q", r.State, r.ExitCode, r.GetError().GetCode(), r.GetError().GetMessage())
}
