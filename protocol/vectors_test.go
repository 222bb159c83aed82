package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cuivre/cuivre/protocol/pb"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the code")

// Fixed test identities (SPEC 12): Ed25519 keys from the seeds 32 x 0x01 (the
// provider) and 32 x 0x02 (the requester, who is also the customer).
var (
	providerSeed  = bytes.Repeat([]byte{0x01}, ed25519.SeedSize)
	requesterSeed = bytes.Repeat([]byte{0x02}, ed25519.SeedSize)
)

func testKey(t testing.TB, seed []byte) (crypto.PrivKey, peer.ID) {
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

// vectorTime is the fixed "now" of the vectors: 2026-01-01T00:00:00Z.
var vectorTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fill(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// vectorMessages returns one fully populated value of every message, keyed by a
// stable name. The records among them are signed by records().
func vectorMessages(t testing.TB) []namedMsg {
	provKey, prov := testKey(t, providerSeed)
	reqKey, req := testKey(t, requesterSeed)
	sealed := func(key crypto.PrivKey, msg proto.Message) []byte {
		b, err := Seal(key, msg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := UnixMs(vectorTime)
	module := SumCID([]byte("\x00asm\x01\x00\x00\x00")).Bytes()
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
		},
		Constraints: constraints,
		Affinities:  []*pb.Affinity{{Key: "certification", Op: pb.Operator_OPERATOR_EXISTS, Weight: 40}},
		Spread:      []*pb.Spread{{Attribute: "operator", Weight: 100}},
		MaxPrice:    &pb.Amount{Currency: "EUR", Nanos: 50_000_000},
		Nonce:       fill(0x10, NonceSize),
	}
	jobCID, err := JobCID(job)
	if err != nil {
		t.Fatal(err)
	}
	total, err := Cost(res, price, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leaseID := fill(0x20, LeaseIDSize)
	errMsg := &pb.Error{Code: pb.Code_CODE_INSUFFICIENT_MEMORY, Message: "128 MiB asked, 64 MiB free", RetryAfterMs: 5000}
	status := &pb.Status{LeaseId: leaseID, Epoch: 1, State: pb.LeaseState_LEASE_STATE_RUNNING, Seq: 3, AtMs: now + 2000, Used: res, Message: "running"}
	logc := &pb.LogChunk{LeaseId: leaseID, Epoch: 1, Stream: pb.LogStream_LOG_STREAM_STDOUT, Offset: 0, Data: []byte("bonjour world\n")}
	receipt := &pb.UsageReceipt{
		LeaseId: leaseID, Epoch: 1, Provider: []byte(prov), Requester: []byte(req), JobCid: jobCID.Bytes(),
		Reserved: res, StartedAtMs: now + 1000, EndedAtMs: now + 1500, Price: price,
		Amount: mustCost(t, res, price, 500*time.Millisecond), OutputCid: SumCID([]byte("output")).Bytes(),
		EgressBytes: 14, Nonce: fill(0x50, NonceSize),
	}
	result := &pb.Result{
		LeaseId: leaseID, Epoch: 1, State: pb.LeaseState_LEASE_STATE_SUCCEEDED, ExitCode: 0,
		OutputCid: receipt.OutputCid, StdoutCid: SumCID(logc.Data).Bytes(), StderrCid: SumCID(nil).Bytes(),
		StartedAtMs: now + 1000, EndedAtMs: now + 1500,
	}
	offer := &pb.Offer{
		Provider: []byte(prov), Requester: []byte(req), RequestNonce: fill(0x30, NonceSize), Nonce: fill(0x31, NonceSize),
		JobCid: jobCID.Bytes(), Resources: res, Price: price, Total: total, ExpiresAtMs: now + 60_000,
		LoadPermille: 250, Labels: labels,
	}
	lease := &pb.Lease{
		LeaseId: leaseID, Provider: []byte(prov), Requester: []byte(req), OfferNonce: offer.Nonce,
		JobCid: jobCID.Bytes(), Epoch: 1, Nonce: fill(0x40, NonceSize), ExpiresAtMs: now + 60_000,
		Job: sealed(reqKey, job), HeartbeatMs: 1000,
	}
	receiptEnv := sealed(provKey, receipt)
	receiptHash := sha256.Sum256(receiptEnv)
	countersig := &pb.Countersignature{ReceiptHash: receiptHash[:], Requester: []byte(req), SignedAtMs: now + 2000}
	result.Receipt = receiptEnv
	return []namedMsg{
		{"resources", res},
		{"price", price},
		{"amount", total},
		{"label", labels[0]},
		{"constraint", constraints[1]},
		{"job", job},
		{"capacity_record", &pb.CapacityRecord{
			Provider: []byte(prov), Seq: 7, IssuedAtMs: now, ExpiresAtMs: now + 30*60_000,
			Total: &pb.Resources{CpuMillis: 16_000, MemoryBytes: 64 << 30, ScratchBytes: 500 << 30},
			Free:  &pb.Resources{CpuMillis: 12_000, MemoryBytes: 48 << 30, ScratchBytes: 400 << 30},
			Price: price, Labels: labels, Executors: []string{"wasm"},
			Addrs: [][]byte{{0x04, 127, 0, 0, 1, 0x91, 0x02, 0x1f, 0x90, 0xcc, 0x03}}, // /ip4/127.0.0.1/udp/8080/quic-v1
		}},
		{"offer_request", &pb.OfferRequest{
			Nonce: fill(0x30, NonceSize), JobCid: jobCID.Bytes(), Executor: "wasm", Resources: res,
			TimeoutMs: 30_000, Constraints: constraints, MaxPrice: job.MaxPrice, ExpiresAtMs: now + 2000,
		}},
		{"offer_response_refusal", &pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: errMsg}}},
		{"offer", offer},
		{"offer_response_offer", &pb.OfferResponse{Result: &pb.OfferResponse_Offer{Offer: sealed(provKey, offer)}}},
		{"lease", lease},
		{"lease_request_lease", &pb.LeaseRequest{Kind: &pb.LeaseRequest_Lease{Lease: sealed(reqKey, lease)}}},
		{"lease_request_decline", &pb.LeaseRequest{Kind: &pb.LeaseRequest_Decline{Decline: &pb.Decline{OfferNonce: fill(0x31, NonceSize), JobCid: jobCID.Bytes()}}}},
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
		{"error", errMsg},
	}
}

func mustCost(t testing.TB, res *pb.Resources, p *pb.Price, d time.Duration) *pb.Amount {
	a, err := Cost(res, p, d)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type namedMsg struct {
	name string
	msg  proto.Message
}

// The file format of testdata/vectors.json (SPEC 12).
type vectorFile struct {
	Comment       string         `json:"comment"`
	ProviderSeed  string         `json:"provider_seed"`
	ProviderID    string         `json:"provider_peer_id"`
	RequesterSeed string         `json:"requester_seed"`
	RequesterID   string         `json:"requester_peer_id"`
	Messages      []vectorMsg    `json:"messages"`
	Records       []vectorRecord `json:"records"`
	FacetKeys     []vectorFacet  `json:"facet_keys"`
	JobCID        string         `json:"job_cid"`
}

type vectorMsg struct {
	Name string `json:"name"`
	Type string `json:"type"` // full protobuf name
	Hex  string `json:"hex"`
}

type vectorRecord struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Domain      string `json:"domain"`
	PayloadType string `json:"payload_type"`
	Signer      string `json:"signer"`
	PayloadHex  string `json:"payload_hex"`
	Envelope    string `json:"envelope_hex"`
}

type vectorFacet struct {
	Key   string `json:"key"`
	CID   string `json:"cid"`
	Shard uint32 `json:"provider_shard"` // ShardOf(facet, provider)
}

// buildVectors computes the vector file from the code.
func buildVectors(t testing.TB) vectorFile {
	provKey, prov := testKey(t, providerSeed)
	reqKey, req := testKey(t, requesterSeed)
	v := vectorFile{
		Comment:       "cuivre protocol v1 test vectors; see SPEC.md section 12. Regenerate with: go test ./protocol -run TestVectors -update",
		ProviderSeed:  hex.EncodeToString(providerSeed),
		ProviderID:    prov.String(),
		RequesterSeed: hex.EncodeToString(requesterSeed),
		RequesterID:   req.String(),
	}
	for _, m := range vectorMessages(t) {
		b, err := Canonical(m.msg)
		if err != nil {
			t.Fatal(err)
		}
		v.Messages = append(v.Messages, vectorMsg{m.name, string(m.msg.ProtoReflect().Descriptor().FullName()), hex.EncodeToString(b)})
		k := KindOf(m.msg)
		if k == 0 {
			continue
		}
		key, signer := provKey, prov
		if k == KindLease || k == KindCountersignature || k == KindJob {
			key, signer = reqKey, req
		}
		env, err := Seal(key, m.msg)
		if err != nil {
			t.Fatal(err)
		}
		v.Records = append(v.Records, vectorRecord{
			Name: m.name, Kind: k.String(), Domain: k.Domain(), PayloadType: hex.EncodeToString(k.PayloadType()),
			Signer: signer.String(), PayloadHex: hex.EncodeToString(b), Envelope: hex.EncodeToString(env),
		})
		if k == KindJob {
			c, err := JobCID(m.msg.(*pb.Job))
			if err != nil {
				t.Fatal(err)
			}
			v.JobCID = c.String()
		}
	}
	for _, f := range Facets() {
		value := map[Facet]string{FacetRegion: "fr-par", FacetJurisdiction: "fr", FacetExecutor: "wasm", FacetCertification: "secnumcloud", FacetSize: "m"}[f]
		k, err := NewFacetKey(f, value, 7)
		if err != nil {
			t.Fatal(err)
		}
		v.FacetKeys = append(v.FacetKeys, vectorFacet{Key: k.String(), CID: k.CID().String(), Shard: ShardOf(f, string(prov))})
	}
	return v
}

const vectorPath = "testdata/vectors.json"

// TestVectors checks the code against the byte-exact vectors, in both directions:
// what the code encodes equals the file, and what the file holds decodes,
// re-encodes to the same bytes, and verifies.
func TestVectors(t *testing.T) {
	got := buildVectors(t)
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatalf("%v (run go test ./protocol -run TestVectors -update)", err)
	}
	var want vectorFile
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("encoding differs from %s (-file +code):\n%s", vectorPath, diff)
	}

	for _, m := range want.Messages {
		t.Run("decode/"+m.Name, func(t *testing.T) {
			b := mustHex(t, m.Hex)
			mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(m.Type))
			if err != nil {
				t.Fatal(err)
			}
			msg := mt.New().Interface()
			if err := proto.Unmarshal(b, msg); err != nil {
				t.Fatal(err)
			}
			again, err := Canonical(msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs:\n got %x\nwant %x", again, b)
			}
		})
	}
	for _, r := range want.Records {
		t.Run("open/"+r.Name, func(t *testing.T) {
			env := mustHex(t, r.Envelope)
			mt, _ := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("cuivre.v1." + map[string]string{
				"offer": "Offer", "lease": "Lease", "receipt": "UsageReceipt", "countersignature": "Countersignature",
				"capacity": "CapacityRecord", "job": "Job",
			}[r.Kind]))
			if mt == nil {
				t.Fatalf("unknown kind %q", r.Kind)
			}
			msg := mt.New().Interface()
			signer, payload, err := Open(env, msg)
			if err != nil {
				t.Fatal(err)
			}
			if signer.String() != r.Signer {
				t.Errorf("signer %s, want %s", signer, r.Signer)
			}
			if hex.EncodeToString(payload) != r.PayloadHex {
				t.Errorf("payload differs")
			}
		})
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
