package protocol_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the code")

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
	// The shards the provider announces in when it sells what its capacity
	// record says (ProviderShards), and the weight a requester gives it
	// (SampleWeight).
	Shards []uint32 `json:"provider_shards"`
	Weight uint64   `json:"sample_weight"`
}

// buildVectors computes the vector file from the code.
func buildVectors(t testing.TB) vectorFile {
	_, prov := vector.Key(t, vector.ProviderSeed)
	_, req := vector.Key(t, vector.RequesterSeed)
	v := vectorFile{
		Comment:       "cuivre protocol v1 test vectors; see SPEC.md section 12. Regenerate with: go test ./protocol -run TestVectors -update",
		ProviderSeed:  hex.EncodeToString(vector.ProviderSeed),
		ProviderID:    prov.String(),
		RequesterSeed: hex.EncodeToString(vector.RequesterSeed),
		RequesterID:   req.String(),
	}
	for _, m := range vector.Messages(t) {
		b, err := protocol.Canonical(m.Msg)
		if err != nil {
			t.Fatal(err)
		}
		v.Messages = append(v.Messages, vectorMsg{m.Name, string(m.Msg.ProtoReflect().Descriptor().FullName()), hex.EncodeToString(b)})
		k := record.KindOf(m.Msg)
		if k == 0 {
			continue
		}
		key, signer := vector.Signer(t, k)
		env, err := record.Seal(key, m.Msg)
		if err != nil {
			t.Fatal(err)
		}
		v.Records = append(v.Records, vectorRecord{
			Name: m.Name, Kind: k.String(), Domain: k.Domain(), PayloadType: hex.EncodeToString(k.PayloadType()),
			Signer: signer.String(), PayloadHex: hex.EncodeToString(b), Envelope: hex.EncodeToString(env),
		})
		if k == record.KindJob {
			c, err := wire.JobCID(m.Msg.(*pb.Job))
			if err != nil {
				t.Fatal(err)
			}
			v.JobCID = c.String()
		}
	}
	for _, f := range protocol.Facets() {
		value := map[protocol.Facet]string{
			protocol.FacetRegion: "fr-par", protocol.FacetJurisdiction: "fr", protocol.FacetExecutor: "wasm",
			protocol.FacetCertification: "secnumcloud", protocol.FacetSize: "m", protocol.FacetWholesale: "fr",
		}[f]
		k, err := protocol.NewFacetKey(f, value, 7)
		if err != nil {
			t.Fatal(err)
		}
		cpu := vector.SoldCapacity.CpuMillis
		v.FacetKeys = append(v.FacetKeys, vectorFacet{Key: k.String(), CID: wire.FacetCID(k).String(), Shard: protocol.ShardOf(f, string(prov)),
			Shards: protocol.ProviderShards(f, string(prov), cpu), Weight: protocol.SampleWeight(f, cpu)})
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
			again, err := protocol.Canonical(msg)
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
				"capacity": "CapacityRecord", "job": "Job", "tariff": "WholesaleTariff", "grant": "SliceGrant",
				"withdrawal": "SliceWithdrawal", "release": "SliceRelease",
			}[r.Kind]))
			if mt == nil {
				t.Fatalf("unknown kind %q", r.Kind)
			}
			msg := mt.New().Interface()
			signer, payload, err := record.Open(env, msg)
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

// TestValidateJobVector checks that the job of the test vectors is valid.
func TestValidateJobVector(t *testing.T) {
	for _, m := range vector.Messages(t) {
		if j, ok := m.Msg.(*pb.Job); ok {
			if err := protocol.ValidateJob(j); err != nil {
				t.Fatalf("vector job: %v", err)
			}
			return
		}
	}
	t.Fatal("no job vector")
}
