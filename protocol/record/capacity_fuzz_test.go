package record_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// CapacityValidator reads keys and values any DHT peer sends
// (SPEC 4.4). Its fuzz targets are seeded with records sealed by two fixed
// providers, so the fuzzer starts from values that validate.

var capNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fuzzProvider is a fixed provider key made from seed.
func fuzzProvider(f *testing.F, seed byte) (crypto.PrivKey, peer.ID) {
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		f.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		f.Fatal(err)
	}
	return k, id
}

// sealCapacity seals a live capacity record of id with sequence seq.
func sealCapacity(f *testing.F, k crypto.PrivKey, id peer.ID, seq uint64) []byte {
	env, err := record.Seal(k, &pb.CapacityRecord{
		Provider: []byte(id), Seq: seq, IssuedAtMs: protocol.UnixMs(capNow),
		ExpiresAtMs: protocol.UnixMs(capNow.Add(30 * time.Minute)),
		Total:       &pb.Resources{CpuMillis: 4000, MemoryBytes: 8 << 30, ScratchBytes: 1 << 30},
		Free:        &pb.Resources{CpuMillis: 2000, MemoryBytes: 4 << 30, ScratchBytes: 1 << 30},
		Price:       &pb.Price{Currency: "EUR", CpuNanosPerSecond: 10_000},
		Labels:      []*pb.Label{{Key: "region", Value: "fr-par"}},
		Executors:   []string{"wasm"},
	})
	if err != nil {
		f.Fatal(err)
	}
	return env
}

// FuzzCapacityValidate: a value validates only if it opens as a capacity
// record of the key's peer, live at now; anything else is an error, never a
// panic.
func FuzzCapacityValidate(f *testing.F) {
	k1, id1 := fuzzProvider(f, 1)
	k2, id2 := fuzzProvider(f, 2)
	v1, v2 := sealCapacity(f, k1, id1, 7), sealCapacity(f, k2, id2, 3)
	f.Add(record.CapacityKey(id1), v1)
	f.Add(record.CapacityKey(id2), v2)
	f.Add(record.CapacityKey(id1), v2) // another peer's record under this key
	f.Add("/cuivre-capacity/", v1)
	f.Add("/pk/"+string(id1), v1)
	f.Add(record.CapacityKey(id1), []byte{})
	v := record.CapacityValidator{Now: func() time.Time { return capNow }}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		defer fuzzguard.Start()()
		err := v.Validate(key, value)
		if err != nil {
			return
		}
		rec, oerr := record.OpenCapacity(value, capNow)
		if oerr != nil {
			t.Fatalf("validated a value that does not open: %v", oerr)
		}
		if key != record.CapacityKey(peer.ID(rec.Provider)) {
			t.Fatalf("validated %x under the key of another peer", rec.Provider)
		}
	})
}

// FuzzCapacitySelect: Select picks a valid value with the highest seq, or
// errs when none is valid.
func FuzzCapacitySelect(f *testing.F) {
	k1, id1 := fuzzProvider(f, 1)
	k2, id2 := fuzzProvider(f, 2)
	a, b, other := sealCapacity(f, k1, id1, 7), sealCapacity(f, k1, id1, 9), sealCapacity(f, k2, id2, 50)
	f.Add(a, b, other, uint8(0))
	f.Add(b, a, []byte{0x0a}, uint8(1))
	f.Add(other, []byte{}, a, uint8(2))
	f.Add(a, b, b, uint8(0x81))
	v := record.CapacityValidator{Now: func() time.Time { return capNow }}
	key := record.CapacityKey(id1)
	f.Fuzz(func(t *testing.T, x, y, z []byte, flip uint8) {
		defer fuzzguard.Start()()
		values := [][]byte{x, y, z}
		// With the high bit of flip, flip one bit of one value, so
		// near-valid records come often.
		if w := values[int(flip)%3]; flip&0x80 != 0 && len(w) > 0 {
			w = bytes.Clone(w)
			w[int(flip)%len(w)] ^= 1 << (flip % 8)
			values[int(flip)%3] = w
		}
		best, err := v.Select(key, values)
		var valid []uint64
		var top uint64
		any := false
		for _, val := range values {
			if v.Validate(key, val) != nil {
				valid = append(valid, 0)
				continue
			}
			rec, _ := record.OpenCapacity(val, capNow)
			valid = append(valid, rec.Seq+1)
			if !any || rec.Seq > top {
				top, any = rec.Seq, true
			}
		}
		if !any {
			if err == nil {
				t.Fatalf("selected %d of no valid value", best)
			}
			return
		}
		if err != nil || best < 0 || best >= len(values) {
			t.Fatalf("Select = %d, %v with a valid value", best, err)
		}
		if valid[best] != top+1 {
			t.Fatalf("selected value %d (seq+1 %d), the highest valid seq is %d", best, valid[best], top)
		}
	})
}
