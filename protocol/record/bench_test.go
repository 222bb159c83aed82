package record_test

import (
	"testing"

	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// The hot path of a placement on the wire: a provider seals an offer, a
// requester opens it.

func BenchmarkSealOffer(b *testing.B) {
	key, _ := vector.Key(b, vector.ProviderSeed)
	offer := benchOffer(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := record.Seal(key, offer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenOffer(b *testing.B) {
	key, _ := vector.Key(b, vector.ProviderSeed)
	env, err := record.Seal(key, benchOffer(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := record.OpenOffer(env, vector.Time); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOffer(b *testing.B) *pb.Offer { return vector.Get(b, "offer").(*pb.Offer) }
