package provider_test

import (
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/provider"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// oneModule is a ModuleSource holding one module.
type oneModule []byte

func (m oneModule) Module(cid.Cid) ([]byte, error) { return m, nil }

// TestServeModuleOffsets: a module is served from the asked offset to the
// end; an offset at the end is one empty last chunk; an offset beyond the end
// is one CODE_MALFORMED error, as SPEC 6.5 says (it used to be an empty last
// chunk, as if the module ended there).
func TestServeModuleOffsets(t *testing.T) {
	bin := bytes.Repeat([]byte("module"), protocol.MaxModuleChunk/4) // 1.5 MiB: two chunks from 0
	c := wire.SumCID(bin)
	for _, tc := range []struct {
		name   string
		offset uint64
		chunks int
		code   pb.Code
	}{
		{"whole", 0, 2, pb.Code_CODE_UNSPECIFIED},
		{"resumed", 1 << 20, 1, pb.Code_CODE_UNSPECIFIED},
		{"at the end", uint64(len(bin)), 1, pb.Code_CODE_UNSPECIFIED},
		{"one past the end", uint64(len(bin)) + 1, 1, protocol.CodeMalformed},
		{"far past the end", 1 << 62, 1, protocol.CodeMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []*pb.ModuleChunk
			err := provider.ServeModule(oneModule(bin), &pb.ModuleRequest{Cid: c.Bytes(), Offset: tc.offset}, func(ch *pb.ModuleChunk) error {
				got = append(got, ch)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.chunks {
				t.Fatalf("%d chunks, want %d", len(got), tc.chunks)
			}
			last := got[len(got)-1]
			if code := protocol.CodeOf(protocol.FromPB(last.Error)); code != tc.code {
				t.Fatalf("error %v, want %v", last.Error, tc.code)
			}
			if tc.code != pb.Code_CODE_UNSPECIFIED {
				return
			}
			var data []byte
			for _, ch := range got {
				data = append(data, ch.Data...)
			}
			if !last.Last || !bytes.Equal(data, bin[tc.offset:]) {
				t.Fatalf("last %v, %d bytes, want %d", last.Last, len(data), len(bin)-int(tc.offset))
			}
		})
	}
}
