package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// Conversions between wire messages and the scheduler's value types: the node
// is the edge where one becomes the other (DESIGN, "sans-I/O scheduler core").

func resourcesToPB(r scheduler.Resources) *pb.Resources {
	return &pb.Resources{CpuMillis: r.CPUMillis, MemoryBytes: r.MemoryBytes, ScratchBytes: r.ScratchBytes}
}

func resourcesFromPB(r *pb.Resources) scheduler.Resources {
	return scheduler.Resources{CPUMillis: r.GetCpuMillis(), MemoryBytes: r.GetMemoryBytes(), ScratchBytes: r.GetScratchBytes()}
}

func priceToPB(p scheduler.Price) *pb.Price {
	return &pb.Price{Currency: p.Currency, CpuNanosPerSecond: p.CPUNanosPerSecond,
		MemoryNanosPerGibSecond: p.MemoryNanosPerGiBSecond, EgressNanosPerGib: p.EgressNanosPerGiB}
}

func priceFromPB(p *pb.Price) scheduler.Price {
	return scheduler.Price{Currency: p.GetCurrency(), CPUNanosPerSecond: p.GetCpuNanosPerSecond(),
		MemoryNanosPerGiBSecond: p.GetMemoryNanosPerGibSecond(), EgressNanosPerGiB: p.GetEgressNanosPerGib()}
}

func amountToPB(a scheduler.Amount) *pb.Amount {
	if a.Currency == "" && a.Nanos == 0 {
		return nil
	}
	return &pb.Amount{Currency: a.Currency, Nanos: a.Nanos}
}

func amountFromPB(a *pb.Amount) scheduler.Amount {
	return scheduler.Amount{Currency: a.GetCurrency(), Nanos: a.GetNanos()}
}

func labelsToPB(l scheduler.Labels) []*pb.Label {
	out := make([]*pb.Label, len(l))
	for i, x := range l {
		out[i] = &pb.Label{Key: x.Key, Value: x.Value}
	}
	return out
}

func labelsFromPB(l []*pb.Label) scheduler.Labels {
	out := make([]scheduler.Label, len(l))
	for i, x := range l {
		out[i] = scheduler.Label{Key: x.Key, Value: x.Value}
	}
	return scheduler.NewLabels(out...)
}

func selectorsToPB(s []scheduler.Selector) []*pb.Constraint {
	out := make([]*pb.Constraint, len(s))
	for i, x := range s {
		out[i] = &pb.Constraint{Key: x.Key, Op: x.Op, Values: x.Values}
	}
	return out
}

func selectorsFromPB(c []*pb.Constraint) []scheduler.Selector {
	out := make([]scheduler.Selector, len(c))
	for i, x := range c {
		out[i] = scheduler.Selector{Key: x.Key, Op: x.Op, Values: x.Values}
	}
	return out
}

func ms(d time.Duration) uint64 { return uint64(max(d.Milliseconds(), 0)) }

// requestToPB is the wire form of an offer request.
func requestToPB(r scheduler.Request) *pb.OfferRequest {
	return &pb.OfferRequest{
		Nonce: []byte(r.Nonce), JobCid: []byte(r.JobCID), Executor: r.Executor,
		Resources: resourcesToPB(r.Resources), TimeoutMs: ms(r.Timeout),
		Constraints: selectorsToPB(r.Constraints), MaxPrice: amountToPB(r.MaxPrice),
		ExpiresAtMs: protocol.UnixMs(r.ExpiresAt),
	}
}

// requestFromPB checks and converts an offer request from a peer (SPEC 6.1).
func requestFromPB(r *pb.OfferRequest, from peer.ID, now time.Time) (scheduler.Request, error) {
	if len(r.Nonce) != protocol.NonceSize {
		return scheduler.Request{}, protocol.Errorf(protocol.CodeMalformed, "request nonce is %d bytes, want %d", len(r.Nonce), protocol.NonceSize)
	}
	if _, err := wire.ParseCID(r.JobCid); err != nil {
		return scheduler.Request{}, err
	}
	if err := protocol.CheckExpiry(now, r.ExpiresAtMs, protocol.MaxOfferTTL); err != nil {
		return scheduler.Request{}, err
	}
	return scheduler.Request{
		Nonce: string(r.Nonce), Requester: string(from), JobCID: string(r.JobCid), Executor: r.Executor,
		Resources: resourcesFromPB(r.Resources), Timeout: time.Duration(r.TimeoutMs) * time.Millisecond,
		Constraints: selectorsFromPB(r.Constraints), MaxPrice: amountFromPB(r.MaxPrice),
		ExpiresAt: protocol.FromUnixMs(r.ExpiresAtMs),
	}, nil
}

func offerToPB(o scheduler.Offer) *pb.Offer {
	return &pb.Offer{
		Provider: []byte(o.Provider), Requester: []byte(o.Requester), RequestNonce: []byte(o.RequestNonce),
		Nonce: []byte(o.Nonce), JobCid: []byte(o.JobCID), Resources: resourcesToPB(o.Resources),
		Price: priceToPB(o.Price), Total: amountToPB(o.Total), ExpiresAtMs: protocol.UnixMs(o.ExpiresAt),
		LoadPermille: o.LoadPermille, Labels: labelsToPB(o.Labels),
	}
}

func offerFromPB(o *pb.Offer) scheduler.Offer {
	return scheduler.Offer{
		Provider: string(o.Provider), Requester: string(o.Requester), RequestNonce: string(o.RequestNonce),
		Nonce: string(o.Nonce), JobCID: string(o.JobCid), Resources: resourcesFromPB(o.Resources),
		Price: priceFromPB(o.Price), Total: amountFromPB(o.Total), ExpiresAt: protocol.FromUnixMs(o.ExpiresAtMs),
		LoadPermille: o.LoadPermille, Labels: labelsFromPB(o.Labels),
	}
}

// leaseToPB is the wire form of a lease carrying a sealed job.
func leaseToPB(l scheduler.Lease, nonce string, job []byte, heartbeat time.Duration) *pb.Lease {
	return &pb.Lease{
		LeaseId: []byte(l.ID), Provider: []byte(l.Provider), Requester: []byte(l.Requester),
		OfferNonce: []byte(l.OfferNonce), JobCid: []byte(l.JobCID), Epoch: l.Epoch, Nonce: []byte(nonce),
		ExpiresAtMs: protocol.UnixMs(l.ExpiresAt), Job: job, HeartbeatMs: ms(heartbeat),
	}
}
