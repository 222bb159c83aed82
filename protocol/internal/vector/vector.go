// Package vector, in the protocol room, holds the fixed messages, keys and
// time of the test vectors (SPEC 12), for the tests of the protocol packages:
// protocol/testdata/vectors.json is made from them.
package vector

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// Fixed test identities (SPEC 12): Ed25519 keys from the seeds 32 x 0x01 (the
// provider) and 32 x 0x02 (the requester, who is also the customer).
var (
	ProviderSeed  = bytes.Repeat([]byte{0x01}, ed25519.SeedSize)
	RequesterSeed = bytes.Repeat([]byte{0x02}, ed25519.SeedSize)
)

// Key returns the Ed25519 key of a seed and its peer ID.

// SoldCapacity is what the test provider sells in all: its capacity
// record's total and its offer's capacity; 4 presences in each facet (SPEC 4.3).
var SoldCapacity = &pb.Resources{CpuMillis: 16_000, MemoryBytes: 64 << 30, ScratchBytes: 500 << 30}

func Key(t testing.TB, seed []byte) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// Time is the fixed "now" of the vectors: 2026-01-01T00:00:00Z.
var Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Fill returns n bytes b.
func Fill(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// Messages returns one fully populated value of every message, with a stable
// name, in the order of the vector file. The records among them are signed by
// their Signer.
func Messages(t testing.TB) []Msg {
	provKey, prov := Key(t, ProviderSeed)
	reqKey, req := Key(t, RequesterSeed)
	sealed := func(key crypto.PrivKey, msg proto.Message) []byte {
		b, err := record.Seal(key, msg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := protocol.UnixMs(Time)
	module := wire.SumCID([]byte("\x00asm\x01\x00\x00\x00")).Bytes()
	// A dag-pb root, as of a UnixFS directory.
	input := cid.NewCidV1(cid.DagProtobuf, wire.SumCID([]byte("corpus")).Hash())
	output := cid.NewCidV1(cid.DagProtobuf, wire.SumCID([]byte("output")).Hash())
	res := &pb.Resources{CpuMillis: 500, MemoryBytes: 128 << 20, ScratchBytes: 64 << 20}
	price := &pb.Price{Currency: "EUR", CpuNanosPerSecond: 11_000, MemoryNanosPerGibSecond: 1_500, EgressNanosPerGib: 10_000_000}
	labels := []*pb.Label{{Key: "jurisdiction", Value: "fr"}, {Key: "operator", Value: "acme"}, {Key: "region", Value: "fr-par"}}
	constraints := []*pb.Constraint{
		{Key: "jurisdiction", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"fr"}},
		{Key: "region", Op: pb.Operator_OPERATOR_IN, Values: []string{"be-bru", "fr-par"}},
	}
	job := &pb.Job{
		Version: 1, Name: "hello", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task: &pb.Task{
			Engine: "wasm", ModuleCid: module, Args: []string{"--name", "world"},
			Env:   []*pb.EnvVar{{Name: "GREETING", Value: "bonjour"}},
			Stdin: []byte("stdin\n"), Resources: res, TimeoutMs: 30_000,
			Inputs:  []*pb.Input{{Path: "corpus", Cid: input.Bytes(), Size: 1 << 20}},
			Outputs: []string{"words.txt"},
		},
		Constraints: constraints,
		Affinities:  []*pb.Affinity{{Key: "certification", Op: pb.Operator_OPERATOR_EXISTS, Weight: 40}},
		Spread:      []*pb.Spread{{Attribute: "operator", Weight: 100}},
		MaxPrice:    &pb.Amount{Currency: "EUR", Nanos: 50_000_000},
		Nonce:       Fill(0x10, protocol.NonceSize),
	}
	jobCID, err := wire.JobCID(job)
	if err != nil {
		t.Fatal(err)
	}
	total, err := protocol.Cost(res, price, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leaseID := Fill(0x20, protocol.LeaseIDSize)
	errMsg := &pb.Error{Code: pb.Code_CODE_INSUFFICIENT_MEMORY, Message: "128 MiB asked, 64 MiB free", RetryAfterMs: 5000}
	status := &pb.Status{LeaseId: leaseID, Epoch: 1, State: pb.LeaseState_LEASE_STATE_RUNNING, Seq: 3, AtMs: now + 2000, Used: res, Message: "running"}
	logc := &pb.LogChunk{LeaseId: leaseID, Epoch: 1, Stream: pb.LogStream_LOG_STREAM_STDOUT, Offset: 0, Data: []byte("bonjour world\n")}
	receipt := &pb.UsageReceipt{
		LeaseId: leaseID, Epoch: 1, Provider: []byte(prov), Requester: []byte(req), JobCid: jobCID.Bytes(),
		Reserved: res, StartedAtMs: now + 1000, EndedAtMs: now + 1500, Price: price,
		Amount: mustCost(t, res, price, 500*time.Millisecond), OutputCid: output.Bytes(),
		EgressBytes: 14, OutputSize: 42, Nonce: Fill(0x50, protocol.NonceSize),
	}
	result := &pb.Result{
		LeaseId: leaseID, Epoch: 1, State: pb.LeaseState_LEASE_STATE_SUCCEEDED, ExitCode: 0,
		OutputCid: receipt.OutputCid, StdoutCid: wire.SumCID(logc.Data).Bytes(), StderrCid: wire.SumCID(nil).Bytes(),
		StartedAtMs: now + 1000, EndedAtMs: now + 1500, OutputSize: receipt.OutputSize,
	}
	offer := &pb.Offer{
		Provider: []byte(prov), Requester: []byte(req), RequestNonce: Fill(0x30, protocol.NonceSize), Nonce: Fill(0x31, protocol.NonceSize),
		JobCid: jobCID.Bytes(), Resources: res, Price: price, Total: total, ExpiresAtMs: now + 60_000,
		LoadPermille: 250, Labels: labels, Capacity: SoldCapacity,
	}
	lease := &pb.Lease{
		LeaseId: leaseID, Provider: []byte(prov), Requester: []byte(req), OfferNonce: offer.Nonce,
		JobCid: jobCID.Bytes(), Epoch: 1, Nonce: Fill(0x40, protocol.NonceSize), ExpiresAtMs: now + 60_000,
		Job: sealed(reqKey, job), HeartbeatMs: 1000,
	}
	receiptEnv := sealed(provKey, receipt)
	receiptHash := sha256.Sum256(receiptEnv)
	countersig := &pb.Countersignature{ReceiptHash: receiptHash[:], Requester: []byte(req), SignedAtMs: now + 2000}
	result.Receipt = receiptEnv
	// Wholesale (SPEC 4.5, 6.7): the provider is the site, the requester the
	// retailer it grants a slice to.
	tariff := &pb.WholesaleTariff{
		Site: []byte(prov), Seq: 3, IssuedAtMs: now, ExpiresAtMs: now + 12*3600_000,
		Price:       &pb.Price{Currency: "EUR", CpuNanosPerSecond: 6_000, MemoryNanosPerGibSecond: 800, EgressNanosPerGib: 5_000_000},
		MinSlice:    &pb.Resources{CpuMillis: 4_000, MemoryBytes: 8 << 30, ScratchBytes: 16 << 30},
		MinPeriodMs: 24 * 3600_000, NoticeMs: 7 * 24 * 3600_000,
		Capacity: &pb.Resources{CpuMillis: 256_000, MemoryBytes: 1 << 40, ScratchBytes: 10 << 40},
		Labels:   []*pb.Label{{Key: "certification", Value: "secnumcloud"}, {Key: "jurisdiction", Value: "fr"}, {Key: "region", Value: "fr-par"}},
	}
	tariffEnv := sealed(provKey, tariff)
	slice := &pb.Resources{CpuMillis: 16_000, MemoryBytes: 64 << 30, ScratchBytes: 100 << 30}
	sliceReq := &pb.SliceRequest{
		Nonce: Fill(0x61, protocol.NonceSize), Site: []byte(prov), TariffHash: record.TariffHash(tariffEnv),
		Resources: slice, StartAtMs: now + 60_000, EndAtMs: now + 60_000 + 30*24*3600_000,
	}
	grant := &pb.SliceGrant{
		Site: []byte(prov), Grantee: []byte(req), GrantId: Fill(0x60, protocol.GrantIDSize), RequestNonce: sliceReq.Nonce,
		TariffHash: sliceReq.TariffHash, Resources: slice, StartAtMs: sliceReq.StartAtMs, EndAtMs: sliceReq.EndAtMs,
		Price: tariff.Price, NoticeMs: tariff.NoticeMs, IssuedAtMs: now,
	}
	withdrawal := &pb.SliceWithdrawal{
		Site: []byte(prov), Grantee: []byte(req), GrantId: grant.GrantId,
		IssuedAtMs: now + 24*3600_000, EndAtMs: now + 24*3600_000 + tariff.NoticeMs,
	}
	release := &pb.SliceRelease{
		Site: []byte(prov), Grantee: []byte(req), GrantId: grant.GrantId,
		IssuedAtMs: now + 2*24*3600_000, EndAtMs: now + 2*24*3600_000 + tariff.NoticeMs,
	}
	rent := &pb.UsageReceipt{LeaseId: grant.GrantId, Epoch: 1, Provider: []byte(prov), Requester: []byte(req), Reserved: slice,
		StartedAtMs: grant.StartAtMs, EndedAtMs: grant.StartAtMs + 24*3600_000, Price: tariff.Price, OnSlice: true, Nonce: Fill(0x62, protocol.NonceSize)}
	rent.Amount = mustCost(t, slice, tariff.Price, 24*time.Hour)
	return []Msg{
		{"resources", res},
		{"price", price},
		{"amount", total},
		{"label", labels[0]},
		{"constraint", constraints[1]},
		{"job", job},
		{"capacity_record", &pb.CapacityRecord{
			Provider: []byte(prov), Seq: 7, IssuedAtMs: now, ExpiresAtMs: now + 30*60_000,
			Total: SoldCapacity,
			Free:  &pb.Resources{CpuMillis: 12_000, MemoryBytes: 48 << 30, ScratchBytes: 400 << 30},
			Price: price, Labels: labels, Executors: []string{"wasm"},
			Addrs: [][]byte{{0x04, 127, 0, 0, 1, 0x91, 0x02, 0x1f, 0x90, 0xcc, 0x03}}, // /ip4/127.0.0.1/udp/8080/quic-v1
		}},
		{"offer_request", &pb.OfferRequest{
			Nonce: Fill(0x30, protocol.NonceSize), JobCid: jobCID.Bytes(), Executor: "wasm", Resources: res,
			TimeoutMs: 30_000, Constraints: constraints, MaxPrice: job.MaxPrice, ExpiresAtMs: now + 2000,
		}},
		{"offer_response_refusal", &pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: errMsg}}},
		{"offer", offer},
		{"offer_response_offer", &pb.OfferResponse{Result: &pb.OfferResponse_Offer{Offer: sealed(provKey, offer)}}},
		{"lease", lease},
		{"lease_request_lease", &pb.LeaseRequest{Kind: &pb.LeaseRequest_Lease{Lease: sealed(reqKey, lease)}}},
		{"lease_request_decline", &pb.LeaseRequest{Kind: &pb.LeaseRequest_Decline{Decline: &pb.Decline{OfferNonce: Fill(0x31, protocol.NonceSize), JobCid: jobCID.Bytes()}}}},
		{"lease_request_cancel", &pb.LeaseRequest{Kind: &pb.LeaseRequest_Cancel{Cancel: &pb.Cancel{LeaseId: leaseID, Epoch: 1}}}},
		{"lease_answer", &pb.LeaseAnswer{LeaseId: leaseID, Epoch: 1, Accepted: true}},
		{"watch_request", &pb.WatchRequest{LeaseId: leaseID, Epoch: 1, StdoutOffset: 0, StderrOffset: 0}},
		{"watch_event_status", &pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: status}}},
		{"watch_event_log", &pb.WatchEvent{Event: &pb.WatchEvent_Log{Log: logc}}},
		{"watch_event_result", &pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: result}}},
		{"watch_event_error", &pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: &pb.Error{Code: pb.Code_CODE_STALE_EPOCH, Message: "epoch 1 is older than 2"}}}},
		{"usage_receipt", receipt},
		{"countersignature", countersig},
		{"receipt_submit", &pb.ReceiptSubmit{Receipt: receiptEnv, Countersignature: sealed(reqKey, countersig)}},
		{"receipt_ack", &pb.ReceiptAck{Accepted: false, Error: &pb.Error{Code: pb.Code_CODE_STALE_EPOCH, Message: "epoch 1 is older than 2"}}},
		{"module_request", &pb.ModuleRequest{Cid: module, Offset: 0}},
		{"module_chunk", &pb.ModuleChunk{Size: 8, Offset: 0, Data: []byte("\x00asm\x01\x00\x00\x00"), Last: true}},
		{"block_request", &pb.BlockRequest{Cids: [][]byte{output.Bytes()}, Root: output.Bytes()}},
		{"block_response", &pb.BlockResponse{Cid: wire.SumCID([]byte("leaf")).Bytes(), Data: []byte("leaf")}},
		{"block_response_error", &pb.BlockResponse{Error: &pb.Error{Code: pb.Code_CODE_UNAUTHORIZED, Message: "root not granted to this peer"}}},
		{"error", errMsg},
		{"wholesale_tariff", tariff},
		{"slice_request", &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Slice{Slice: sliceReq}}},
		{"slice_grant", grant},
		{"wholesale_answer_grant", &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Grant{Grant: sealed(provKey, grant)}}},
		{"wholesale_answer_refusal", &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Refusal{Refusal: &pb.Error{
			Code: pb.Code_CODE_SLICE_FULL, Message: "16000m cpu asked, 8000m left to grant", RetryAfterMs: 3600_000}}}},
		{"slice_withdrawal", withdrawal},
		{"wholesale_request_withdrawal", &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Withdrawal{Withdrawal: sealed(provKey, withdrawal)}}},
		{"wholesale_answer_accepted", &pb.WholesaleAnswer{Result: &pb.WholesaleAnswer_Accepted{Accepted: true}}},
		{"slice_release", release},
		{"wholesale_request_release", &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Release{Release: sealed(reqKey, release)}}},
		{"wholesale_request_rent", &pb.WholesaleRequest{Kind: &pb.WholesaleRequest_Rent{Rent: sealed(provKey, rent)}}},
	}
}

// mustCost is protocol.Cost for the vectors, which cannot fail.
func mustCost(t testing.TB, res *pb.Resources, p *pb.Price, d time.Duration) *pb.Amount {
	a, err := protocol.Cost(res, p, d)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Msg is one message of the vectors and its name.
type Msg struct {
	Name string
	Msg  proto.Message
}

// Get returns a copy of the message of the vectors named name.
func Get(t testing.TB, name string) proto.Message {
	t.Helper()
	for _, m := range Messages(t) {
		if m.Name == name {
			return proto.Clone(m.Msg)
		}
	}
	t.Fatalf("no vector %q", name)
	return nil
}

// Signer returns the key that signs the records of a kind in the vectors,
// and its peer ID: the requester signs leases, countersignatures and jobs, the
// provider the rest.
func Signer(t testing.TB, k record.Kind) (crypto.PrivKey, peer.ID) {
	switch k {
	case record.KindLease, record.KindCountersignature, record.KindJob:
		return Key(t, RequesterSeed)
	}
	return Key(t, ProviderSeed)
}
