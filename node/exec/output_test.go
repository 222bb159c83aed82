package exec_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/protocol/wire"
)

// outputVectors are byte-exact encodings another implementation can check
// (SPEC Appendix A, output serialisation).
var outputVectors = []struct {
	name  string
	files []exec.File
	hex   string
	cid   string
}{
	{name: "empty", hex: "", cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
	{
		name:  "one file",
		files: []exec.File{{Path: "out.txt", Data: []byte("hi\n")}},
		hex:   "07" + hex.EncodeToString([]byte("out.txt")) + "03" + hex.EncodeToString([]byte("hi\n")),
	},
	{
		name: "sorted by path bytes, empty file, nested",
		files: []exec.File{
			{Path: "a.txt", Data: []byte("1")},
			{Path: "a/b", Data: nil},
			{Path: "b", Data: bytes.Repeat([]byte{'z'}, 200)},
		},
		hex: "05" + hex.EncodeToString([]byte("a.txt")) + "01" + "31" +
			"03" + hex.EncodeToString([]byte("a/b")) + "00" +
			"01" + "62" + "c801" + strings.Repeat("7a", 200),
	},
}

func TestOutputVectors(t *testing.T) {
	for _, v := range outputVectors {
		t.Run(v.name, func(t *testing.T) {
			got := exec.EncodeOutput(v.files)
			if hex.EncodeToString(got) != v.hex {
				t.Errorf("EncodeOutput = %x, want %s", got, v.hex)
			}
			if v.cid != "" && wire.SumCID(got).String() != v.cid {
				t.Errorf("CID %s, want %s", wire.SumCID(got), v.cid)
			}
			back, err := exec.DecodeOutput(got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(v.files, back, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
				t.Errorf("DecodeOutput (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeOutputRefuses(t *testing.T) {
	field := func(s string) string { return string([]byte{byte(len(s))}) + s }
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"truncated length", "\x80"},
		{"path past the end", "\x05ab"},
		{"missing data", field("a")},
		{"data past the end", field("a") + "\x05ab"},
		{"non-minimal varint", "\x81\x00a" + field("x")},
		{"empty path", field("") + field("x")},
		{"dot path", field(".") + field("x")},
		{"absolute path", field("/a") + field("x")},
		{"dot-dot", field("a/../b") + field("x")},
		{"trailing slash", field("a/") + field("x")},
		{"unsorted", field("b") + field("x") + field("a") + field("x")},
		{"duplicate", field("a") + field("x") + field("a") + field("y")},
		{"file below a file", field("a") + field("x") + field("a/b") + field("y")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if files, err := exec.DecodeOutput([]byte(tc.in)); err == nil {
				t.Errorf("DecodeOutput(%q) = %v, want an error", tc.in, files)
			}
		})
	}
}

// FuzzDecodeOutput checks that DecodeOutput never panics, and that what it
// accepts encodes back to the same bytes: the encoding is canonical.
func FuzzDecodeOutput(f *testing.F) {
	for _, v := range outputVectors {
		b, _ := hex.DecodeString(v.hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Start()()
		files, err := exec.DecodeOutput(b)
		if err != nil {
			return
		}
		if again := exec.EncodeOutput(files); !bytes.Equal(again, b) {
			t.Errorf("DecodeOutput(%x) then EncodeOutput = %x", b, again)
		}
	})
}
