package provider_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/provider"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// Fuzz targets for the module exchange (SPEC 6.5): the holder's side reads a
// ModuleRequest from any peer; the fetcher's side reads the chunks a holder
// streams back.

// modules is a ModuleSource of modules held in memory.
type modules map[string][]byte

func (m modules) Module(c cid.Cid) ([]byte, error) {
	if b, ok := m[c.KeyString()]; ok {
		return b, nil
	}
	return nil, errors.New("not here")
}

// fuzzModule is a module of two whole chunks and a part, so that a request
// may start in any of them.
func fuzzModule() []byte {
	b := make([]byte, 2*protocol.MaxModuleChunk+1000)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// FuzzServeModule: a holder answers any request with one typed error, or
// with contiguous chunks of at most a chunk's size from the offset asked to
// the end of the module, the last marked last.
func FuzzServeModule(f *testing.F) {
	mod := fuzzModule()
	c := wire.SumCID(mod)
	src := modules{c.KeyString(): mod}
	f.Add(c.Bytes(), uint64(0))
	f.Add(c.Bytes(), uint64(protocol.MaxModuleChunk+5))
	f.Add(c.Bytes(), uint64(len(mod)))
	f.Add(wire.SumCID([]byte("other")).Bytes(), uint64(0))
	f.Add([]byte{0x01, 0x55}, uint64(3))
	f.Fuzz(func(t *testing.T, id []byte, offset uint64) {
		defer fuzzguard.Start()()
		var chunks []*pb.ModuleChunk
		err := provider.ServeModule(src, &pb.ModuleRequest{Cid: id, Offset: offset}, func(ch *pb.ModuleChunk) error {
			if len(chunks) > len(mod)/protocol.MaxModuleChunk+2 {
				t.Fatalf("more chunks than the module has")
			}
			chunks = append(chunks, ch)
			return nil
		})
		if err != nil {
			t.Fatalf("send never fails here, yet: %v", err)
		}
		if len(chunks) == 0 {
			t.Fatal("no answer")
		}
		if e := chunks[0].Error; e != nil {
			if len(chunks) != 1 || e.Code == pb.Code_CODE_UNSPECIFIED || e.Code == pb.Code_CODE_INTERNAL {
				t.Fatalf("refusal %v followed by %d chunks", e, len(chunks)-1)
			}
			return
		}
		if !bytes.Equal(id, c.Bytes()) {
			t.Fatalf("served a module for CID %x", id)
		}
		// An offset past the end is answered from the end (SPEC 6.5 would
		// have CODE_MALFORMED: issue 14 item 4); every offset within the
		// module starts there.
		off := min(offset, uint64(len(mod)))
		for i, ch := range chunks {
			if ch.Error != nil || ch.Size != uint64(len(mod)) || ch.Offset != off || len(ch.Data) > protocol.MaxModuleChunk ||
				!bytes.Equal(ch.Data, mod[off:off+uint64(len(ch.Data))]) || ch.Last != (i == len(chunks)-1) {
				t.Fatalf("chunk %d of %d: size %d offset %d (want %d), %d bytes, last %v", i, len(chunks), ch.Size, ch.Offset, off, len(ch.Data), ch.Last)
			}
			off += uint64(len(ch.Data))
		}
		if off != uint64(len(mod)) {
			t.Fatalf("chunks end at %d of %d", off, len(mod))
		}
	})
}

// chunkStream is a holder that streams the chunks framed in its input,
// whatever was asked.
type chunkStream struct {
	transport.Transport
	frames []byte
}

func (s chunkStream) Module(_ context.Context, _ string, _ *pb.ModuleRequest, fn func(*pb.ModuleChunk) bool) error {
	r := wire.NewReader(bytes.NewReader(s.frames), protocol.MaxModuleMsg)
	for range 64 {
		ch := new(pb.ModuleChunk)
		if err := r.ReadMsg(ch); err != nil {
			return err
		}
		if !fn(ch) {
			return nil
		}
	}
	return nil
}

// frames encodes chunks as a holder's stream carries them.
func frames(t testing.TB, chunks ...*pb.ModuleChunk) []byte {
	var buf bytes.Buffer
	w := wire.NewWriter(&buf, protocol.MaxModuleMsg)
	for _, ch := range chunks {
		if err := w.WriteMsg(ch); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// FuzzFetchModule: whatever a holder streams, the fetcher returns the module
// of the CID it asked, byte for byte, or an error.
func FuzzFetchModule(f *testing.F) {
	mod := []byte("\x00asm\x01\x00\x00\x00 a small module, in three chunks")
	c := wire.SumCID(mod)
	n := uint64(len(mod))
	f.Add(frames(f, &pb.ModuleChunk{Size: n, Data: mod, Last: true}))
	f.Add(frames(f, &pb.ModuleChunk{Size: n, Data: mod[:10]}, &pb.ModuleChunk{Size: n, Offset: 10, Data: mod[10:20]},
		&pb.ModuleChunk{Size: n, Offset: 20, Data: mod[20:], Last: true}))
	f.Add(frames(f, &pb.ModuleChunk{Size: n, Data: mod[:10]}, &pb.ModuleChunk{Size: n, Offset: 12, Data: mod[12:], Last: true}))
	f.Add(frames(f, &pb.ModuleChunk{Size: 1 << 62, Data: mod[:10]}))
	f.Add(frames(f, &pb.ModuleChunk{Size: n, Data: bytes.ToUpper(mod), Last: true})) // other bytes
	f.Add(frames(f, &pb.ModuleChunk{Error: protocol.ToPB(protocol.Errorf(pb.Code_CODE_MODULE_NOT_FOUND, "no"))}))
	f.Fuzz(func(t *testing.T, in []byte) {
		defer fuzzguard.Start()()
		got, err := provider.FetchModule(context.Background(), chunkStream{frames: in}, "holder", c)
		if err != nil {
			return
		}
		if !bytes.Equal(got, mod) {
			t.Fatalf("fetched %d bytes that are not the module", len(got))
		}
	})
}
