package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// MaxModule bounds a fetched module, as the store does.
const MaxModule = store.DefaultMaxModuleSize

// Module serves a module the provider's store holds, in chunks (SPEC 6.5).
func (p *Provider) Module(_ context.Context, _ string, req *pb.ModuleRequest, send func(*pb.ModuleChunk) error) error {
	return ServeModule(p.store, req, send)
}

// Blocks answers a request for blocks of a DAG from the node's data, if the
// DAG is granted to the asker (SPEC 6.6).
func (p *Provider) Blocks(ctx context.Context, from string, req *pb.BlockRequest, send func(*pb.BlockResponse) error) error {
	return p.cfg.Blocks.Serve(ctx, from, req, send)
}

// ModuleSource is where ServeModule reads modules.
type ModuleSource interface {
	Module(c cid.Cid) ([]byte, error)
}

// ServeModule answers a module request from src (nil: none held), in chunks
// (SPEC 6.5): from the request's offset to the end, the last chunk empty for
// an offset at the end, one CODE_MALFORMED error for an offset beyond it.
// Requesters serve the modules of their jobs the same way.
func ServeModule(src ModuleSource, req *pb.ModuleRequest, send func(*pb.ModuleChunk) error) error {
	c, err := wire.ParseCID(req.Cid)
	var bin []byte
	if err == nil && src != nil {
		bin, err = src.Module(c)
	}
	if err != nil || src == nil {
		return send(&pb.ModuleChunk{Error: protocol.ToPB(protocol.Errorf(pb.Code_CODE_MODULE_NOT_FOUND, "no module %x here", req.Cid))})
	}
	if req.Offset > uint64(len(bin)) {
		return send(&pb.ModuleChunk{Error: protocol.ToPB(protocol.Errorf(protocol.CodeMalformed,
			"offset %d is beyond the end of module %s, %d bytes", req.Offset, c, len(bin)))})
	}
	off := req.Offset
	for {
		end := min(off+protocol.MaxModuleChunk, uint64(len(bin)))
		last := end == uint64(len(bin))
		if err := send(&pb.ModuleChunk{Size: uint64(len(bin)), Offset: off, Data: bin[off:end], Last: last}); err != nil {
			return err
		}
		if last {
			return nil
		}
		off = end
	}
}

// FetchModule fetches a module by CID from a peer and verifies its bytes.
func FetchModule(ctx context.Context, t transport.Transport, from string, c cid.Cid) ([]byte, error) {
	var buf []byte
	var ferr error
	err := t.Module(ctx, from, &pb.ModuleRequest{Cid: c.Bytes()}, func(ch *pb.ModuleChunk) bool {
		// Chunks are contiguous, all of one size, at most MaxModuleChunk
		// each, and end exactly at the size with the last (SPEC 6.5).
		switch {
		case ch.Error != nil:
			ferr = protocol.FromPB(ch.Error)
			return false
		case ch.Size > MaxModule || ch.Offset != uint64(len(buf)) || len(ch.Data) > protocol.MaxModuleChunk ||
			buf != nil && ch.Size != uint64(cap(buf)) || ch.Offset+uint64(len(ch.Data)) > ch.Size:
			ferr = protocol.Errorf(protocol.CodeMalformed, "module chunk of %d bytes at %d of %d, expected one at %d", len(ch.Data), ch.Offset, ch.Size, len(buf))
			return false
		}
		if buf == nil {
			buf = make([]byte, 0, ch.Size)
		}
		buf = append(buf, ch.Data...)
		if ch.Last {
			ferr = errDone
			if uint64(len(buf)) != ch.Size {
				ferr = protocol.Errorf(protocol.CodeMalformed, "module ends at %d bytes, its size is %d", len(buf), ch.Size)
			}
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("module %s from %s: %w", c, short(from), err)
	case ferr != errDone && ferr != nil:
		return nil, ferr
	case ferr == nil:
		return nil, fmt.Errorf("module %s from %s: the stream ended before the last chunk", c, short(from))
	}
	if got := wire.SumCID(buf); !got.Equals(c) {
		return nil, protocol.Errorf(pb.Code_CODE_MODULE_MISMATCH, "module from %s hashes to %s, not %s", short(from), got, c)
	}
	return buf, nil
}

var errDone = errors.New("done")
