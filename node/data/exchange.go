package data

import (
	"context"
	"errors"
	"fmt"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// The exchange of blocks (SPEC 6.6): a request-response protocol of its own
// rather than bitswap, see docs/RATIONALE.md. A fetcher asks holders for the
// blocks it lacks, level by level of the DAG, in batches spread over the
// holders in parallel; every block is checked against its CID before it is
// kept, and blocks already held are never asked again, so a fetch cut short
// resumes where it stopped.

// ServeBlocks answers a BlockRequest from s (nil: holds nothing): each CID
// asked, in order, with its block or as missing.
func ServeBlocks(ctx context.Context, s *Store, req *pb.BlockRequest, send func(*pb.BlockResponse) error) error {
	if len(req.Cids) > protocol.MaxBlocksAsked {
		return send(&pb.BlockResponse{Error: protocol.ToPB(protocol.Errorf(protocol.CodeMalformed,
			"%d CIDs asked, at most %d", len(req.Cids), protocol.MaxBlocksAsked))})
	}
	for _, b := range req.Cids {
		c, err := cid.Cast(b)
		if err != nil {
			return send(&pb.BlockResponse{Error: protocol.ToPB(protocol.Errorf(protocol.CodeMalformed, "not a CID: %v", err))})
		}
		r := &pb.BlockResponse{Cid: b, Missing: true}
		if s != nil {
			blk, err := s.bs.Get(ctx, c)
			switch {
			case err == nil:
				r.Data, r.Missing = blk.RawData(), false
			case !ipld.IsNotFound(err):
				return err
			}
		}
		if err := send(r); err != nil {
			return err
		}
	}
	return nil
}

// Fetch gets the DAG rooted at root from holders into s. It returns once the
// whole DAG is held, or with the first error; what it kept before an error
// stays, and a later Fetch asks only for the rest.
func (s *Store) Fetch(ctx context.Context, t transport.Transport, holders []string, root cid.Cid) error {
	if len(holders) == 0 {
		return errors.New("fetch: no holder to ask")
	}
	seen := cid.NewSet()
	level := []cid.Cid{root}
	seen.Add(root)
	for len(level) > 0 {
		var lack []cid.Cid
		var held []blocks.Block
		for _, c := range level {
			blk, err := s.bs.Get(ctx, c)
			switch {
			case err == nil:
				held = append(held, blk)
			case ipld.IsNotFound(err):
				lack = append(lack, c)
			default:
				return err
			}
		}
		got, err := s.fetchBlocks(ctx, t, holders, lack)
		if err != nil {
			return err
		}
		var next []cid.Cid
		for _, blk := range append(held, got...) {
			links, err := linksOf(blk)
			if err != nil {
				return err
			}
			for _, l := range links {
				if seen.Visit(l) {
					next = append(next, l)
				}
			}
		}
		level = next
	}
	return nil
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

// perHolder bounds the requests in flight to one holder: each stream holds a
// frame's worth of memory on both sides, which the resource manager counts.
const perHolder = 4

// fetchBlocks asks for cids in batches, as many as there are holders (more
// if a batch would exceed MaxBlocksAsked), the i-th batch of holder i mod n,
// perHolder requests of each holder at a time, and keeps each block once
// checked. A block a holder lacks is asked of the next one.
func (s *Store) fetchBlocks(ctx context.Context, t transport.Transport, holders []string, cids []cid.Cid) ([]blocks.Block, error) {
	var (
		mu   sync.Mutex
		got  []blocks.Block
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, perHolder*len(holders))
	)
	size := min(protocol.MaxBlocksAsked, (len(cids)+len(holders)-1)/len(holders))
	for i := 0; len(cids) > 0; i++ {
		n := min(len(cids), size)
		batch := cids[:n]
		cids = cids[n:]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			blks, err := s.askAround(ctx, t, holders, i, batch)
			mu.Lock()
			defer mu.Unlock()
			got = append(got, blks...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return got, errors.Join(errs...)
}

// askAround asks holders for batch, starting with holder first, each next
// holder for what the previous lacked.
func (s *Store) askAround(ctx context.Context, t transport.Transport, holders []string, first int, batch []cid.Cid) ([]blocks.Block, error) {
	var got []blocks.Block
	var last error
	for k := range holders {
		if len(batch) == 0 {
			return got, nil
		}
		from := holders[(first+k)%len(holders)]
		blks, lack, err := s.ask(ctx, t, from, batch)
		got = append(got, blks...)
		if err != nil {
			var perr *protocol.Error
			if errors.As(err, &perr) && perr.Code == protocol.CodeMalformed {
				return got, err // a holder that lies is not asked again; the fetch stops
			}
			last = err
			continue // another holder may have them
		}
		batch = lack
	}
	if len(batch) > 0 {
		if last == nil {
			last = fmt.Errorf("%s: %w by any of %d holders", batch[0], ErrNotFound, len(holders))
		}
		return got, last
	}
	return got, nil
}

// ask asks one holder for cids, keeps the blocks it sends once each is
// checked against its CID, and returns them with the CIDs it lacks.
func (s *Store) ask(ctx context.Context, t transport.Transport, from string, cids []cid.Cid) (got []blocks.Block, lack []cid.Cid, err error) {
	req := &pb.BlockRequest{Cids: make([][]byte, len(cids))}
	for i, c := range cids {
		req.Cids[i] = c.Bytes()
	}
	i := 0
	var ferr error
	err = t.Blocks(ctx, from, req, func(r *pb.BlockResponse) bool {
		switch {
		case r.Error != nil:
			ferr = protocol.FromPB(r.Error)
			return false
		case i >= len(cids) || string(r.Cid) != string(cids[i].Bytes()):
			ferr = protocol.Errorf(protocol.CodeMalformed, "blocks from %x: an answer out of order", from)
			return false
		case r.Missing:
			lack = append(lack, cids[i])
		default:
			if len(r.Data) > protocol.MaxBlock {
				ferr = protocol.Errorf(protocol.CodeTooLarge, "block %s: %d bytes", cids[i], len(r.Data))
				return false
			}
			blk, err := blocks.NewBlockWithCid(r.Data, cids[i])
			if err == nil {
				var sum cid.Cid
				if sum, err = cids[i].Prefix().Sum(r.Data); err == nil && !sum.Equals(cids[i]) {
					err = fmt.Errorf("hashes to %s", sum)
				}
			}
			if err != nil {
				ferr = protocol.Errorf(protocol.CodeMalformed, "block %s from %x: %v", cids[i], from, err)
				return false
			}
			if err := s.bs.Put(ctx, blk); err != nil {
				ferr = err
				return false
			}
			got = append(got, blk)
		}
		i++
		return i < len(cids)
	})
	switch {
	case ferr != nil:
		return got, nil, ferr
	case err != nil:
		return got, nil, fmt.Errorf("blocks from %x: %w", from, err)
	case i < len(cids):
		return got, nil, fmt.Errorf("blocks from %x: %d of %d answered", from, i, len(cids))
	}
	return got, lack, nil
}
