package protocol

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol/pb"
)

func vector(t *testing.T, name string) proto.Message {
	t.Helper()
	for _, m := range vectorMessages(t) {
		if m.name == name {
			return proto.Clone(m.msg)
		}
	}
	t.Fatalf("no vector %q", name)
	return nil
}

func seal(t *testing.T, key crypto.PrivKey, msg proto.Message) []byte {
	t.Helper()
	b, err := Seal(key, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenErrorsAreTyped(t *testing.T) {
	provKey, _ := testKey(t, providerSeed)
	reqKey, _ := testKey(t, requesterSeed)
	now := vectorTime
	offer := vector(t, "offer").(*pb.Offer)
	good := seal(t, provKey, offer)

	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-1] ^= 0x01 // last byte is inside the signature

	otherPayload := append([]byte(nil), good...)
	// Flip a byte of the payload: the signature no longer covers it.
	otherPayload[len(otherPayload)-64-8] ^= 0x01

	wrongSigner := seal(t, reqKey, offer) // signed by the requester, claims the provider

	secpKey, _, err := crypto.GenerateSecp256k1Key(zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Seal(secpKey, offer); err == nil {
		t.Fatal("Seal accepted a secp256k1 key")
	}

	expired := proto.Clone(offer).(*pb.Offer)
	expired.ExpiresAtMs = UnixMs(now.Add(-time.Millisecond))
	ahead := proto.Clone(offer).(*pb.Offer)
	ahead.ExpiresAtMs = UnixMs(now.Add(MaxOfferTTL + ClockSkew + time.Second))
	shortNonce := proto.Clone(offer).(*pb.Offer)
	shortNonce.Nonce = []byte{1, 2, 3}

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"good", good, nil},
		{"empty", nil, ErrMalformed},
		{"garbage", []byte("\xff\xff\xff\xff not an envelope"), ErrMalformed},
		{"bad signature", badSig, ErrBadSignature},
		{"payload changed", otherPayload, ErrBadSignature},
		{"wrong domain: lease presented as offer", seal(t, reqKey, vector(t, "lease")), ErrWrongDomain},
		{"wrong domain: receipt presented as offer", seal(t, provKey, vector(t, "usage_receipt")), ErrWrongDomain},
		{"wrong signer", wrongSigner, ErrWrongSigner},
		{"expired", seal(t, provKey, expired), ErrExpired},
		{"too far ahead", seal(t, provKey, ahead), ErrTooFarAhead},
		{"short nonce", seal(t, provKey, shortNonce), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenOffer(tt.data, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("OpenOffer: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenOffer: got %v (code %v), want %v", err, CodeOf(err), tt.want)
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	return len(p), nil
}

func TestOpenEachKind(t *testing.T) {
	provKey, _ := testKey(t, providerSeed)
	reqKey, _ := testKey(t, requesterSeed)
	now := vectorTime
	open := map[Kind]func([]byte) error{
		KindOffer:            func(b []byte) error { _, err := OpenOffer(b, now); return err },
		KindLease:            func(b []byte) error { _, err := OpenLease(b, now); return err },
		KindReceipt:          func(b []byte) error { _, err := OpenReceipt(b); return err },
		KindCountersignature: func(b []byte) error { _, err := OpenCountersignature(b); return err },
		KindCapacity:         func(b []byte) error { _, err := OpenCapacity(b, now); return err },
		KindJob:              func(b []byte) error { _, err := OpenJob(b); return err },
	}
	signers := map[Kind]crypto.PrivKey{
		KindOffer: provKey, KindReceipt: provKey, KindCapacity: provKey,
		KindLease: reqKey, KindCountersignature: reqKey, KindJob: reqKey,
	}
	sealed := map[Kind][]byte{}
	for _, m := range vectorMessages(t) {
		if k := KindOf(m.msg); k != 0 {
			sealed[k] = seal(t, signers[k], m.msg)
		}
	}
	for _, k := range Kinds() {
		for _, as := range Kinds() {
			err := open[as](sealed[k])
			switch {
			case k == as && err != nil:
				t.Errorf("%s opened as itself: %v", k, err)
			case k != as && !errors.Is(err, ErrWrongDomain):
				t.Errorf("%s opened as %s: got %v, want wrong domain", k, as, err)
			}
		}
	}
}

func TestOpenLeaseChecks(t *testing.T) {
	reqKey, _ := testKey(t, requesterSeed)
	lease := vector(t, "lease").(*pb.Lease)
	zeroEpoch := proto.Clone(lease).(*pb.Lease)
	zeroEpoch.Epoch = 0
	if _, err := OpenLease(seal(t, reqKey, zeroEpoch), vectorTime); !errors.Is(err, ErrMalformed) {
		t.Errorf("epoch 0: got %v, want malformed", err)
	}
	if _, err := OpenLease(seal(t, reqKey, lease), FromUnixMs(lease.ExpiresAtMs)); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: got %v, want expired", err)
	}
	if err := CheckEpoch(2, 1); !errors.Is(err, ErrStaleEpoch) {
		t.Errorf("CheckEpoch(2, 1) = %v, want stale epoch", err)
	}
	if err := CheckEpoch(2, 2); err != nil {
		t.Errorf("CheckEpoch(2, 2) = %v", err)
	}
}

func TestReplayCache(t *testing.T) {
	now := vectorTime
	c := NewReplayCache(2)
	n1, n2, n3 := fill(1, NonceSize), fill(2, NonceSize), fill(3, NonceSize)
	exp := UnixMs(now.Add(time.Minute))
	if err := c.Check(n1, exp, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(n1, exp, now); !errors.Is(err, ErrReplayed) {
		t.Fatalf("second use: got %v, want replayed", err)
	}
	if err := c.Check(n2, UnixMs(now), now); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired nonce: got %v, want expired", err)
	}
	if err := c.Check(n2, exp+1, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(n3, exp, now); CodeOf(err) != pb.Code_CODE_RATE_LIMITED {
		t.Fatalf("full cache: got %v, want rate limited", err)
	}
	if err := c.Check([]byte{1}, exp, now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short nonce: got %v, want malformed", err)
	}
	// Once n1 expires it is forgotten, which frees room, and replaying it is
	// refused as expired rather than accepted.
	later := FromUnixMs(exp)
	if err := c.Check(n1, exp, later); !errors.Is(err, ErrExpired) {
		t.Fatalf("replay after expiry: got %v, want expired", err)
	}
	if err := c.Check(n3, exp+60_000, later); err != nil {
		t.Fatalf("after pruning: %v", err)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
}

func TestErrorWireRoundTrip(t *testing.T) {
	err := Errorf(pb.Code_CODE_PRICE_ABOVE_CEILING, "total %d > %d", 3, 2)
	back := FromPB(ToPB(err))
	if !errors.Is(back, &Error{Code: pb.Code_CODE_PRICE_ABOVE_CEILING}) || back.Error() != err.Error() {
		t.Fatalf("round trip: %v", back)
	}
	if got := CodeOf(errors.New("plain")); got != pb.Code_CODE_INTERNAL {
		t.Fatalf("CodeOf(plain) = %v", got)
	}
	if ToPB(nil) != nil || FromPB(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}
