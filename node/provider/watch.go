package provider

import (
	"context"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Watch streams a lease's statuses, logs and result (SPEC 6.3): a Status at
// each change and at least every heartbeat interval, the logs from the
// offsets asked, then the Result. A lease no longer running here is answered
// from the store.
func (p *Provider) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	r := p.findRun(string(req.LeaseId), req.Epoch)
	if r == nil || r.lease.Requester != from {
		return send(p.watchStored(req, from))
	}
	p.watching.Add(1)
	defer p.watching.Done()
	out, errOff := req.StdoutOffset, req.StderrOffset
	for {
		r.mu.Lock()
		state, seq, result, changed := r.state, r.seq, r.result, r.changed
		stdout := r.stdout.Bytes()[min(out, uint64(r.stdout.Len())):]
		stderr := r.stderr.Bytes()[min(errOff, uint64(r.stderr.Len())):]
		stdout, stderr = append([]byte(nil), stdout...), append([]byte(nil), stderr...)
		r.mu.Unlock()
		if err := sendLogs(send, r, pb.LogStream_LOG_STREAM_STDOUT, &out, stdout); err != nil {
			return err
		}
		if err := sendLogs(send, r, pb.LogStream_LOG_STREAM_STDERR, &errOff, stderr); err != nil {
			return err
		}
		if result != nil {
			return send(&pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: result}})
		}
		st := &pb.Status{LeaseId: req.LeaseId, Epoch: req.Epoch, State: state, Seq: seq, AtMs: protocol.UnixMs(p.clock.Now()), Used: conv.ResourcesToPB(r.lease.Reserved)}
		if err := send(&pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: st}}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-p.clock.After(r.beat):
		case <-ctx.Done():
			return ctx.Err()
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
}

func sendLogs(send func(*pb.WatchEvent) error, r *run, s pb.LogStream, off *uint64, data []byte) error {
	for len(data) > 0 {
		k := min(len(data), protocol.MaxLogChunk)
		ev := &pb.WatchEvent{Event: &pb.WatchEvent_Log{Log: &pb.LogChunk{
			LeaseId: []byte(r.lease.ID), Epoch: r.lease.Epoch, Stream: s, Offset: *off, Data: data[:k]}}}
		if err := send(ev); err != nil {
			return err
		}
		*off += uint64(k)
		data = data[k:]
	}
	return nil
}

// watchStored answers a watch of a lease no longer running here (it ended, or
// died with a restart) from the store: its result, or a typed error.
func (p *Provider) watchStored(req *pb.WatchRequest, from string) *pb.WatchEvent {
	fail := func(err error) *pb.WatchEvent {
		return &pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: protocol.ToPB(err)}}
	}
	if p.store == nil {
		return fail(protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no such lease"))
	}
	l, err := p.store.LatestLease(string(req.LeaseId))
	if err != nil || l.Requester != from {
		return fail(protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no lease %x of yours here", req.LeaseId))
	}
	if l.Epoch != req.Epoch {
		return fail(protocol.Errorf(pb.Code_CODE_STALE_EPOCH, "lease %x is at epoch %d here, not %d", req.LeaseId, l.Epoch, req.Epoch))
	}
	if !protocol.Final(l.State) {
		return fail(protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "lease %x is not running here", req.LeaseId))
	}
	res := &pb.Result{
		LeaseId: req.LeaseId, Epoch: l.Epoch, State: l.State, ExitCode: l.ExitCode, OutputCid: []byte(l.OutputCID),
		StdoutCid: []byte(l.StdoutCID), StderrCid: []byte(l.StderrCID), StartedAtMs: conv.MsOrZero(l.Started),
		EndedAtMs: conv.MsOrZero(l.Ended), Error: protocol.ToPB(errOrNil(l.Error)),
		StdoutTruncated: l.StdoutCut, StderrTruncated: l.StderrCut, OutputSize: l.OutputSize,
	}
	if rc, err := p.store.Receipt(l.ID, l.Epoch); err == nil {
		res.Receipt = rc.Envelope
	}
	return &pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: res}}
}

func errOrNil(e *protocol.Error) error {
	if e == nil {
		return nil
	}
	return e
}
