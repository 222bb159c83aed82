// Package transport is the node's seam for the network: the requester's and
// the provider's drivers talk to other peers only through a Transport, and
// are reached only through a Handler. The messages are the wire's (SPEC 6),
// so that verification, signatures and refusals are the drivers' own code
// whatever carries the bytes: node/p2p carries them over libp2p streams and
// the Kademlia DHT, node/memnet in memory with injected delay, loss,
// partitions and crashes.
//
// Peers are named by their binary peer IDs, as strings, the scheduler's form.
package transport

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/protocol/pb"
)

// Transport is what a driver asks of the network. Every call ends when ctx
// does; an error is either a typed *protocol.Error the other side answered,
// or a failure to reach it (which a driver treats as no answer). Implementations
// are safe for concurrent use.
type Transport interface {
	// Self returns this peer's ID.
	Self() string
	// FindProviders looks key up in the DHT until it has want providers,
	// or need of them and grace has passed since, or the lookup ends;
	// complete says it ran to its end. The answer may name this peer.
	FindProviders(ctx context.Context, key cid.Cid, want, need int, grace time.Duration) (peers []string, complete bool)

	// Offer asks to for an offer (SPEC 6.1).
	Offer(ctx context.Context, to string, req *pb.OfferRequest) (*pb.OfferResponse, error)
	// Lease sends a lease, a decline or a cancel (SPEC 6.2).
	Lease(ctx context.Context, to string, req *pb.LeaseRequest) (*pb.LeaseAnswer, error)
	// Watch follows a lease epoch (SPEC 6.3), calling fn with each event
	// until fn returns false (nil error) or the stream breaks.
	Watch(ctx context.Context, to string, req *pb.WatchRequest, fn func(*pb.WatchEvent) bool) error
	// Module fetches a module in chunks (SPEC 6.5), calling fn with each
	// until fn returns false (nil error) or the stream breaks.
	Module(ctx context.Context, to string, req *pb.ModuleRequest, fn func(*pb.ModuleChunk) bool) error
	// Receipt hands a countersigned receipt back (SPEC 6.4).
	Receipt(ctx context.Context, to string, sub *pb.ReceiptSubmit) (*pb.ReceiptAck, error)
	// Blocks asks for blocks of a DAG (SPEC 6.6), calling fn with each
	// answer until fn returns false (nil error) or the stream breaks.
	Blocks(ctx context.Context, to string, req *pb.BlockRequest, fn func(*pb.BlockResponse) bool) error

	// Serve makes h answer the requests of other peers; nil stops answering.
	Serve(h Handler)
}

// Handler answers the requests of other peers: the provider's side of each
// protocol. from is the authenticated sender. The transport decodes and
// frames; a request it cannot decode is answered by the transport with
// its typed error (see Malformed) and never reaches the handler.
type Handler interface {
	Offer(ctx context.Context, from string, req *pb.OfferRequest) *pb.OfferResponse
	// Lease answers ans, then calls then (if not nil) once the answer is
	// on its way: a lease's run starts after its acknowledgement.
	Lease(ctx context.Context, from string, req *pb.LeaseRequest) (ans *pb.LeaseAnswer, then func())
	// Watch streams events with send until the lease's result, an error or ctx's end.
	Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error
	// Module streams a module's chunks with send.
	Module(ctx context.Context, from string, req *pb.ModuleRequest, send func(*pb.ModuleChunk) error) error
	Receipt(ctx context.Context, from string, sub *pb.ReceiptSubmit) *pb.ReceiptAck
	// Blocks answers each CID asked, in order, with send.
	Blocks(ctx context.Context, from string, req *pb.BlockRequest, send func(*pb.BlockResponse) error) error
	// Malformed tells the handler a request of protocol id from from was
	// refused before it (undecodable, too large), for its counts and logs.
	Malformed(id, from string, err error)
}

type originKey struct{}

// WithOrigin returns ctx carrying the origin of a request: the network its
// sender's connection comes from, which a provider's limits group peers
// by (scheduler.Request.Origin). A transport sets it on the contexts it
// hands its Handler.
func WithOrigin(ctx context.Context, origin string) context.Context {
	if origin == "" {
		return ctx
	}
	return context.WithValue(ctx, originKey{}, origin)
}

// Origin returns the origin WithOrigin put in ctx, or "".
func Origin(ctx context.Context) string {
	o, _ := ctx.Value(originKey{}).(string)
	return o
}
