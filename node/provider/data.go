package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing/fstest"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// owner names a lease epoch as the owner of the pins it holds.
func (r *run) owner() string { return leaseOwner(r.lease.ID, r.lease.Epoch) }

func leaseOwner(id string, epoch uint64) string { return fmt.Sprintf("lease/%x/%d", id, epoch) }

// fetchInputs fetches a run's inputs from its requester, pinned for the
// lease, checks each against what the job says of it, and returns them as
// the executor mounts them. A DAG that is not a UnixFS tree, has more entries
// than the scratch could hold, or holds other than the size the job signed is
// refused before the run starts.
func (p *Provider) fetchInputs(ctx context.Context, r *run) ([]exec.Input, error) {
	t := r.job.Job.GetTask()
	if len(t.Inputs) == 0 {
		return nil, nil
	}
	st := p.cfg.Data
	if st == nil {
		return nil, protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "this provider keeps no data: it takes no job with inputs")
	}
	scratch := t.GetResources().GetScratchBytes()
	var ins []exec.Input
	for _, in := range t.Inputs {
		root, err := cid.Cast(in.Cid)
		if err != nil {
			return nil, protocol.Errorf(protocol.CodeMalformed, "input %q: %v", in.Path, err)
		}
		if err := st.Pin(ctx, root, r.owner()); err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Path, err)
		}
		if err := p.fetch(ctx, []string{r.lease.Requester}, root); err != nil {
			return nil, dataErr(fmt.Sprintf("input %q (%s)", in.Path, root), err)
		}
		// Each entry costs the scratch cap at least exec.EntryCost: a walk
		// need never go further than the cap allows.
		lim := data.Limits{MaxSize: in.Size, MaxEntries: int(min(scratch/exec.EntryCost+1, data.DefaultMaxEntries))}
		stat, err := st.Stat(ctx, root, lim)
		switch {
		case errors.Is(err, data.ErrTooLarge):
			return nil, protocol.Errorf(pb.Code_CODE_INSUFFICIENT_SCRATCH, "input %q (%s): %v", in.Path, root, err)
		case err != nil:
			return nil, protocol.Errorf(protocol.CodeMalformed, "input %q (%s): %v", in.Path, root, err)
		case stat.Size != in.Size:
			return nil, protocol.Errorf(protocol.CodeMalformed, "input %q (%s) holds %d bytes, the job says %d", in.Path, root, stat.Size, in.Size)
		}
		fsys, err := st.FS(ctx, root)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Path, err)
		}
		ins = append(ins, exec.Input{Path: in.Path, FS: fsys})
	}
	return ins, nil
}

// releaseInputs unpins a run's inputs: the store keeps them a while, for
// the next lease that names them.
func (p *Provider) releaseInputs(r *run) {
	for _, in := range r.job.Job.GetTask().GetInputs() {
		if root, err := cid.Cast(in.Cid); err == nil && p.cfg.Data != nil {
			if err := p.cfg.Data.Unpin(context.Background(), root, r.owner()); err != nil {
				p.log.Warn("unpin input", "lease", fmt.Sprintf("%x", r.lease.ID), "err", err)
			}
		}
	}
}

// keepOutput adds a run's output, the paths the task names or its whole
// working directory (SPEC 2.5), to the store as one UnixFS directory, pins it
// for the lease until its receipt is countersigned, and lets the requester
// fetch it.
func (p *Provider) keepOutput(ctx context.Context, r *run, sc *exec.Scratch) (cid.Cid, uint64, error) {
	if p.cfg.Data == nil {
		// A provider without a data store sells compute only: a job that
		// asks for outputs fails, one that does not has none.
		if len(r.job.Job.GetTask().GetOutputs()) > 0 {
			return cid.Undef, 0, protocol.Errorf(pb.Code_CODE_EXECUTOR_UNSUPPORTED, "this provider keeps no data: it cannot keep the outputs")
		}
		return cid.Undef, 0, nil
	}
	fsys := sc.FS()
	var paths []string
	if outs := r.job.Job.GetTask().GetOutputs(); len(outs) > 0 {
		for _, o := range outs {
			if _, err := fs.Stat(fsys, o); err == nil {
				paths = append(paths, o)
			}
		}
		if len(paths) == 0 {
			fsys = fstest.MapFS{} // none was written: the empty directory
		}
	}
	root, size, err := p.cfg.Data.AddFS(ctx, fsys, paths)
	if errors.Is(err, data.ErrFull) {
		return cid.Undef, 0, protocol.Errorf(pb.Code_CODE_INSUFFICIENT_SCRATCH, "the output does not fit in this provider's store: %v", err)
	}
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("keep output: %w", err)
	}
	return root, size, p.holdOutput(ctx, r, root)
}

// holdOutput pins a run's output, in the store, for the lease until its
// receipt is countersigned, and lets the requester fetch it.
func (p *Provider) holdOutput(ctx context.Context, r *run, root cid.Cid) error {
	if err := p.cfg.Data.Pin(ctx, root, r.owner()); err != nil {
		return fmt.Errorf("keep output: %w", err)
	}
	if g := p.cfg.Blocks; g != nil {
		g.Grant(r.lease.Requester, root)
		// The requester fetches the output right after the result; the
		// grant outlives the run by the store's keep time.
		p.clock.AfterFunc(p.cfg.OutputGrant, func() { g.Revoke(r.lease.Requester, root) })
	}
	return nil
}

// releaseOutput unpins a lease's output once its receipt is countersigned:
// the store keeps it a while longer, then may evict it.
func (p *Provider) releaseOutput(leaseID string, epoch uint64, output []byte) {
	root, err := cid.Cast(output)
	if err != nil || p.cfg.Data == nil {
		return
	}
	if err := p.cfg.Data.Unpin(context.Background(), root, leaseOwner(leaseID, epoch)); err != nil {
		p.log.Warn("unpin output", "lease", fmt.Sprintf("%x", leaseID), "err", err)
	}
}

// dataErr is err as a protocol error that says what it was about, keeping
// err's code (CODE_INTERNAL for an error without one).
func dataErr(what string, err error) error {
	code := protocol.CodeOf(err)
	if code == pb.Code_CODE_UNSPECIFIED {
		code = pb.Code_CODE_INTERNAL
	}
	return protocol.Errorf(code, "%s: %v", what, err)
}

// fetch brings a DAG from holders into the store, its waits on the
// provider's clock.
func (p *Provider) fetch(ctx context.Context, holders []string, root cid.Cid) error {
	return p.cfg.Data.Fetch(ctx, p.cfg.Transport, holders, root, data.FetchOptions{Clock: p.clock})
}
