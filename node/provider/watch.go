package provider

import (
	"context"
	"time"

	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Watch streams a lease's statuses, logs and result (SPEC 6.3): a Status at
// once, then one at each state change and at least every heartbeat interval
// (not at every log write: logs go as they come), the logs from the offsets
// asked, and at the end the final Status, the remaining logs and the Result.
// A lease no longer running here is answered from the store.
func (p *Provider) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	l, err := p.fenced(req.LeaseId, req.Epoch, from)
	if err != nil {
		return send(&pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: protocol.ToPB(err)}})
	}
	r := p.findRun(string(req.LeaseId), req.Epoch)
	if r == nil {
		for _, ev := range p.watchStored(req, l) {
			if err := send(ev); err != nil {
				return err
			}
		}
		return nil
	}
	p.watching.Add(1)
	defer p.watching.Done()
	out, errOff := req.StdoutOffset, req.StderrOffset
	var sent pb.LeaseState // the state of the last Status sent; 0 before the first
	var due time.Time      // when the next heartbeat is due
	for {
		now := p.clock.Now()
		var st *pb.Status
		r.mu.Lock()
		result, final, changed := r.result, r.final, r.changed
		if result == nil && !r.ending && (r.state != sent || !now.Before(due)) {
			// The state and its seq are taken together, under the
			// run's lock, so a Status never carries a seq above the
			// final one.
			st = &pb.Status{LeaseId: req.LeaseId, Epoch: req.Epoch, State: r.state, Seq: r.nextSeq(now), AtMs: protocol.UnixMs(now),
				Used: conv.ResourcesToPB(r.lease.Reserved)}
		}
		stdout := r.stdout.Bytes()[min(out, uint64(r.stdout.Len())):]
		stderr := r.stderr.Bytes()[min(errOff, uint64(r.stderr.Len())):]
		stdout, stderr = append([]byte(nil), stdout...), append([]byte(nil), stderr...)
		r.mu.Unlock()
		if result != nil {
			st = final
		}
		if st != nil {
			if err := send(&pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: st}}); err != nil {
				return err
			}
			sent, due = st.State, now.Add(r.beat)
		}
		if err := sendLogs(send, r, pb.LogStream_LOG_STREAM_STDOUT, &out, stdout); err != nil {
			return err
		}
		if err := sendLogs(send, r, pb.LogStream_LOG_STREAM_STDERR, &errOff, stderr); err != nil {
			return err
		}
		if result != nil {
			return send(&pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: result}})
		}
		select {
		case <-changed:
		case <-p.clock.After(max(due.Sub(now), 0)):
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
// died with a restart) from the store, l being the lease as fenced: its final
// Status and its result, or a typed error. Its logs went with the run (SPEC 6.3).
func (p *Provider) watchStored(req *pb.WatchRequest, l store.Lease) []*pb.WatchEvent {
	fail := func(err error) []*pb.WatchEvent {
		return []*pb.WatchEvent{{Event: &pb.WatchEvent_Error{Error: protocol.ToPB(err)}}}
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
	seq := l.FinalSeq
	if seq == 0 { // ended before the seq was stored: its end's time
		seq = protocol.UnixMs(l.Ended)
	}
	return []*pb.WatchEvent{
		{Event: &pb.WatchEvent_Status{Status: finalStatus(l.ID, l.Epoch, l.State, seq, l.Ended, l.Error)}},
		{Event: &pb.WatchEvent_Result{Result: res}},
	}
}

func errOrNil(e *protocol.Error) error {
	if e == nil {
		return nil
	}
	return e
}
