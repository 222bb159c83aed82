package record_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

func seal(t *testing.T, key crypto.PrivKey, msg proto.Message) []byte {
	t.Helper()
	b, err := record.Seal(key, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenErrorsAreTyped(t *testing.T) {
	provKey, _ := vector.Key(t, vector.ProviderSeed)
	reqKey, _ := vector.Key(t, vector.RequesterSeed)
	now := vector.Time
	offer := vector.Get(t, "offer").(*pb.Offer)
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
	if _, err := record.Seal(secpKey, offer); err == nil {
		t.Fatal("record.Seal accepted a secp256k1 key")
	}

	expired := proto.Clone(offer).(*pb.Offer)
	expired.ExpiresAtMs = protocol.UnixMs(now.Add(-time.Millisecond))
	ahead := proto.Clone(offer).(*pb.Offer)
	ahead.ExpiresAtMs = protocol.UnixMs(now.Add(protocol.MaxOfferTTL + protocol.ClockSkew + time.Second))
	shortNonce := proto.Clone(offer).(*pb.Offer)
	shortNonce.Nonce = []byte{1, 2, 3}

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"good", good, nil},
		{"empty", nil, protocol.ErrMalformed},
		{"garbage", []byte("\xff\xff\xff\xff not an envelope"), protocol.ErrMalformed},
		{"bad signature", badSig, protocol.ErrBadSignature},
		{"payload changed", otherPayload, protocol.ErrBadSignature},
		{"wrong domain: lease presented as offer", seal(t, reqKey, vector.Get(t, "lease")), protocol.ErrWrongDomain},
		{"wrong domain: receipt presented as offer", seal(t, provKey, vector.Get(t, "usage_receipt")), protocol.ErrWrongDomain},
		{"wrong signer", wrongSigner, protocol.ErrWrongSigner},
		{"expired", seal(t, provKey, expired), protocol.ErrExpired},
		{"too far ahead", seal(t, provKey, ahead), protocol.ErrTooFarAhead},
		{"short nonce", seal(t, provKey, shortNonce), protocol.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := record.OpenOffer(tt.data, now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("record.OpenOffer: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("record.OpenOffer: got %v (code %v), want %v", err, protocol.CodeOf(err), tt.want)
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
	provKey, _ := vector.Key(t, vector.ProviderSeed)
	reqKey, _ := vector.Key(t, vector.RequesterSeed)
	now := vector.Time
	open := map[record.Kind]func([]byte) error{
		record.KindOffer:            func(b []byte) error { _, err := record.OpenOffer(b, now); return err },
		record.KindLease:            func(b []byte) error { _, err := record.OpenLease(b, now); return err },
		record.KindReceipt:          func(b []byte) error { _, err := record.OpenReceipt(b); return err },
		record.KindCountersignature: func(b []byte) error { _, err := record.OpenCountersignature(b); return err },
		record.KindCapacity:         func(b []byte) error { _, err := record.OpenCapacity(b, now); return err },
		record.KindJob:              func(b []byte) error { _, err := record.OpenJob(b); return err },
		record.KindTariff:           func(b []byte) error { _, err := record.OpenTariff(b, now); return err },
		record.KindGrant:            func(b []byte) error { _, err := record.OpenGrant(b, now); return err },
		record.KindWithdrawal:       func(b []byte) error { _, err := record.OpenWithdrawal(b); return err },
		record.KindRelease:          func(b []byte) error { _, err := record.OpenRelease(b); return err },
	}
	signers := map[record.Kind]crypto.PrivKey{
		record.KindOffer: provKey, record.KindReceipt: provKey, record.KindCapacity: provKey,
		record.KindLease: reqKey, record.KindCountersignature: reqKey, record.KindJob: reqKey,
		record.KindTariff: provKey, record.KindGrant: provKey, record.KindWithdrawal: provKey,
		record.KindRelease: reqKey,
	}
	sealed := map[record.Kind][]byte{}
	for _, m := range vector.Messages(t) {
		if k := record.KindOf(m.Msg); k != 0 {
			sealed[k] = seal(t, signers[k], m.Msg)
		}
	}
	for _, k := range record.Kinds() {
		for _, as := range record.Kinds() {
			err := open[as](sealed[k])
			switch {
			case k == as && err != nil:
				t.Errorf("%s opened as itself: %v", k, err)
			case k != as && !errors.Is(err, protocol.ErrWrongDomain):
				t.Errorf("%s opened as %s: got %v, want wrong domain", k, as, err)
			}
		}
	}
}

func TestOpenLeaseChecks(t *testing.T) {
	reqKey, _ := vector.Key(t, vector.RequesterSeed)
	lease := vector.Get(t, "lease").(*pb.Lease)
	zeroEpoch := proto.Clone(lease).(*pb.Lease)
	zeroEpoch.Epoch = 0
	if _, err := record.OpenLease(seal(t, reqKey, zeroEpoch), vector.Time); !errors.Is(err, protocol.ErrMalformed) {
		t.Errorf("epoch 0: got %v, want malformed", err)
	}
	if _, err := record.OpenLease(seal(t, reqKey, lease), protocol.FromUnixMs(lease.ExpiresAtMs)); !errors.Is(err, protocol.ErrExpired) {
		t.Errorf("at expiry: got %v, want expired", err)
	}
}
