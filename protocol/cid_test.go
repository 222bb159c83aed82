package protocol

import (
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// TestCheckCID checks the CID rule, which reads bytes without go-cid, against
// CIDs that go-cid makes.
func TestCheckCID(t *testing.T) {
	raw := rawCID("module")
	if len(raw) != CIDSize {
		t.Fatalf("a raw sha2-256 CIDv1 is %d bytes, CIDSize %d", len(raw), CIDSize)
	}
	h, err := mh.Sum([]byte("module"), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	sha3, err := mh.Sum([]byte("module"), mh.SHA3_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want string // "" for accepted
	}{
		{"raw sha2-256", raw, ""},
		{"empty", nil, "want CIDv1, raw codec, sha2-256"},
		{"dag-pb", cid.NewCidV1(cid.DagProtobuf, h).Bytes(), "want CIDv1, raw codec, sha2-256"},
		{"CIDv0", cid.NewCidV0(h).Bytes(), "want CIDv1, raw codec, sha2-256"},
		{"sha3-256", cid.NewCidV1(cid.Raw, sha3).Bytes(), "want CIDv1, raw codec, sha2-256"},
		{"not a CID", []byte("hello.wasm"), "want CIDv1, raw codec, sha2-256"},
		{"prefix only", raw[:4], "truncated at 4 of 36 bytes"},
		{"part of the prefix", raw[:2], "truncated at 2 of 36 bytes"},
		{"truncated digest", raw[:35], "truncated at 35 of 36 bytes"},
		{"trailing bytes", append(bytes.Clone(raw), 0, 0), "2 trailing bytes"},
	}
	for _, tt := range tests {
		err := CheckCID(tt.b)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want):
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}
