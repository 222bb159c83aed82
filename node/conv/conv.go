// Package conv converts between the wire's protobuf messages and the
// scheduler's value types: the node is the edge where one becomes the other,
// so that the core never sees a message it has not checked (SPEC 6).
package conv

import (
	"crypto/sha256"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// ResourcesToPB converts to the wire form.
func ResourcesToPB(r scheduler.Resources) *pb.Resources {
	return &pb.Resources{CpuMillis: r.CPUMillis, MemoryBytes: r.MemoryBytes, ScratchBytes: r.ScratchBytes}
}

// ResourcesFromPB converts from the wire form.
func ResourcesFromPB(r *pb.Resources) scheduler.Resources {
	return scheduler.Resources{CPUMillis: r.GetCpuMillis(), MemoryBytes: r.GetMemoryBytes(), ScratchBytes: r.GetScratchBytes()}
}

// PriceToPB converts to the wire form.
func PriceToPB(p scheduler.Price) *pb.Price {
	return &pb.Price{Currency: p.Currency, CpuNanosPerSecond: p.CPUNanosPerSecond,
		MemoryNanosPerGibSecond: p.MemoryNanosPerGiBSecond, EgressNanosPerGib: p.EgressNanosPerGiB}
}

// PriceFromPB converts from the wire form.
func PriceFromPB(p *pb.Price) scheduler.Price {
	return scheduler.Price{Currency: p.GetCurrency(), CPUNanosPerSecond: p.GetCpuNanosPerSecond(),
		MemoryNanosPerGiBSecond: p.GetMemoryNanosPerGibSecond(), EgressNanosPerGiB: p.GetEgressNanosPerGib()}
}

// AmountToPB converts to the wire form.
func AmountToPB(a scheduler.Amount) *pb.Amount {
	if a.Currency == "" && a.Nanos == 0 {
		return nil
	}
	return &pb.Amount{Currency: a.Currency, Nanos: a.Nanos}
}

// AmountFromPB converts from the wire form.
func AmountFromPB(a *pb.Amount) scheduler.Amount {
	return scheduler.Amount{Currency: a.GetCurrency(), Nanos: a.GetNanos()}
}

// LabelsToPB converts to the wire form.
func LabelsToPB(l scheduler.Labels) []*pb.Label {
	out := make([]*pb.Label, len(l))
	for i, x := range l {
		out[i] = &pb.Label{Key: x.Key, Value: x.Value}
	}
	return out
}

// LabelsFromPB converts from the wire form.
func LabelsFromPB(l []*pb.Label) scheduler.Labels {
	out := make([]scheduler.Label, len(l))
	for i, x := range l {
		out[i] = scheduler.Label{Key: x.Key, Value: x.Value}
	}
	return scheduler.NewLabels(out...)
}

// SelectorsToPB converts to the wire form.
func SelectorsToPB(s []scheduler.Selector) []*pb.Constraint {
	out := make([]*pb.Constraint, len(s))
	for i, x := range s {
		out[i] = &pb.Constraint{Key: x.Key, Op: x.Op, Values: x.Values}
	}
	return out
}

// SelectorsFromPB converts from the wire form.
func SelectorsFromPB(c []*pb.Constraint) []scheduler.Selector {
	out := make([]scheduler.Selector, len(c))
	for i, x := range c {
		out[i] = scheduler.Selector{Key: x.Key, Op: x.Op, Values: x.Values}
	}
	return out
}

// Ms is a duration in whole milliseconds, never negative.
func Ms(d time.Duration) uint64 { return uint64(max(d.Milliseconds(), 0)) }

// RequestToPB is the wire form of an offer request.
func RequestToPB(r scheduler.Request) *pb.OfferRequest {
	return &pb.OfferRequest{
		Nonce: []byte(r.Nonce), JobCid: []byte(r.JobCID), Executor: r.Executor,
		Resources: ResourcesToPB(r.Resources), TimeoutMs: Ms(r.Timeout),
		Constraints: SelectorsToPB(r.Constraints), MaxPrice: AmountToPB(r.MaxPrice),
		ExpiresAtMs: protocol.UnixMs(r.ExpiresAt), Grant: []byte(r.Grant),
	}
}

// RequestFromPB checks and converts an offer request from a peer (SPEC 6.1).
func RequestFromPB(r *pb.OfferRequest, from string, now time.Time) (scheduler.Request, error) {
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
		Nonce: string(r.Nonce), Requester: from, JobCID: string(r.JobCid), Executor: r.Executor,
		Resources: ResourcesFromPB(r.Resources), Timeout: time.Duration(r.TimeoutMs) * time.Millisecond,
		Constraints: SelectorsFromPB(r.Constraints), MaxPrice: AmountFromPB(r.MaxPrice),
		ExpiresAt: protocol.FromUnixMs(r.ExpiresAtMs), Grant: string(r.Grant),
	}, nil
}

// OfferToPB converts to the wire form.
func OfferToPB(o scheduler.Offer) *pb.Offer {
	return &pb.Offer{
		Provider: []byte(o.Provider), Requester: []byte(o.Requester), RequestNonce: []byte(o.RequestNonce),
		Nonce: []byte(o.Nonce), JobCid: []byte(o.JobCID), Resources: ResourcesToPB(o.Resources),
		Price: PriceToPB(o.Price), Total: AmountToPB(o.Total), ExpiresAtMs: protocol.UnixMs(o.ExpiresAt),
		LoadPermille: o.LoadPermille, Labels: LabelsToPB(o.Labels), Capacity: ResourcesToPB(o.Capacity),
	}
}

// OfferFromPB converts from the wire form.
func OfferFromPB(o *pb.Offer) scheduler.Offer {
	return scheduler.Offer{
		Provider: string(o.Provider), Requester: string(o.Requester), RequestNonce: string(o.RequestNonce),
		Nonce: string(o.Nonce), JobCID: string(o.JobCid), Resources: ResourcesFromPB(o.Resources),
		Price: PriceFromPB(o.Price), Total: AmountFromPB(o.Total), ExpiresAt: protocol.FromUnixMs(o.ExpiresAtMs),
		LoadPermille: o.LoadPermille, Labels: LabelsFromPB(o.Labels), Capacity: ResourcesFromPB(o.Capacity),
		Site: string(o.Site),
	}
}

// LeaseToPB is the wire form of a lease carrying a sealed job.
func LeaseToPB(l scheduler.Lease, nonce string, job []byte, heartbeat time.Duration) *pb.Lease {
	return &pb.Lease{
		LeaseId: []byte(l.ID), Provider: []byte(l.Provider), Requester: []byte(l.Requester),
		OfferNonce: []byte(l.OfferNonce), JobCid: []byte(l.JobCID), Epoch: l.Epoch, Nonce: []byte(nonce),
		ExpiresAtMs: protocol.UnixMs(l.ExpiresAt), Job: job, HeartbeatMs: Ms(heartbeat), Instance: l.Instance,
	}
}

// ReceiptHash is what a countersignature covers (SPEC 6.4).
func ReceiptHash(env []byte) []byte {
	h := sha256.Sum256(env)
	return h[:]
}

// MsOrZero is t in Unix milliseconds, 0 for the zero time (SPEC 2.3).
func MsOrZero(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return protocol.UnixMs(t)
}

// MsTime is the time of Unix milliseconds, the zero time for 0.
func MsTime(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return protocol.FromUnixMs(ms)
}

// ErrorAnswer is the answer a provider gives, on the protocol id, to a
// request it refuses before reading it whole: each protocol carries its typed
// error in its own message (SPEC 6). It is nil for an unknown protocol.
func ErrorAnswer(id string, err error) proto.Message {
	e := protocol.ToPB(err)
	switch id {
	case string(protocol.OfferID):
		return &pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: e}}
	case string(protocol.LeaseID):
		return &pb.LeaseAnswer{Error: e}
	case string(protocol.WatchID):
		return &pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: e}}
	case string(protocol.ModuleID):
		return &pb.ModuleChunk{Error: e}
	case string(protocol.ReceiptID):
		return &pb.ReceiptAck{Error: e}
	case string(protocol.BlocksID):
		return &pb.BlockResponse{Error: e}
	case string(protocol.WholesaleID):
		return &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Refusal{Refusal: e}}
	}
	return nil
}
