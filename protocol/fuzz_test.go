package protocol

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cuivre/cuivre/protocol/pb"
)

// Native fuzz targets for every decoder (STYLE: quic-go's habit), seeded with
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
	for _, m := range vectorMessages(f) {
		b, err := Canonical(m.msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{typeIndex(m.msg)}, frame(b)...))
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		mt := wireTypes[int(in[0])%len(wireTypes)]
		r := NewReader(bytes.NewReader(in[1:]), MaxOfferMsg)
		for range 4 {
			msg := mt.New().Interface()
			if err := r.ReadMsg(msg); err != nil {
				return
			}
			b, err := Canonical(msg)
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

// sealedSeeds returns every vector record sealed by its expected signer.
func sealedSeeds(f *testing.F) [][]byte {
	provKey, _ := testKey(f, providerSeed)
	reqKey, _ := testKey(f, requesterSeed)
	var out [][]byte
	for _, m := range vectorMessages(f) {
		k := KindOf(m.msg)
		if k == 0 {
			continue
		}
		key := provKey
		if k == KindLease || k == KindCountersignature || k == KindJob {
			key = reqKey
		}
		b, err := Seal(key, m.msg)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func fuzzOpen(f *testing.F, open func([]byte) error) {
	for _, b := range sealedSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		err := open(in)
		if err != nil && CodeOf(err) == pb.Code_CODE_INTERNAL {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

var fuzzNow = vectorTime.Add(time.Second)

func FuzzOpenOffer(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := OpenOffer(b, fuzzNow); return err })
}

func FuzzOpenLease(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := OpenLease(b, fuzzNow); return err })
}

func FuzzOpenReceipt(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := OpenReceipt(b); return err })
}

func FuzzOpenCountersignature(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := OpenCountersignature(b); return err })
}

func FuzzOpenCapacity(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := OpenCapacity(b, fuzzNow); return err })
}

// FuzzOpenJob also checks that an accepted job's CID is the CID of its
// canonical encoding, whatever bytes it arrived as.
func FuzzOpenJob(f *testing.F) {
	fuzzOpen(f, func(b []byte) error {
		j, err := OpenJob(b)
		if err != nil {
			return err
		}
		c, cerr := JobCID(j.Job)
		if cerr != nil || !c.Equals(j.CID) {
			panic("accepted job's CID is not its canonical CID")
		}
		return nil
	})
}

// FuzzSealOpen signs arbitrary payload bytes as a job record with a valid
// signature, so the fuzzer reaches the checks behind the signature.
func FuzzSealOpen(f *testing.F) {
	key, _ := testKey(f, requesterSeed)
	for _, m := range vectorMessages(f) {
		b, _ := Canonical(m.msg)
		f.Add(typeIndex(m.msg), b)
	}
	f.Fuzz(func(t *testing.T, sel byte, payload []byte) {
		kinds := Kinds()
		k := kinds[int(sel)%len(kinds)]
		env, err := sealBytes(key, k, payload)
		if err != nil {
			t.Fatal(err)
		}
		now := fuzzNow
		var errs []error
		_, e := OpenOffer(env, now)
		errs = append(errs, e)
		_, e = OpenLease(env, now)
		errs = append(errs, e)
		_, e = OpenReceipt(env)
		errs = append(errs, e)
		_, e = OpenCountersignature(env)
		errs = append(errs, e)
		_, e = OpenCapacity(env, now)
		errs = append(errs, e)
		_, e = OpenJob(env)
		errs = append(errs, e)
		for _, e := range errs {
			if e != nil && CodeOf(e) == pb.Code_CODE_INTERNAL {
				t.Fatalf("untyped error: %v", e)
			}
		}
	})
}

func FuzzParseCID(f *testing.F) {
	f.Add(SumCID([]byte("x")).Bytes())
	f.Add([]byte{0x01, 0x55, 0x12, 0x20})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCID(in)
		if err != nil {
			if CodeOf(err) != CodeMalformed {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), in) {
			t.Fatalf("CID does not re-encode to its input")
		}
		if _, err := DecodeCID(c.String()); err != nil {
			t.Fatalf("text form does not parse back: %v", err)
		}
	})
}

func FuzzFacetKey(f *testing.F) {
	f.Add("region", "fr-par", uint32(7))
	f.Add("any", "", uint32(63))
	f.Fuzz(func(t *testing.T, facet, value string, shard uint32) {
		k, err := NewFacetKey(Facet(facet), value, shard)
		if err != nil {
			return
		}
		if k.Shard >= k.Facet.Shards() {
			t.Fatalf("shard %d out of range", k.Shard)
		}
		k2, err := NewFacetKey(k.Facet, k.Value, k.Shard)
		if err != nil || k2.String() != k.String() {
			t.Fatalf("normalised key does not check again: %v", err)
		}
	})
}
