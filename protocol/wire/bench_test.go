package wire_test

import (
	"bytes"
	"testing"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// The hot path of a placement on the wire: both sides frame messages.

func BenchmarkFrameOfferRequest(b *testing.B) {
	req := vector.Get(b, "offer_request").(*pb.OfferRequest)
	var buf bytes.Buffer
	w, r := wire.NewWriter(&buf, protocol.MaxOfferMsg), wire.NewReader(&buf, protocol.MaxOfferMsg)
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
