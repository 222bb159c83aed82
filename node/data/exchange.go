package data

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/mr-tron/base58"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// The exchange of blocks (SPEC 6.6): a request-response protocol of its own
// rather than bitswap, see docs/RATIONALE.md. A fetcher asks holders for the
// blocks it lacks, level by level of the DAG, in batches spread over the
// holders in parallel; every block is checked against its CID before it is
// kept, and blocks already held are never asked again, so a fetch cut short
// resumes where it stopped. Every request names the DAG's root, and a holder
// serves a block only to a peer it granted that root and to which it served
// the block's parent (see Server).

// MaxHolders bounds the holders one Fetch asks.
const MaxHolders = 64

// FetchOptions tune a Fetch. The zero value of each field means its
// documented default.
type FetchOptions struct {
	// Clock waits out a holder's CODE_RATE_LIMITED. Default clock.Real.
	Clock clock.Clock
	// Retries is how many times a batch refused with CODE_RATE_LIMITED is
	// asked again of the same holder, after the holder's retry_after_ms or
	// a back-off of 50 ms doubled each time, whichever is longer. Default 5.
	Retries int
}

// perHolder bounds the requests in flight to one holder: each stream holds a
// frame's worth of memory on both sides, which the resource manager counts.
const perHolder = 4

// flushBytes is what one request keeps of verified blocks before it writes
// them to the store in one batch.
const flushBytes = 8 << 20

// Fetch gets the DAG rooted at root from holders (at most MaxHolders) into s.
// It returns once the whole DAG is held, or with the first error; what it
// kept before an error stays, and a later Fetch asks only for the rest.
//
// Memory: at most perHolder requests are in flight to each holder, and each
// keeps at most flushBytes of verified blocks and one frame
// (protocol.MaxBlocksMsg) before writing them to disk: 4 x 10 MiB a holder,
// besides the CIDs of the DAG's current level.
//
// A holder serves the children of a block only to a peer it served that
// block to: so the blocks with links (dag-pb) are asked of every holder that
// may serve them, the raw leaves, the bulk, of one of them each.
func (s *Store) Fetch(ctx context.Context, t transport.Transport, holders []string, root cid.Cid, o FetchOptions) error {
	if len(holders) == 0 {
		return errors.New("fetch: no holder to ask")
	}
	if len(holders) > MaxHolders {
		holders = holders[:MaxHolders]
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	f := &fetch{s: s, t: t, holders: holders, root: root, o: o}
	all := ^uint64(0) >> (64 - len(holders))
	seen := cid.NewSet()
	seen.Add(root)
	level := []want{{root, all}}
	for len(level) > 0 {
		var lack, next []want
		for _, w := range level {
			if w.c.Type() == cid.Raw {
				ok, err := s.bs.Has(ctx, w.c)
				if err != nil {
					return err
				}
				if !ok {
					lack = append(lack, w)
				}
				continue
			}
			blk, err := s.bs.Get(ctx, w.c)
			switch {
			case err == nil:
				// Held from an earlier fetch: which holders served it is
				// forgotten, so its children may be asked of any.
				if next, err = addLinks(next, seen, blk, all); err != nil {
					return err
				}
			case ipld.IsNotFound(err):
				lack = append(lack, w)
			default:
				return err
			}
		}
		got, err := f.level(ctx, lack)
		if err != nil {
			return err
		}
		for _, g := range got {
			if next, err = addLinks(next, seen, g.blk, g.from); err != nil {
				return err
			}
		}
		level = next
	}
	return s.flat.Sync() // the DAG is whole: on disk before Fetch says so
}

// want is a CID to fetch and the holders that may serve it, a bit each.
type want struct {
	c    cid.Cid
	from uint64
}

// parent is a block with links fetched, and the holders that served it.
type parent struct {
	blk  blocks.Block
	from uint64
}

func addLinks(next []want, seen *cid.Set, blk blocks.Block, from uint64) ([]want, error) {
	links, err := linksOf(blk)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		if seen.Visit(l) {
			next = append(next, want{l, from})
		}
	}
	return next, nil
}

// linksOf returns the CIDs a block links to.
func linksOf(blk blocks.Block) ([]cid.Cid, error) {
	if blk.Cid().Type() == cid.Raw {
		return nil, nil
	}
	nd, err := decodeNode(blk)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", blk.Cid(), err)
	}
	out := make([]cid.Cid, len(nd.Links()))
	for i, l := range nd.Links() {
		out[i] = l.Cid
	}
	return out, nil
}

// fetch is one Fetch's state.
type fetch struct {
	s       *Store
	t       transport.Transport
	holders []string
	root    cid.Cid
	o       FetchOptions
}

// job is one request: cids asked of holders in turn, each next one for what
// the previous lacked (once has one holder).
type job struct {
	cids    []cid.Cid
	holders []int
	once    bool // a block with links, asked of this holder alone
}

// level fetches the CIDs of one level of the DAG: the blocks with links of
// every holder that may serve them, the leaves spread in batches over the
// holders that may serve them, perHolder requests of each holder at a time.
// It returns the blocks with links, with the holders that served each.
func (f *fetch) level(ctx context.Context, lack []want) ([]parent, error) {
	var jobs []job
	byMask := map[uint64][]cid.Cid{}
	var masks []uint64
	parentsOf := map[int][]cid.Cid{}
	for _, w := range lack {
		if w.c.Type() != cid.Raw {
			for m := w.from; m != 0; m &= m - 1 {
				h := bits.TrailingZeros64(m)
				parentsOf[h] = append(parentsOf[h], w.c)
			}
			continue
		}
		if _, ok := byMask[w.from]; !ok {
			masks = append(masks, w.from)
		}
		byMask[w.from] = append(byMask[w.from], w.c)
	}
	for h := range f.holders {
		for cids := parentsOf[h]; len(cids) > 0; {
			n := min(len(cids), protocol.MaxBlocksAsked)
			jobs = append(jobs, job{cids: cids[:n], holders: []int{h}, once: true})
			cids = cids[n:]
		}
	}
	for _, m := range masks {
		var hs []int
		for b := m; b != 0; b &= b - 1 {
			hs = append(hs, bits.TrailingZeros64(b))
		}
		cids := byMask[m]
		// Enough batches for every request in flight to each holder.
		per := len(hs) * perHolder
		size := min(protocol.MaxBlocksAsked, (len(cids)+per-1)/per)
		for i := 0; len(cids) > 0; i++ {
			n := min(len(cids), size)
			order := append(append([]int(nil), hs[i%len(hs):]...), hs[:i%len(hs)]...)
			jobs = append(jobs, job{cids: cids[:n], holders: order})
			cids = cids[n:]
		}
	}

	var (
		mu      sync.Mutex
		parents = map[cid.Cid]*parent{}
		lacking = map[cid.Cid]bool{} // blocks with links no holder had yet
		errs    []error
		failed  []error // holders unreachable for blocks with links
		wg      sync.WaitGroup
		sem     = make([]chan struct{}, len(f.holders))
	)
	for h := range sem {
		sem[h] = make(chan struct{}, perHolder)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, j := range jobs {
		h := j.holders[0]
		select {
		case sem[h] <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem[h] }()
			got, lack, err := f.askAround(ctx, j)
			mu.Lock()
			defer mu.Unlock()
			for _, blk := range got {
				if blk.Cid().Type() == cid.Raw {
					continue
				}
				p := parents[blk.Cid()]
				if p == nil {
					p = &parent{blk: blk}
					parents[blk.Cid()] = p
				}
				p.from |= 1 << h
				delete(lacking, blk.Cid())
			}
			if j.once {
				for _, c := range lack {
					if parents[c] == nil {
						lacking[c] = true
					}
				}
			}
			var perr *protocol.Error
			switch {
			case err == nil:
			case j.once && !errors.As(err, &perr) && ctx.Err() == nil:
				// This holder could not be reached: another may serve
				// these blocks.
				failed = append(failed, err)
				for _, c := range lack {
					if parents[c] == nil {
						lacking[c] = true
					}
				}
			case ctx.Err() != nil && errors.Is(err, context.Canceled):
				// Another request failed first.
			default:
				errs = append(errs, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for c := range lacking {
		return nil, errors.Join(append([]error{fmt.Errorf("%s: %w by any of %d holders", c, ErrNotFound, len(f.holders))}, failed...)...)
	}
	out := make([]parent, 0, len(parents))
	for _, p := range parents {
		out = append(out, *p)
	}
	return out, nil
}

// askAround asks j's holders for its CIDs in turn, each next holder for what
// the previous lacked. It returns the blocks with links it got, and what the
// last holder lacked. A refusal stops it, and the fetch.
func (f *fetch) askAround(ctx context.Context, j job) (got []blocks.Block, lack []cid.Cid, err error) {
	batch := j.cids
	var failed error
	for _, h := range j.holders {
		if len(batch) == 0 {
			break
		}
		g, l, err := f.ask(ctx, h, batch)
		got = append(got, g...)
		var perr *protocol.Error
		switch {
		case err == nil:
			batch = l
		case errors.As(err, &perr) || ctx.Err() != nil:
			return got, nil, err // a refusal, or a lie: the fetch stops
		default:
			failed = err // unreachable, or cut: another holder may have them
		}
	}
	switch {
	case len(batch) == 0:
		return got, nil, nil
	case failed != nil:
		return got, batch, failed
	case j.once:
		return got, batch, nil
	}
	return got, batch, fmt.Errorf("%s: %w by any of %d holders", batch[0], ErrNotFound, len(j.holders))
}

// ask asks holder h for cids, waiting out its CODE_RATE_LIMITED refusals.
func (f *fetch) ask(ctx context.Context, h int, cids []cid.Cid) (got []blocks.Block, lack []cid.Cid, err error) {
	backoff := 50 * time.Millisecond
	for try := 0; ; try++ {
		a := f.askOnce(ctx, f.holders[h], cids)
		got, lack = append(got, a.got...), append(lack, a.lack...)
		if a.err == nil || protocol.CodeOf(a.err) != pb.Code_CODE_RATE_LIMITED || try >= f.o.Retries {
			return got, lack, a.err
		}
		wait := max(backoff, a.retryAfter)
		backoff *= 2
		select {
		case <-f.o.Clock.After(wait):
		case <-ctx.Done():
			return got, lack, ctx.Err()
		}
		// What was answered before the refusal is kept: ask for the rest.
		if cids = cids[a.answered:]; len(cids) == 0 {
			return got, lack, nil
		}
	}
}

// answer is what one request to one holder brought: the blocks with links
// (every block is kept), the CIDs the holder lacks, how many CIDs were
// answered, and the refusal or failure that ended it early.
type answer struct {
	got        []blocks.Block
	lack       []cid.Cid
	answered   int
	err        error
	retryAfter time.Duration // the holder's hint with a refusal
}

// askOnce asks one holder for cids, keeps the blocks it sends once each is
// checked against its CID, and returns those with links and the CIDs it
// lacks. A refusal is an error naming the holder and the code.
func (f *fetch) askOnce(ctx context.Context, from string, cids []cid.Cid) (a answer) {
	req := &pb.BlockRequest{Cids: make([][]byte, len(cids)), Root: f.root.Bytes()}
	for i, c := range cids {
		req.Cids[i] = c.Bytes()
	}
	var (
		ferr    error
		pending []blocks.Block
		size    int
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := f.s.bs.PutMany(ctx, pending)
		pending, size = pending[:0], 0
		return err
	}
	err := f.t.Blocks(ctx, from, req, func(r *pb.BlockResponse) bool {
		i := a.answered
		switch {
		case ctx.Err() != nil:
			ferr = ctx.Err()
			return false
		case r.Error != nil:
			ferr = fmt.Errorf("blocks from %s: %w", short(from), protocol.FromPB(r.Error))
			a.retryAfter = time.Duration(r.Error.RetryAfterMs) * time.Millisecond
			return false
		case i >= len(cids) || string(r.Cid) != string(req.Cids[i]):
			ferr = protocol.Errorf(protocol.CodeMalformed, "blocks from %s: an answer out of order", short(from))
			return false
		case r.Missing:
			a.lack = append(a.lack, cids[i])
		default:
			if len(r.Data) > protocol.MaxBlock {
				ferr = protocol.Errorf(protocol.CodeTooLarge, "block %s from %s: %d bytes", cids[i], short(from), len(r.Data))
				return false
			}
			sum, err := cids[i].Prefix().Sum(r.Data)
			if err == nil && !sum.Equals(cids[i]) {
				err = fmt.Errorf("hashes to %s", sum)
			}
			if err != nil {
				ferr = protocol.Errorf(protocol.CodeMalformed, "block %s from %s: %v", cids[i], short(from), err)
				return false
			}
			blk, _ := blocks.NewBlockWithCid(r.Data, cids[i]) // checked above
			pending = append(pending, blk)
			size += len(r.Data)
			if blk.Cid().Type() != cid.Raw {
				a.got = append(a.got, blk)
			}
			if size >= flushBytes {
				if ferr = flush(); ferr != nil {
					return false
				}
			}
		}
		a.answered++
		return a.answered < len(cids)
	})
	if perr := flush(); perr != nil && ferr == nil {
		ferr = perr
	}
	switch {
	case ferr != nil:
		a.err = ferr
	case err != nil:
		a.err = fmt.Errorf("blocks from %s: %w", short(from), err)
	case a.answered < len(cids):
		a.err = fmt.Errorf("blocks from %s: %d of %d answered", short(from), a.answered, len(cids))
	}
	return a
}

// short names a peer in a message as libp2p's logs do, by the end of its
// text form (base58btc), without the data room reaching libp2p.
func short(id string) string {
	b := base58.Encode([]byte(id))
	if len(b) > 6 {
		return "12*" + b[len(b)-6:]
	}
	return fmt.Sprintf("%q", id)
}
