package wire_test

import (
	"bytes"
	"testing"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// Native fuzz targets for every decoder (one per parser, as quic-go keeps them), seeded with
// the valid encodings of the test vectors. `make test` runs their seed corpora;
// `make fuzz` runs each for FUZZTIME.

// wireTypes is every top-level message a peer may send or store, in a fixed
// order so a fuzz input's first byte picks one.
var wireTypes = []protoreflect.MessageType{
	(*pb.CapacityRecord)(nil).ProtoReflect().Type(),
	(*pb.OfferRequest)(nil).ProtoReflect().Type(),
	(*pb.Offer)(nil).ProtoReflect().Type(),
	(*pb.OfferResponse)(nil).ProtoReflect().Type(),
	(*pb.Lease)(nil).ProtoReflect().Type(),
	(*pb.LeaseRequest)(nil).ProtoReflect().Type(),
	(*pb.LeaseAnswer)(nil).ProtoReflect().Type(),
	(*pb.WatchRequest)(nil).ProtoReflect().Type(),
	(*pb.WatchEvent)(nil).ProtoReflect().Type(),
	(*pb.UsageReceipt)(nil).ProtoReflect().Type(),
	(*pb.Countersignature)(nil).ProtoReflect().Type(),
	(*pb.ReceiptSubmit)(nil).ProtoReflect().Type(),
	(*pb.ReceiptAck)(nil).ProtoReflect().Type(),
	(*pb.ModuleRequest)(nil).ProtoReflect().Type(),
	(*pb.ModuleChunk)(nil).ProtoReflect().Type(),
	(*pb.Job)(nil).ProtoReflect().Type(),
	(*pb.Error)(nil).ProtoReflect().Type(),
}

func typeIndex(msg proto.Message) byte {
	for i, mt := range wireTypes {
		if mt.Descriptor().FullName() == msg.ProtoReflect().Descriptor().FullName() {
			return byte(i)
		}
	}
	return 0
}

// FuzzReadMsg feeds frames to the Reader: it must return a message or a typed
// error, never panic, and a decoded message must survive a canonical round trip.
func FuzzReadMsg(f *testing.F) {
	for _, m := range vector.Messages(f) {
		b, err := protocol.Canonical(m.Msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{typeIndex(m.Msg)}, frame(b)...))
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, in []byte) {
		defer fuzzguard.Start()()
		if len(in) == 0 {
			return
		}
		mt := wireTypes[int(in[0])%len(wireTypes)]
		r := wire.NewReader(bytes.NewReader(in[1:]), protocol.MaxOfferMsg)
		for range 4 {
			msg := mt.New().Interface()
			if err := r.ReadMsg(msg); err != nil {
				return
			}
			b, err := protocol.Canonical(msg)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			again := mt.New().Interface()
			if err := proto.Unmarshal(b, again); err != nil {
				t.Fatalf("decode of re-encoding: %v", err)
			}
			if !proto.Equal(msg, again) {
				t.Fatalf("round trip changed the message")
			}
		}
	})
}

func FuzzParseCID(f *testing.F) {
	f.Add(wire.SumCID([]byte("x")).Bytes())
	f.Add([]byte{0x01, 0x55, 0x12, 0x20})
	f.Fuzz(func(t *testing.T, in []byte) {
		defer fuzzguard.Start()()
		c, err := wire.ParseCID(in)
		if err != nil {
			if protocol.CodeOf(err) != protocol.CodeMalformed {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), in) {
			t.Fatalf("CID does not re-encode to its input")
		}
		if _, err := wire.DecodeCID(c.String()); err != nil {
			t.Fatalf("text form does not parse back: %v", err)
		}
	})
}
