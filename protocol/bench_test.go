package protocol

import (
	"bytes"
	"testing"

	"github.com/cuivre/cuivre/protocol/pb"
)

// The hot path of a placement on the wire: a provider seals an offer, a
// requester opens it; both frame messages.

func BenchmarkSealOffer(b *testing.B) {
	key, _ := testKey(b, providerSeed)
	offer := benchOffer(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(key, offer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenOffer(b *testing.B) {
	key, _ := testKey(b, providerSeed)
	env, err := Seal(key, benchOffer(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenOffer(env, vectorTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFrameOfferRequest(b *testing.B) {
	var req *pb.OfferRequest
	for _, m := range vectorMessages(b) {
		if m.name == "offer_request" {
			req = m.msg.(*pb.OfferRequest)
		}
	}
	var buf bytes.Buffer
	w, r := NewWriter(&buf, MaxOfferMsg), NewReader(&buf, MaxOfferMsg)
	got := new(pb.OfferRequest)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteMsg(req); err != nil {
			b.Fatal(err)
		}
		if err := r.ReadMsg(got); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOffer(b *testing.B) *pb.Offer {
	for _, m := range vectorMessages(b) {
		if o, ok := m.msg.(*pb.Offer); ok {
			return o
		}
	}
	b.Fatal("no offer vector")
	return nil
}
