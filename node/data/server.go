package data

import (
	"container/list"
	"context"
	"sync"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// ServerLimits bound what a Server gives. The zero value of each field means
// its documented default.
type ServerLimits struct {
	// MaxInFlight bounds the block requests of one peer served at once; one
	// more is refused with CODE_RATE_LIMITED. Default DefaultMaxInFlight.
	MaxInFlight int
	// MaxTransferBytes bounds the bytes of blocks served to one peer under
	// one root, over the server's life (a DAG fetched again counts again);
	// a block past it is refused with CODE_TOO_LARGE. Default
	// DefaultMaxTransferBytes.
	MaxTransferBytes uint64
	// MaxTracked bounds the CIDs remembered as askable under one (peer,
	// root); past it, the links of a block served are not remembered, and
	// asking for them is CODE_UNAUTHORIZED. Default DefaultMaxTracked.
	MaxTracked int
	// MaxTransfers bounds the (peer, root) pairs tracked; past it the one
	// asked least recently is forgotten, its askable CIDs and its byte
	// count: its peer starts again from the root. Default
	// DefaultMaxTransfers.
	MaxTransfers int
	// OnServe, if set, is called with the size of each block served, for
	// egress metering. It must not block.
	OnServe func(peer string, root cid.Cid, n int)
}

// The ServerLimits defaults.
const (
	// DefaultMaxInFlight is twice the requests a Fetch keeps in flight to
	// one holder.
	DefaultMaxInFlight = 2 * perHolder
	// DefaultMaxTransferBytes is 64 GiB: a job's inputs or outputs, at most
	// the 64 GiB of scratch a job may ask (SPEC 7).
	DefaultMaxTransferBytes = 64 << 30
	// DefaultMaxTracked is 1 Mi CIDs, about 100 MB: the blocks of a
	// 256 GiB file of 256 KiB leaves.
	DefaultMaxTracked = 1 << 20
	// DefaultMaxTransfers is 4096 (peer, root) pairs.
	DefaultMaxTransfers = 4096
)

// retryAfterMs is the hint a RATE_LIMITED refusal carries.
const retryAfterMs = 100

// Server answers block requests (SPEC 6.6) from a Store, to the peers
// granted each DAG: a request names its root, which must be granted to the
// asker or shared with every peer, and each CID it asks must be that root or
// a link of a block already served to that asker under that root. So knowing
// a CID is not enough to get its block: one must be let in at the root and
// walk down. It meters the bytes served per (peer, root). A Server is safe
// for concurrent use.
type Server struct {
	s   *Store
	lim ServerLimits

	mu        sync.Mutex
	grants    map[grantKey]int // grants not yet revoked, counted
	shared    map[cid.Cid]bool
	transfers map[grantKey]*list.Element // of *transfer, most recently asked first
	lru       *list.List
	inFlight  map[string]int
}

type grantKey struct {
	peer string
	root cid.Cid
}

// transfer is what a server remembers of one (peer, root): the CIDs the
// peer may ask (nil once forgotten) and the bytes served.
type transfer struct {
	key    grantKey
	may    map[string]struct{} // binary CIDs
	served uint64
}

// NewServer returns a server of s's blocks (s nil: it holds none) under lim.
func NewServer(s *Store, lim ServerLimits) *Server {
	if lim.MaxInFlight <= 0 {
		lim.MaxInFlight = DefaultMaxInFlight
	}
	if lim.MaxTransferBytes == 0 {
		lim.MaxTransferBytes = DefaultMaxTransferBytes
	}
	if lim.MaxTracked <= 0 {
		lim.MaxTracked = DefaultMaxTracked
	}
	if lim.MaxTransfers <= 0 {
		lim.MaxTransfers = DefaultMaxTransfers
	}
	return &Server{s: s, lim: lim, grants: map[grantKey]int{}, shared: map[cid.Cid]bool{},
		transfers: map[grantKey]*list.Element{}, lru: list.New(), inFlight: map[string]int{}}
}

// Grant lets peer fetch the DAG rooted at root. Grants are counted: two
// leases granting one peer one root each take back only their own.
func (sv *Server) Grant(peer string, root cid.Cid) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.grants[grantKey{peer, root}]++
}

// Revoke takes back a Grant; once the last is taken back, it forgets what
// peer may ask under root. The bytes served stay counted.
func (sv *Server) Revoke(peer string, root cid.Cid) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	k := grantKey{peer, root}
	if sv.grants[k] > 1 {
		sv.grants[k]--
		return
	}
	delete(sv.grants, k)
	if e, ok := sv.transfers[k]; ok && !sv.shared[root] {
		e.Value.(*transfer).may = nil
	}
}

// Share lets any peer fetch the DAG rooted at root.
func (sv *Server) Share(root cid.Cid) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.shared[root] = true
}

// Unshare takes back a Share; peers granted root keep their grants, the
// others' askable CIDs under root are forgotten.
func (sv *Server) Unshare(root cid.Cid) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	delete(sv.shared, root)
	for k, e := range sv.transfers {
		if k.root == root && sv.grants[k] == 0 {
			e.Value.(*transfer).may = nil
		}
	}
}

// Served returns the bytes of blocks served to peer under root.
func (sv *Server) Served(peer string, root cid.Cid) uint64 {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if e, ok := sv.transfers[grantKey{peer, root}]; ok {
		return e.Value.(*transfer).served
	}
	return 0
}

func refuse(code pb.Code, format string, args ...any) *pb.BlockResponse {
	return &pb.BlockResponse{Error: protocol.ToPB(protocol.Errorf(code, format, args...))}
}

// Serve answers a BlockRequest from the peer from: each CID asked, in order,
// with its block or as missing, or one refusal that ends the answer.
// A nil Server refuses every request.
func (sv *Server) Serve(ctx context.Context, from string, req *pb.BlockRequest, send func(*pb.BlockResponse) error) error {
	if len(req.Cids) > protocol.MaxBlocksAsked {
		return send(refuse(protocol.CodeMalformed, "%d CIDs asked, at most %d", len(req.Cids), protocol.MaxBlocksAsked))
	}
	root, err := cid.Cast(req.Root)
	if err != nil {
		return send(refuse(protocol.CodeMalformed, "root: not a CID: %v", err))
	}
	if sv == nil {
		return send(refuse(protocol.CodeUnauthorized, "%s is not shared here", root))
	}
	sv.mu.Lock()
	key := grantKey{from, root}
	if sv.grants[key] == 0 && !sv.shared[root] {
		sv.mu.Unlock()
		return send(refuse(protocol.CodeUnauthorized, "%s is not granted to the asker", root))
	}
	if sv.inFlight[from] >= sv.lim.MaxInFlight {
		sv.mu.Unlock()
		r := refuse(pb.Code_CODE_RATE_LIMITED, "%d block requests in flight, at most %d", sv.lim.MaxInFlight, sv.lim.MaxInFlight)
		r.Error.RetryAfterMs = retryAfterMs
		return send(r)
	}
	sv.inFlight[from]++
	tr := sv.transferLocked(key)
	sv.mu.Unlock()
	defer func() {
		sv.mu.Lock()
		if sv.inFlight[from]--; sv.inFlight[from] == 0 {
			delete(sv.inFlight, from)
		}
		sv.mu.Unlock()
	}()

	for _, b := range req.Cids {
		c, err := cid.Cast(b)
		if err != nil {
			return send(refuse(protocol.CodeMalformed, "not a CID: %v", err))
		}
		sv.mu.Lock()
		_, may := tr.may[string(b)]
		over := tr.served >= sv.lim.MaxTransferBytes
		sv.mu.Unlock()
		if !may {
			return send(refuse(protocol.CodeUnauthorized, "%s is not a block of %s reached so far", c, root))
		}
		if over {
			return send(refuse(protocol.CodeTooLarge, "%d bytes of %s served, at most %d", sv.lim.MaxTransferBytes, root, sv.lim.MaxTransferBytes))
		}
		r := &pb.BlockResponse{Cid: b, Missing: true}
		if sv.s != nil {
			// Read unchecked: the asker checks the block against its
			// CID before it keeps it, so hashing it here too would only
			// halve the holder's rate.
			blk, err := sv.s.flat.Get(ctx, c)
			switch {
			case err == nil:
				r.Data, r.Missing = blk.RawData(), false
			case !ipld.IsNotFound(err):
				return err
			}
			if !r.Missing {
				links, err := linksOf(blk)
				if err != nil {
					return err
				}
				sv.mu.Lock()
				if served := tr.served; served+uint64(len(r.Data)) > sv.lim.MaxTransferBytes {
					sv.mu.Unlock()
					return send(refuse(protocol.CodeTooLarge, "%s: %d bytes of %s served, at most %d", c, served, root, sv.lim.MaxTransferBytes))
				}
				tr.served += uint64(len(r.Data))
				for _, l := range links {
					if tr.may == nil || len(tr.may) >= sv.lim.MaxTracked {
						break
					}
					tr.may[l.KeyString()] = struct{}{}
				}
				sv.mu.Unlock()
				if sv.lim.OnServe != nil {
					sv.lim.OnServe(from, root, len(r.Data))
				}
			}
		}
		if err := send(r); err != nil {
			return err
		}
	}
	return nil
}

// transferLocked returns the transfer of key, made (its root askable) if
// need be, and marks it the most recently asked; it forgets the least
// recently asked one past MaxTransfers. A transfer forgotten by a Revoke or
// an Unshare starts again from its root.
func (sv *Server) transferLocked(key grantKey) *transfer {
	if e, ok := sv.transfers[key]; ok {
		sv.lru.MoveToFront(e)
		tr := e.Value.(*transfer)
		if tr.may == nil {
			tr.may = map[string]struct{}{key.root.KeyString(): {}}
		}
		return tr
	}
	tr := &transfer{key: key, may: map[string]struct{}{key.root.KeyString(): {}}}
	sv.transfers[key] = sv.lru.PushFront(tr)
	for sv.lru.Len() > sv.lim.MaxTransfers {
		old := sv.lru.Remove(sv.lru.Back()).(*transfer)
		delete(sv.transfers, old.key)
	}
	return tr
}
