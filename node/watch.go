package node

import (
	"context"
	"errors"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// handleWatch streams a lease's statuses, logs and result (SPEC 6.3): a Status
// at each change and at least every heartbeat interval, the logs from the
// offsets asked, then the Result, and the stream closes.
func (n *Node) handleWatch(ctx context.Context, e *exchange) error {
	from := e.s.Conn().RemotePeer()
	var req pb.WatchRequest
	if err := e.r.ReadMsg(&req); err != nil {
		return e.w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: protocol.ToPB(err)}})
	}
	r := n.findRun(string(req.LeaseId), req.Epoch)
	if r == nil || peer.ID(r.lease.Requester) != from {
		return n.watchStored(e, &req, from)
	}
	e.s.SetDeadline(time.Time{}) // a watch lasts as long as the run
	n.watching.Add(1)
	defer n.watching.Done()
	out, errOff := req.StdoutOffset, req.StderrOffset
	for {
		r.mu.Lock()
		state, seq, result, changed := r.state, r.seq, r.result, r.changed
		stdout := r.stdout.Bytes()[min(out, uint64(r.stdout.Len())):]
		stderr := r.stderr.Bytes()[min(errOff, uint64(r.stderr.Len())):]
		stdout, stderr = append([]byte(nil), stdout...), append([]byte(nil), stderr...)
		r.mu.Unlock()
		if err := sendLogs(e, r, pb.LogStream_LOG_STREAM_STDOUT, &out, stdout); err != nil {
			return err
		}
		if err := sendLogs(e, r, pb.LogStream_LOG_STREAM_STDERR, &errOff, stderr); err != nil {
			return err
		}
		if result != nil {
			return e.w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: result}})
		}
		st := &pb.Status{LeaseId: req.LeaseId, Epoch: req.Epoch, State: state, Seq: seq, AtMs: protocol.UnixMs(n.now()), Used: resourcesToPB(r.lease.Reserved)}
		if err := e.w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: st}}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-time.After(r.beat):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func sendLogs(e *exchange, r *run, s pb.LogStream, off *uint64, data []byte) error {
	for len(data) > 0 {
		k := min(len(data), protocol.MaxLogChunk)
		ev := &pb.WatchEvent{Event: &pb.WatchEvent_Log{Log: &pb.LogChunk{
			LeaseId: []byte(r.lease.ID), Epoch: r.lease.Epoch, Stream: s, Offset: *off, Data: data[:k]}}}
		if err := e.w.WriteMsg(ev); err != nil {
			return err
		}
		*off += uint64(k)
		data = data[k:]
	}
	return nil
}

// watchStored answers a watch of a lease no longer running here (it ended, or
// died with a restart) from the store: its result, or a typed error.
func (n *Node) watchStored(e *exchange, req *pb.WatchRequest, from peer.ID) error {
	fail := func(err error) error {
		return e.w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: protocol.ToPB(err)}})
	}
	if n.store == nil {
		return fail(protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no such lease"))
	}
	l, err := n.store.LatestLease(string(req.LeaseId))
	if err != nil || peer.ID(l.Requester) != from {
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
		StdoutCid: []byte(l.StdoutCID), StderrCid: []byte(l.StderrCID), StartedAtMs: msOrZero(l.Started),
		EndedAtMs: msOrZero(l.Ended), Error: protocol.ToPB(errOrNil(l.Error)),
	}
	if rc, err := n.store.Receipt(l.ID, l.Epoch); err == nil {
		res.Receipt = rc.Envelope
	}
	return e.w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: res}})
}

func msOrZero(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return protocol.UnixMs(t)
}

func errOrNil(e *protocol.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// handleModule serves a module the node holds, in chunks (SPEC 6.5).
func (n *Node) handleModule(_ context.Context, e *exchange) error {
	var req pb.ModuleRequest
	if err := e.r.ReadMsg(&req); err != nil {
		return e.w.WriteMsg(&pb.ModuleChunk{Error: protocol.ToPB(err)})
	}
	c, err := wire.ParseCID(req.Cid)
	var bin []byte
	if err == nil && n.store != nil {
		bin, err = n.store.Module(c)
	}
	if err != nil || n.store == nil {
		return e.w.WriteMsg(&pb.ModuleChunk{Error: protocol.ToPB(protocol.Errorf(pb.Code_CODE_MODULE_NOT_FOUND, "no module %x here", req.Cid))})
	}
	off := min(req.Offset, uint64(len(bin)))
	for {
		end := min(off+protocol.MaxModuleChunk, uint64(len(bin)))
		last := end == uint64(len(bin))
		if err := e.w.WriteMsg(&pb.ModuleChunk{Size: uint64(len(bin)), Offset: off, Data: bin[off:end], Last: last}); err != nil {
			return err
		}
		if last {
			return nil
		}
		off = end
	}
}

// handleReceipt takes a countersigned receipt back (SPEC 6.4).
func (n *Node) handleReceipt(_ context.Context, e *exchange) error {
	from := e.s.Conn().RemotePeer()
	var sub pb.ReceiptSubmit
	err := e.r.ReadMsg(&sub)
	if err == nil {
		err = n.countersigned(from, &sub)
	}
	if err != nil {
		n.metrics.refusals.WithLabelValues("receipt", reason(err)).Inc()
	}
	return e.w.WriteMsg(&pb.ReceiptAck{Accepted: err == nil, Error: protocol.ToPB(err)})
}

func (n *Node) countersigned(from peer.ID, sub *pb.ReceiptSubmit) error {
	r, err := record.OpenReceipt(sub.Receipt)
	if err != nil {
		return err
	}
	if peer.ID(r.Provider) != n.ID() {
		return protocol.Errorf(protocol.CodeWrongSigner, "a receipt of another provider")
	}
	cs, err := record.OpenCountersignature(sub.Countersignature)
	if err != nil {
		return err
	}
	if peer.ID(cs.Requester) != from || peer.ID(r.Requester) != from {
		return protocol.Errorf(protocol.CodeWrongSigner, "countersigned by %s, the receipt's requester is %s", from.ShortString(), peer.ID(r.Requester).ShortString())
	}
	if string(cs.ReceiptHash) != string(receiptHash(sub.Receipt)) {
		return protocol.Errorf(protocol.CodeMalformed, "the countersignature covers another receipt")
	}
	if n.store == nil {
		return protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no store")
	}
	stored, err := n.store.Receipt(string(r.LeaseId), r.Epoch)
	if errors.Is(err, store.ErrNotFound) || err == nil && string(stored.Envelope) != string(sub.Receipt) {
		return protocol.Errorf(pb.Code_CODE_UNKNOWN_LEASE, "no such receipt here")
	}
	if err != nil {
		return err
	}
	return n.store.Countersign(string(r.LeaseId), r.Epoch, sub.Countersignature)
}

// AddModule keeps a module in the node's store, so that providers can fetch it
// by CID, and returns that CID.
func (n *Node) AddModule(bin []byte) (cid.Cid, error) {
	c := wire.SumCID(bin)
	if n.store == nil {
		return cid.Undef, errors.New("node has no store")
	}
	return c, n.store.PutModule(c, bin)
}
