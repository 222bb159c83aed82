package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	p2precord "github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Kind is a type of signed record (SPEC 3). Each kind has its own signing domain
// and payload type, so a signature made for one kind never verifies as another.
type Kind uint8

// The record kinds.
const (
	KindOffer Kind = iota + 1
	KindLease
	KindReceipt
	KindCountersignature
	KindCapacity
	KindJob
	KindTariff
	KindGrant
	KindWithdrawal
	KindRelease
)

var kinds = [...]struct {
	name, domain string
	codec        uint64 // multicodec private-use range
}{
	KindOffer:            {"offer", "cuivre-offer", 0x3c0001},
	KindLease:            {"lease", "cuivre-lease", 0x3c0002},
	KindReceipt:          {"receipt", "cuivre-receipt", 0x3c0003},
	KindCountersignature: {"countersignature", "cuivre-countersignature", 0x3c0004},
	KindCapacity:         {"capacity", "cuivre-capacity", 0x3c0005},
	KindJob:              {"job", "cuivre-job", 0x3c0006},
	KindTariff:           {"tariff", "cuivre-tariff", 0x3c0007},
	KindGrant:            {"grant", "cuivre-grant", 0x3c0008},
	KindWithdrawal:       {"withdrawal", "cuivre-withdrawal", 0x3c0009},
	KindRelease:          {"release", "cuivre-release", 0x3c000a},
}

// Kinds lists every record kind, in code order.
func Kinds() []Kind {
	return []Kind{KindOffer, KindLease, KindReceipt, KindCountersignature, KindCapacity, KindJob, KindTariff, KindGrant, KindWithdrawal, KindRelease}
}

func (k Kind) valid() bool { return k >= KindOffer && k <= KindRelease }

func (k Kind) String() string {
	if !k.valid() {
		return fmt.Sprintf("kind(%d)", uint8(k))
	}
	return kinds[k].name
}

// Domain is the envelope signing domain of the kind.
func (k Kind) Domain() string { return kinds[k].domain }

// PayloadType is the envelope payload type of the kind: the unsigned varint of
// its multicodec code.
func (k Kind) PayloadType() []byte { return binary.AppendUvarint(nil, kinds[k].codec) }

// KindOf returns the record kind of a message, or 0 if it is not a record.
func KindOf(msg proto.Message) Kind {
	switch msg.(type) {
	case *pb.Offer:
		return KindOffer
	case *pb.Lease:
		return KindLease
	case *pb.UsageReceipt:
		return KindReceipt
	case *pb.Countersignature:
		return KindCountersignature
	case *pb.CapacityRecord:
		return KindCapacity
	case *pb.Job:
		return KindJob
	case *pb.WholesaleTariff:
		return KindTariff
	case *pb.SliceGrant:
		return KindGrant
	case *pb.SliceWithdrawal:
		return KindWithdrawal
	case *pb.SliceRelease:
		return KindRelease
	}
	return 0
}

// envelopeRecord adapts a message to go-libp2p's record.Record (p2precord).
type envelopeRecord struct {
	kind Kind
	msg  proto.Message
}

func (r envelopeRecord) Domain() string                 { return r.kind.Domain() }
func (r envelopeRecord) Codec() []byte                  { return r.kind.PayloadType() }
func (r envelopeRecord) MarshalRecord() ([]byte, error) { return protocol.Canonical(r.msg) }
func (r envelopeRecord) UnmarshalRecord(b []byte) error { return proto.Unmarshal(b, r.msg) }

// Seal signs msg, which must be one of the record messages, with key and returns
// the marshalled envelope. Only Ed25519 keys are accepted (SPEC 3.1).
func Seal(key crypto.PrivKey, msg proto.Message) ([]byte, error) {
	k := KindOf(msg)
	if !k.valid() {
		return nil, fmt.Errorf("seal %T: not a record type", msg)
	}
	if key.Type() != cryptopb.KeyType_Ed25519 {
		return nil, fmt.Errorf("seal %s: key type %s, want Ed25519", k, key.Type())
	}
	payload, err := protocol.Canonical(msg)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", k, err)
	}
	return sealBytes(key, k, payload)
}

// sealBytes seals an encoded payload under a kind's domain.
func sealBytes(key crypto.PrivKey, k Kind, payload []byte) ([]byte, error) {
	env, err := p2precord.Seal(rawRecord{k, payload}, key)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", k, err)
	}
	return env.Marshal()
}

// rawRecord is an already encoded payload, for sealing.
type rawRecord struct {
	kind    Kind
	payload []byte
}

func (r rawRecord) Domain() string                 { return r.kind.Domain() }
func (r rawRecord) Codec() []byte                  { return r.kind.PayloadType() }
func (r rawRecord) MarshalRecord() ([]byte, error) { return r.payload, nil }
func (r rawRecord) UnmarshalRecord([]byte) error   { return errors.New("rawRecord is seal-only") }

// Open verifies a sealed envelope of msg's kind, unmarshals its payload into msg
// and returns the signer and the raw payload. Errors are typed: ErrMalformed,
// ErrBadSignature, or ErrWrongDomain when the envelope verifies under the domain
// of another kind.
func Open(data []byte, msg proto.Message) (peer.ID, []byte, error) {
	k := KindOf(msg)
	if !k.valid() {
		return "", nil, fmt.Errorf("open %T: not a record type", msg)
	}
	env, err := p2precord.ConsumeTypedEnvelope(data, envelopeRecord{k, msg})
	if err != nil {
		return "", nil, classifyOpenError(k, data, env, err)
	}
	if env.PublicKey.Type() != cryptopb.KeyType_Ed25519 {
		return "", nil, protocol.Errorf(protocol.CodeBadSignature, "%s signed with a %s key, want Ed25519", k, env.PublicKey.Type())
	}
	if !bytes.Equal(env.PayloadType, k.PayloadType()) {
		return "", nil, protocol.Errorf(protocol.CodeWrongDomain, "payload type %x is not a %s", env.PayloadType, k)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return "", nil, protocol.Errorf(protocol.CodeBadSignature, "%s signer: %v", k, err)
	}
	return signer, env.RawPayload, nil
}

func classifyOpenError(k Kind, data []byte, env *p2precord.Envelope, err error) error {
	if env == nil {
		return protocol.Errorf(protocol.CodeMalformed, "%s envelope: %v", k, err)
	}
	if !errors.Is(err, p2precord.ErrInvalidSignature) {
		if errors.Is(err, proto.Error) {
			return protocol.Errorf(protocol.CodeMalformed, "%s payload: %v", k, err)
		}
		return protocol.Errorf(protocol.CodeBadSignature, "%s envelope: %v", k, err)
	}
	// The signature fails under this kind's domain; say so precisely when it
	// holds under another kind's, which is a record used out of its place.
	for _, other := range Kinds() {
		if other == k {
			continue
		}
		_, oerr := p2precord.ConsumeTypedEnvelope(data, probeRecord{other})
		if errors.Is(oerr, errVerified) {
			return protocol.Errorf(protocol.CodeWrongDomain, "%s record presented as %s", other, k)
		}
	}
	return protocol.Errorf(protocol.CodeBadSignature, "%s signature does not verify", k)
}

// probeRecord verifies an envelope under a kind's domain and stops there.
type probeRecord struct{ kind Kind }

var errVerified = errors.New("verified")

func (r probeRecord) Domain() string                 { return r.kind.Domain() }
func (r probeRecord) Codec() []byte                  { return r.kind.PayloadType() }
func (r probeRecord) MarshalRecord() ([]byte, error) { return nil, errVerified }
func (r probeRecord) UnmarshalRecord([]byte) error   { return errVerified }

func checkSize(what string, b []byte, n int) error {
	if len(b) != n {
		return protocol.Errorf(protocol.CodeMalformed, "%s is %d bytes, want %d", what, len(b), n)
	}
	return nil
}

func checkSigner(k Kind, signer peer.ID, claimed []byte) error {
	if string(claimed) != string(signer) {
		id, err := peer.IDFromBytes(claimed)
		if err != nil {
			return protocol.Errorf(protocol.CodeMalformed, "%s names an invalid peer ID", k)
		}
		return protocol.Errorf(protocol.CodeWrongSigner, "%s signed by %s, claims %s", k, signer, id)
	}
	return nil
}

// OpenOffer opens a sealed Offer: signed by its provider, nonces well formed,
// live at now within protocol.MaxOfferTTL. Replay is the caller's check (ReplayCache).
func OpenOffer(data []byte, now time.Time) (*pb.Offer, error) {
	o := new(pb.Offer)
	signer, _, err := Open(data, o)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindOffer, signer, o.Provider); err != nil {
		return nil, err
	}
	if err := checkSize("offer nonce", o.Nonce, protocol.NonceSize); err != nil {
		return nil, err
	}
	if err := protocol.CheckExpiry(now, o.ExpiresAtMs, protocol.MaxOfferTTL); err != nil {
		return nil, fmt.Errorf("offer: %w", err)
	}
	return o, nil
}

// OpenLease opens a sealed Lease: signed by its requester, IDs well formed, epoch
// at least 1, live at now within protocol.MaxLeaseTTL. The job inside is not opened here:
// call OpenJob on Lease.Job and compare its CID with Lease.JobCid.
func OpenLease(data []byte, now time.Time) (*pb.Lease, error) {
	l := new(pb.Lease)
	signer, _, err := Open(data, l)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindLease, signer, l.Requester); err != nil {
		return nil, err
	}
	if err := checkSize("lease id", l.LeaseId, protocol.LeaseIDSize); err != nil {
		return nil, err
	}
	if err := checkSize("lease nonce", l.Nonce, protocol.NonceSize); err != nil {
		return nil, err
	}
	if l.Epoch == 0 {
		return nil, protocol.Errorf(protocol.CodeMalformed, "lease epoch is 0, epochs start at 1")
	}
	if err := protocol.CheckExpiry(now, l.ExpiresAtMs, protocol.MaxLeaseTTL); err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	return l, nil
}

// OpenReceipt opens a sealed UsageReceipt signed by its provider.
func OpenReceipt(data []byte) (*pb.UsageReceipt, error) {
	r := new(pb.UsageReceipt)
	signer, _, err := Open(data, r)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindReceipt, signer, r.Provider); err != nil {
		return nil, err
	}
	if err := checkSize("receipt nonce", r.Nonce, protocol.NonceSize); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenCountersignature opens a sealed Countersignature signed by its requester.
func OpenCountersignature(data []byte) (*pb.Countersignature, error) {
	c := new(pb.Countersignature)
	signer, _, err := Open(data, c)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindCountersignature, signer, c.Requester); err != nil {
		return nil, err
	}
	if err := checkSize("receipt hash", c.ReceiptHash, 32); err != nil {
		return nil, err
	}
	return c, nil
}

// OpenCapacity opens a sealed CapacityRecord signed by its provider and live at
// now within protocol.MaxCapacityTTL.
func OpenCapacity(data []byte, now time.Time) (*pb.CapacityRecord, error) {
	c := new(pb.CapacityRecord)
	signer, _, err := Open(data, c)
	if err != nil {
		return nil, err
	}
	if err := checkSigner(KindCapacity, signer, c.Provider); err != nil {
		return nil, err
	}
	if err := protocol.CheckExpiry(now, c.ExpiresAtMs, protocol.MaxCapacityTTL); err != nil {
		return nil, fmt.Errorf("capacity: %w", err)
	}
	return c, nil
}
