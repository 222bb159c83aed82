// Package memnet is an in-memory transport: a Network of peers that exchange
// the wire's messages (cloned, never shared) through function calls, with a
// one-way delay and jitter, loss, partitions and crashes injected from a
// seeded random source and a clock.Clock. Tests drive the node's real
// drivers on it in fake time (a testing/synctest bubble, or a clock.Fake),
// in milliseconds, where a libp2p federation takes seconds.
//
// A request to a peer that is crashed, cut off or whose message is lost is
// never answered: the caller waits until its context ends, as it would for a
// silent peer on the internet. Provider records, as in the DHT, outlive the
// peer that announced them until they are withdrawn.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Network is a set of peers in memory. It is safe for concurrent use.
type Network struct {
	clock clock.Clock

	mu      sync.Mutex // guards everything below
	rng     *rand.Rand
	peers   map[string]*Peer
	records map[string][]string // provider records: CID key to peers, in order of announcement
	delay   time.Duration
	jitter  time.Duration
	loss    float64
	cut     map[[2]string]bool
}

// New returns an empty network on clock c, its losses and jitter drawn from
// seed.
func New(c clock.Clock, seed uint64) *Network {
	return &Network{clock: c, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), peers: map[string]*Peer{},
		records: map[string][]string{}, cut: map[[2]string]bool{}}
}

// SetDelay sets the one-way delay of every message, plus up to jitter drawn
// at random.
func (n *Network) SetDelay(delay, jitter time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delay, n.jitter = delay, jitter
}

// SetLoss sets the probability that a request or its answer is lost.
func (n *Network) SetLoss(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.loss = p
}

// Partition cuts a and b off from each other, both ways.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[pair(a, b)] = true
}

// Heal joins a and b again.
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, pair(a, b))
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Join adds a peer named id, alive, or brings a crashed one back (with no
// handler: a restarted process serves anew).
func (n *Network) Join(id string) *Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[id]
	if p == nil {
		p = &Peer{net: n, id: id}
		n.peers[id] = p
	}
	p.mu.Lock()
	if p.ctx == nil || p.ctx.Err() != nil {
		p.ctx, p.kill = context.WithCancel(context.Background())
		p.handler = nil
	}
	p.mu.Unlock()
	return p
}

// Crash stops a peer at once: it answers nothing more, and every stream it
// serves or follows breaks. Its provider records stay until withdrawn.
func (n *Network) Crash(id string) {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	p.kill()
	p.handler = nil
	p.mu.Unlock()
}

// Withdraw removes a peer's provider records, as their expiry in the DHT does.
func (n *Network) Withdraw(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, ps := range n.records {
		n.records[k] = slices.DeleteFunc(ps, func(p string) bool { return p == id })
	}
}

// errUnreachable is what a stream to a crashed peer breaks with.
var errUnreachable = errors.New("memnet: peer unreachable")

// route decides the fate of one message from a to b: whether it arrives,
// and after how long.
func (n *Network) route(a, b string) (time.Duration, *Peer, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	to := n.peers[b]
	if to == nil || n.cut[pair(a, b)] || n.loss > 0 && n.rng.Float64() < n.loss {
		return 0, nil, false
	}
	d := n.delay
	if n.jitter > 0 {
		d += time.Duration(n.rng.Int64N(int64(n.jitter)))
	}
	return d, to, true
}

// Peer is one peer of a Network: a transport.Transport.
type Peer struct {
	net *Network
	id  string

	mu      sync.Mutex // guards what follows
	handler transport.Handler
	ctx     context.Context // ends when the peer crashes
	kill    context.CancelFunc
}

// Self returns the peer's ID.
func (p *Peer) Self() string { return p.id }

// Serve makes h answer the peer's requests; nil stops answering.
func (p *Peer) Serve(h transport.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handler = h
}

// Provide announces key as provided by this peer.
func (p *Peer) Provide(key cid.Cid) {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	k := key.KeyString()
	if !slices.Contains(p.net.records[k], p.id) {
		p.net.records[k] = append(p.net.records[k], p.id)
	}
}

// FindProviders returns up to want of the peers that announced key, after a
// round trip. The lookup always runs to its end.
func (p *Peer) FindProviders(ctx context.Context, key cid.Cid, want, _ int, _ time.Duration) ([]string, bool) {
	if !p.wait(ctx, p.id) {
		return nil, false
	}
	p.net.mu.Lock()
	found := slices.Clone(p.net.records[key.KeyString()])
	p.net.mu.Unlock()
	if len(found) > want {
		found = found[:want]
	}
	return found, true
}

// wait waits for one hop to to: its delay, or forever (until ctx ends) if the
// message is lost. It reports whether the message arrived.
func (p *Peer) wait(ctx context.Context, to string) bool {
	d, _, ok := p.net.route(p.id, to)
	if !ok || p.alive() == nil {
		<-ctx.Done()
		return false
	}
	if d > 0 {
		select {
		case <-p.net.clock.After(d):
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (p *Peer) alive() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return nil
	}
	return p.ctx
}

// reach carries a request to to: it waits the hop, and returns the handler
// and a context that ends with ctx, the sender's crash or the receiver's.
func (p *Peer) reach(ctx context.Context, to string) (transport.Handler, context.Context, context.CancelFunc, error) {
	if !p.wait(ctx, to) {
		return nil, nil, nil, fmt.Errorf("memnet: %x: %w", to, context.Cause(ctx))
	}
	p.net.mu.Lock()
	dst := p.net.peers[to]
	p.net.mu.Unlock()
	dst.mu.Lock()
	h, dctx := dst.handler, dst.ctx
	dst.mu.Unlock()
	sctx := p.alive()
	if h == nil || dctx.Err() != nil || sctx == nil {
		<-ctx.Done() // a dead peer is silent
		return nil, nil, nil, fmt.Errorf("memnet: %x: %w", to, ctx.Err())
	}
	sc, cancel := context.WithCancel(ctx)
	stop1 := context.AfterFunc(dctx, cancel)
	stop2 := context.AfterFunc(sctx, cancel)
	return h, sc, func() { stop1(); stop2(); cancel() }, nil
}

// back carries an answer from to back to p: the hop's delay, or silence.
func (p *Peer) back(ctx context.Context, from string) error {
	d, _, ok := p.net.route(from, p.id)
	if !ok {
		<-ctx.Done()
		return fmt.Errorf("memnet: answer from %x lost: %w", from, ctx.Err())
	}
	if d > 0 {
		select {
		case <-p.net.clock.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func clone[M proto.Message](m M) M { return proto.Clone(m).(M) }

// Offer asks to for an offer.
func (p *Peer) Offer(ctx context.Context, to string, req *pb.OfferRequest) (*pb.OfferResponse, error) {
	h, sc, done, err := p.reach(ctx, to)
	if err != nil {
		return nil, err
	}
	defer done()
	ans := clone(h.Offer(sc, p.id, clone(req)))
	return ans, p.back(ctx, to)
}

// Lease sends a lease, a decline or a cancel.
func (p *Peer) Lease(ctx context.Context, to string, req *pb.LeaseRequest) (*pb.LeaseAnswer, error) {
	h, sc, done, err := p.reach(ctx, to)
	if err != nil {
		return nil, err
	}
	defer done()
	ans, then := h.Lease(sc, p.id, clone(req))
	ans = clone(ans)
	if then != nil {
		then()
	}
	return ans, p.back(ctx, to)
}

// Receipt hands a countersigned receipt back.
func (p *Peer) Receipt(ctx context.Context, to string, sub *pb.ReceiptSubmit) (*pb.ReceiptAck, error) {
	h, sc, done, err := p.reach(ctx, to)
	if err != nil {
		return nil, err
	}
	defer done()
	ans := clone(h.Receipt(sc, p.id, clone(sub)))
	return ans, p.back(ctx, to)
}

// Watch follows a lease epoch: the handler streams in its own goroutine,
// each event cloned.
func (p *Peer) Watch(ctx context.Context, to string, req *pb.WatchRequest, fn func(*pb.WatchEvent) bool) error {
	return stream(p, ctx, to, func(h transport.Handler, sc context.Context, send func(*pb.WatchEvent) error) error {
		return h.Watch(sc, p.id, clone(req), send)
	}, fn)
}

// Blocks asks for blocks of a DAG.
func (p *Peer) Blocks(ctx context.Context, to string, req *pb.BlockRequest, fn func(*pb.BlockResponse) bool) error {
	return stream(p, ctx, to, func(h transport.Handler, sc context.Context, send func(*pb.BlockResponse) error) error {
		return h.Blocks(sc, p.id, clone(req), send)
	}, fn)
}

// Module fetches a module in chunks.
func (p *Peer) Module(ctx context.Context, to string, req *pb.ModuleRequest, fn func(*pb.ModuleChunk) bool) error {
	return stream(p, ctx, to, func(h transport.Handler, sc context.Context, send func(*pb.ModuleChunk) error) error {
		return h.Module(sc, p.id, clone(req), send)
	}, fn)
}

// stream runs serve on the far side and hands what it sends to fn, until fn
// says stop, serve returns, or either side dies.
func stream[M proto.Message](p *Peer, ctx context.Context, to string, serve func(transport.Handler, context.Context, func(M) error) error, fn func(M) bool) error {
	h, sc, done, err := p.reach(ctx, to)
	if err != nil {
		return err
	}
	defer done()
	msgs := make(chan M)
	ended := make(chan error, 1)
	go func() {
		ended <- serve(h, sc, func(m M) error {
			select {
			case msgs <- clone(m):
				return nil
			case <-sc.Done():
				return sc.Err()
			}
		})
	}()
	for {
		select {
		case m := <-msgs:
			if sc.Err() != nil {
				// Sent as the stream broke (a select picks at random among
				// ready cases): a crashed peer's last words never arrive.
				<-ended
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errUnreachable
			}
			if !fn(m) {
				done()
				<-ended
				return nil
			}
		case err := <-ended:
			// Deliver what was sent before the end, then report it.
			select {
			case m := <-msgs:
				if !fn(m) {
					return nil
				}
			default:
			}
			if err == nil {
				err = errors.New("memnet: stream closed")
			}
			return err
		case <-sc.Done():
			<-ended
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errUnreachable
		}
	}
}
