package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/ipfs/go-cid"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"
)

// run is one lease the suite follows to its end.
type run struct {
	offer *pb.Offer
	lease *pb.Lease
	job   *record.SignedJob
}

// mainRun leases the kit's module, watches it to its end, checks its
// Result and receipt, countersigns it, and watches the finished lease again.
func (s *provSuite) mainRun(ctx context.Context, o *pb.Offer, req *pb.OfferRequest) {
	l := s.leaseMsg(o, s.job, random(protocol.LeaseIDSize), 1)
	env := s.seal(s.key, l)
	a, err := s.sendLease(ctx, env)
	switch {
	case err != nil:
		s.fail("lease.accept", "%v", err)
		return
	case !a.Accepted:
		s.fail("lease.accept", "refused: %v", a.Error)
		return
	case !bytes.Equal(a.LeaseId, l.LeaseId) || a.Epoch != l.Epoch:
		s.fail("lease.accept", "accepted with lease_id %x epoch %d, want %x epoch %d", a.LeaseId, a.Epoch, l.LeaseId, l.Epoch)
	default:
		s.pass("lease.accept")
	}
	code, seen := s.leaseCode(ctx, env)
	s.expect("lease.retry", code == 0, "the same lease again: %s", seen)

	w := s.c.watch(ctx, &pb.WatchRequest{LeaseId: l.LeaseId, Epoch: l.Epoch}, nil)
	r := run{offer: o, lease: l, job: s.job}
	res := s.checkWatch(w, r, pb.LeaseState_LEASE_STATE_SUCCEEDED, false)
	s.checkModuleFetch()
	if res == nil {
		return
	}
	if rec := s.checkReceipt(res, r, w); rec != nil {
		s.submitReceipt(ctx, res.Receipt, rec)
	}
	s.blockChecks(ctx, res)
	// A watch of the final lease.
	again := s.c.watch(ctx, &pb.WatchRequest{LeaseId: l.LeaseId, Epoch: l.Epoch}, nil)
	s.checkRewatch(again, res)
	// A cancel of a final lease changes nothing.
	ca, err := s.c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Cancel{Cancel: &pb.Cancel{LeaseId: l.LeaseId, Epoch: l.Epoch}}})
	if err != nil || !ca.Accepted {
		s.fail("cancel.final", "a cancel of a SUCCEEDED lease: %v %v", err, ca.GetError())
	} else {
		w3 := s.c.watch(ctx, &pb.WatchRequest{LeaseId: l.LeaseId, Epoch: l.Epoch}, nil)
		r3 := w3.result()
		s.expect("cancel.final", r3 != nil && r3.State == pb.LeaseState_LEASE_STATE_SUCCEEDED, "after the cancel, the lease's Result is %s", resultSummary(r3))
	}
	// A watch from an offset gets the logs from there (6.3), if the
	// provider still has them.
	var stdout []byte
	for _, ev := range w.events {
		if c := ev.GetLog(); c != nil && c.Stream == pb.LogStream_LOG_STREAM_STDOUT {
			stdout = append(stdout, c.Data...)
		}
	}
	if len(stdout) >= 2 {
		off := uint64(len(stdout) / 2)
		w4 := s.c.watch(ctx, &pb.WatchRequest{LeaseId: l.LeaseId, Epoch: l.Epoch, StdoutOffset: off}, nil)
		var got []byte
		first := uint64(0)
		for _, ev := range w4.events {
			if c := ev.GetLog(); c != nil && c.Stream == pb.LogStream_LOG_STREAM_STDOUT {
				if got == nil {
					first = c.Offset
				}
				got = append(got, c.Data...)
			}
		}
		s.expect("watch.offsets", got == nil || (first == off && bytes.Equal(got, stdout[off:])),
			"a watch from stdout offset %d: a first chunk at %d, %d bytes, %d expected", off, first, len(got), len(stdout)-int(off))
	} else {
		s.skip("watch.offsets", "the module wrote %d bytes to stdout: too few to watch from an offset", len(stdout))
	}
	// Declining the offer leased, one never made, and a live one under
	// another job_cid (6.2).
	da, err := s.decline(ctx, o)
	s.expect("decline.unknown", err == nil && !da.Accepted && da.GetError().GetCode() == pb.Code_CODE_UNKNOWN_OFFER,
		"a decline of a leased offer: %v %v", da, err)
	da, err = s.decline(ctx, &pb.Offer{Nonce: random(protocol.NonceSize), JobCid: l.JobCid})
	s.expect("decline.unknown", err == nil && !da.Accepted && da.GetError().GetCode() == pb.Code_CODE_UNKNOWN_OFFER,
		"a decline of an offer never made: %v %v", da, err)
	if o5, _, err := s.getOffer(ctx, s.request(s.job)); err == nil {
		da, err = s.decline(ctx, &pb.Offer{Nonce: o5.Nonce, JobCid: wire.SumCID([]byte("another job")).Bytes()})
		s.expect("decline.unknown", err == nil && !da.Accepted && da.GetError().GetCode() == pb.Code_CODE_UNKNOWN_OFFER,
			"a decline of a live offer naming another job_cid: %v %v", da, err)
		s.declineAck(ctx, o5)
	}
	// Another requester may neither cancel nor watch the kit's lease.
	s.otherRequester(ctx, l)
	// A lease reusing the accepted lease's nonce, under a fresh offer.
	if o2, _, err := s.getOffer(ctx, s.request(s.job)); err == nil {
		l2 := s.leaseMsg(o2, s.job, random(protocol.LeaseIDSize), 1)
		l2.Nonce = l.Nonce
		s.mustRefuse(ctx, "lease.replayed", "a lease with the nonce of an accepted one", s.seal(s.key, l2), pb.Code_CODE_REPLAYED)
		s.declineAck(ctx, o2)
	}
	// Receipt refusals.
	s.receiptRefusals(ctx, res.Receipt)
}

// declineAck declines o and checks the acknowledgement, then that a second
// decline is refused.
func (s *provSuite) declineAck(ctx context.Context, o *pb.Offer) {
	a, err := s.decline(ctx, o)
	if err != nil {
		s.fail("decline.ack", "%v", err)
		return
	}
	s.expect("decline.ack", a.Accepted && len(a.LeaseId) == 0 && a.Epoch == 0, "answer %v", a)
	a, err = s.decline(ctx, o)
	s.expect("decline.unknown", err == nil && !a.Accepted && a.GetError().GetCode() == pb.Code_CODE_UNKNOWN_OFFER, "a second decline: %v %v", a, err)
}

// checkModuleFetch checks the provider fetched the kit's module from it.
func (s *provSuite) checkModuleFetch() {
	want := wire.SumCID(s.o.Module).Bytes()
	s.mods.mu.Lock()
	defer s.mods.mu.Unlock()
	for i, r := range s.mods.requests {
		if bytes.Equal(r.Cid, want) && s.mods.from[i] == s.target {
			s.pass("module.fetch")
			return
		}
	}
	// A provider may have the module in its cache already (6.5).
	s.skip("module.fetch", "the provider did not ask the kit for the module (cached?)")
}

// checkWatch checks a watch of a lease followed to its end and returns its
// Result, or nil.
func (s *provSuite) checkWatch(w *watched, r run, want pb.LeaseState, rewatch bool) *pb.Result {
	l := r.lease
	if len(w.events) == 0 {
		s.fail("watch.first-status", "no event; %v", w.err)
		return nil
	}
	if w.events[0].GetStatus() == nil {
		s.fail("watch.first-status", "the events: %s", summary(w.events))
	} else {
		s.pass("watch.first-status")
	}
	var (
		lastSeq    uint64
		seqs       []uint64
		states     []pb.LeaseState
		finalState bool
		results    int
		resultAt   = -1
		offsets    = map[pb.LogStream]uint64{}
		logs       = map[pb.LogStream][]byte{}
		logErr     string
	)
	idsOK := true
	for i, ev := range w.events {
		switch e := ev.Event.(type) {
		case *pb.WatchEvent_Status:
			st := e.Status
			idsOK = idsOK && bytes.Equal(st.LeaseId, l.LeaseId) && st.Epoch == l.Epoch
			if len(seqs) > 0 && st.Seq <= lastSeq {
				s.fail("watch.seq", "Status seq %d after %d (seqs so far %v)", st.Seq, lastSeq, seqs)
			}
			lastSeq = st.Seq
			seqs = append(seqs, st.Seq)
			if len(states) == 0 || states[len(states)-1] != st.State {
				states = append(states, st.State)
			}
			if protocol.Final(st.State) && results == 0 {
				finalState = true
			}
		case *pb.WatchEvent_Log:
			c := e.Log
			idsOK = idsOK && bytes.Equal(c.LeaseId, l.LeaseId) && c.Epoch == l.Epoch
			if len(c.Data) > protocol.MaxLogChunk {
				logErr = fmt.Sprintf("a LogChunk of %d bytes", len(c.Data))
			}
			if c.Offset != offsets[c.Stream] && logErr == "" {
				logErr = fmt.Sprintf("%s chunk at offset %d, want %d", c.Stream, c.Offset, offsets[c.Stream])
			}
			offsets[c.Stream] = c.Offset + uint64(len(c.Data))
			logs[c.Stream] = append(logs[c.Stream], c.Data...)
		case *pb.WatchEvent_Result:
			idsOK = idsOK && bytes.Equal(e.Result.LeaseId, l.LeaseId) && e.Result.Epoch == l.Epoch
			results++
			resultAt = i
		case *pb.WatchEvent_Error:
			s.fail("watch.result", "an error event %s %q", e.Error.Code, e.Error.Message)
		}
	}
	s.expect("watch.ids", idsOK, "an event of another lease or epoch than %x epoch %d", l.LeaseId, l.Epoch)
	if len(seqs) > 0 {
		s.pass("watch.seq")
	}
	if results != 1 || resultAt != len(w.events)-1 || !w.closed {
		s.fail("watch.result", "%d Result(s), the last at event %d of %d; stream closed cleanly: %v (%v)", results, resultAt+1, len(w.events), w.closed, w.err)
	} else {
		s.pass("watch.result")
	}
	res := w.result()
	if res == nil {
		return nil
	}
	id := "watch.final-status"
	if rewatch {
		id = "watch.rewatch"
	}
	s.expect(id, finalState && states[len(states)-1] == res.State, "no Status with the final state %s before the Result (states seen: %v)", res.State, states)
	if !rewatch {
		s.checkTransitions(states, res.State)
	}
	// Logs: contiguous, and what was kept hashes to the Result's CIDs.
	for _, c := range []struct {
		st        pb.LogStream
		cid       []byte
		truncated bool
	}{{pb.LogStream_LOG_STREAM_STDOUT, res.StdoutCid, res.StdoutTruncated}, {pb.LogStream_LOG_STREAM_STDERR, res.StderrCid, res.StderrTruncated}} {
		// A re-watch gets a finished run's logs only while the provider
		// still has them (6.3): none streamed is no fault there.
		if rewatch && offsets[c.st] == 0 {
			continue
		}
		if logErr == "" && len(c.cid) > 0 && !bytes.Equal(wire.SumCID(logs[c.st]).Bytes(), c.cid) {
			logErr = fmt.Sprintf("%s as streamed (%d bytes) does not hash to the Result's CID", c.st, len(logs[c.st]))
		}
	}
	s.expect("watch.logs", logErr == "", "%s", logErr)
	if rewatch {
		return res
	}
	// The Result's own fields.
	switch {
	case res.State != want && want == pb.LeaseState_LEASE_STATE_EXPIRED:
		// state.expired reports it.
	case res.State != want:
		s.fail("result.fields", "want %s, got %s", want, resultSummary(res))
	case want == pb.LeaseState_LEASE_STATE_SUCCEEDED && (res.ExitCode != 0 || protocol.CheckDataCID(res.OutputCid) != nil || res.StartedAtMs == 0 || res.Error != nil):
		s.fail("result.fields", "a SUCCEEDED Result with exit code %d, output_cid %x, started_at_ms %d, error %v", res.ExitCode, res.OutputCid, res.StartedAtMs, res.Error)
	case res.EndedAtMs < res.StartedAtMs:
		s.fail("result.fields", "ended_at_ms %d before started_at_ms %d", res.EndedAtMs, res.StartedAtMs)
	case want == pb.LeaseState_LEASE_STATE_CANCELLED && res.Error != nil:
		s.fail("result.fields", "a CANCELLED Result with error %s %q", res.Error.Code, res.Error.Message)
	case want == pb.LeaseState_LEASE_STATE_EXPIRED && res.GetError().GetCode() != pb.Code_CODE_EXPIRED:
		s.fail("result.fields", "an EXPIRED Result with error %v, want CODE_EXPIRED", res.GetError())
	case want == pb.LeaseState_LEASE_STATE_FAILED && res.Error == nil:
		// The kit's FAILED runs fail on the provider's side (a module not
		// found, not matching): the Result names the cause (6.3).
		s.fail("result.fields", "a FAILED Result with no error")
	default:
		s.pass("result.fields")
	}
	return res
}

// checkTransitions checks the distinct states a watch reported follow
// section 9 and end in final.
func (s *provSuite) checkTransitions(states []pb.LeaseState, final pb.LeaseState) {
	seen := states
	if len(seen) == 0 || seen[len(seen)-1] != final {
		seen = append(seen, final)
	}
	for i := 1; i < len(seen); i++ {
		if !protocol.CanTransition(seen[i-1], seen[i]) {
			s.fail("state.transitions", "%s -> %s (states %v)", seen[i-1], seen[i], seen)
			return
		}
	}
	for i, st := range seen {
		if st == pb.LeaseState_LEASE_STATE_RUNNING && i > 0 && seen[i-1] != pb.LeaseState_LEASE_STATE_FETCHING {
			s.fail("state.transitions", "RUNNING not after FETCHING (states %v)", seen)
			return
		}
	}
	s.pass("state.transitions")
}

// checkRewatch checks a watch of a lease already final.
func (s *provSuite) checkRewatch(w *watched, first *pb.Result) {
	res := s.checkWatch(w, run{lease: &pb.Lease{LeaseId: first.LeaseId, Epoch: first.Epoch}}, first.State, true)
	if res != nil && !proto.Equal(res, first) {
		s.fail("watch.rewatch", "the Result differs from the first watch's")
	}
	if len(w.events) > 0 && w.events[0].GetStatus() != nil && w.events[0].GetStatus().State != first.State {
		s.fail("watch.rewatch", "the first Status is %s, the lease is %s", w.events[0].GetStatus().State, first.State)
	}
}

// checkReceipt checks a Result's receipt (SPEC 6.4) and returns it opened.
func (s *provSuite) checkReceipt(res *pb.Result, r run, w *watched) *pb.UsageReceipt {
	rec := new(pb.UsageReceipt)
	signer, _, err := record.Open(res.Receipt, rec)
	if err != nil {
		s.fail("receipt.signed", "the receipt of %s does not open: %v (%s)", res.State, err, protocol.CodeOf(err))
		return nil
	}
	if signer != s.target || !bytes.Equal(rec.Provider, []byte(signer)) {
		s.fail("receipt.signed", "signer %s, UsageReceipt.provider %x, provider %s", signer, rec.Provider, s.target)
		return nil
	}
	s.pass("receipt.signed")
	var kept uint64
	for _, ev := range w.events {
		if c := ev.GetLog(); c != nil {
			kept += uint64(len(c.Data))
		}
	}
	want := r.job.Job.Task.Resources
	switch {
	case !bytes.Equal(rec.Requester, []byte(s.self)):
		s.fail("receipt.fields", "requester %x, want the kit", rec.Requester)
	case !bytes.Equal(rec.LeaseId, r.lease.LeaseId) || rec.Epoch != r.lease.Epoch || !bytes.Equal(rec.JobCid, r.lease.JobCid):
		s.fail("receipt.fields", "lease %x epoch %d job %x, want %x epoch %d job %x", rec.LeaseId, rec.Epoch, rec.JobCid, r.lease.LeaseId, r.lease.Epoch, r.lease.JobCid)
	case !proto.Equal(rec.Reserved, want):
		s.fail("receipt.fields", "reserved %v, want the job's %v", rec.Reserved, want)
	case !proto.Equal(rec.Price, r.offer.Price):
		s.fail("receipt.fields", "price %v, want the offer's %v", rec.Price, r.offer.Price)
	case rec.Amount.GetCurrency() != r.offer.Total.GetCurrency():
		s.fail("receipt.fields", "amount in %q, the offer's total in %q", rec.Amount.GetCurrency(), r.offer.Total.GetCurrency())
	case !bytes.Equal(rec.OutputCid, res.OutputCid) || rec.OutputSize != res.OutputSize:
		s.fail("receipt.fields", "output %x (%d bytes), the Result's %x (%d bytes)", rec.OutputCid, rec.OutputSize, res.OutputCid, res.OutputSize)
	case rec.EndedAtMs < rec.StartedAtMs:
		s.fail("receipt.fields", "ended_at_ms %d before started_at_ms %d", rec.EndedAtMs, rec.StartedAtMs)
	case rec.EgressBytes != kept+rec.OutputSize:
		s.fail("receipt.fields", "egress_bytes %d, want the %d log bytes streamed + output_size %d", rec.EgressBytes, kept, rec.OutputSize)
	case len(rec.Nonce) != protocol.NonceSize:
		s.fail("receipt.fields", "nonce of %d bytes", len(rec.Nonce))
	default:
		s.pass("receipt.fields")
	}
	// The amount, from the receipt's own fields (5.5).
	d := time.Duration(rec.EndedAtMs-rec.StartedAtMs) * time.Millisecond
	if rec.EndedAtMs < rec.StartedAtMs {
		d = 0
	}
	compute, err := protocol.Cost(rec.Reserved, rec.Price, d)
	if err != nil {
		s.fail("receipt.amount", "cost(%v, %v, %v): %v", rec.Reserved, rec.Price, d, err)
		return rec
	}
	egress, err := protocol.EgressNanos(rec.EgressBytes, rec.Price.GetEgressNanosPerGib())
	if err != nil {
		egress = 0 // an overflow is not billed (5.5)
	}
	wantNanos := min(compute.Nanos, r.offer.Total.GetNanos()) + egress
	s.expect("receipt.amount", rec.Amount.GetNanos() == wantNanos,
		"%s receipt bills %d nanos for %d ms (ended_at_ms %d - started_at_ms %d); min(cost %d, total %d) + egress %d = %d",
		res.State, rec.Amount.GetNanos(), d.Milliseconds(), rec.EndedAtMs, rec.StartedAtMs, compute.Nanos, r.offer.Total.GetNanos(), egress, wantNanos)
	return rec
}

// countersign returns the kit's countersignature of a receipt envelope.
func (s *provSuite) countersign(env []byte) []byte {
	return s.seal(s.key, &pb.Countersignature{ReceiptHash: receiptHash(env), Requester: []byte(s.self), SignedAtMs: protocol.UnixMs(s.now())})
}

func (s *provSuite) submitReceipt(ctx context.Context, env []byte, _ *pb.UsageReceipt) {
	sub := &pb.ReceiptSubmit{Receipt: env, Countersignature: s.countersign(env)}
	for i := range 2 {
		a, err := s.c.receipt(ctx, sub)
		if err != nil || !a.Accepted {
			s.fail("receipt.submit", "submission %d: %v %v", i+1, err, a.GetError())
			return
		}
	}
	s.pass("receipt.submit")
}

// receiptRefusals submits receipts and countersignatures a provider must
// refuse (SPEC 6.4).
func (s *provSuite) receiptRefusals(ctx context.Context, env []byte) {
	rec := new(pb.UsageReceipt)
	if _, _, err := record.Open(env, rec); err != nil {
		s.skip("receipt.refused", "no receipt to submit")
		return
	}
	// A receipt it did not issue: the same, signed by the kit.
	forged := proto.Clone(rec).(*pb.UsageReceipt)
	forged.Provider = []byte(s.self)
	fenv := s.seal(s.key, forged)
	cases := []struct {
		what string
		sub  *pb.ReceiptSubmit
		want pb.Code
	}{
		{"a receipt signed by the kit, not the provider", &pb.ReceiptSubmit{Receipt: fenv, Countersignature: s.countersign(fenv)}, pb.Code_CODE_WRONG_SIGNER},
		{"a countersignature by another requester", &pb.ReceiptSubmit{Receipt: env, Countersignature: s.seal(s.other,
			&pb.Countersignature{ReceiptHash: receiptHash(env), Requester: []byte(mustID(s.other)), SignedAtMs: protocol.UnixMs(s.now())})}, pb.Code_CODE_WRONG_SIGNER},
		{"a receipt_hash of other bytes", &pb.ReceiptSubmit{Receipt: env, Countersignature: s.seal(s.key,
			&pb.Countersignature{ReceiptHash: receiptHash(fenv), Requester: []byte(s.self), SignedAtMs: protocol.UnixMs(s.now())})}, pb.Code_CODE_MALFORMED},
		{"a lease in place of a countersignature", &pb.ReceiptSubmit{Receipt: env, Countersignature: s.seal(s.key, s.leaseMsg(&pb.Offer{Nonce: random(16)}, s.job, random(16), 1))}, pb.Code_CODE_WRONG_DOMAIN},
	}
	for _, c := range cases {
		a, err := s.c.receipt(ctx, c.sub)
		if err != nil || a.Accepted || a.GetError().GetCode() != c.want {
			s.fail("receipt.refused", "%s: want %s, got %v %v", c.what, c.want, a, err)
			return
		}
	}
	s.pass("receipt.refused")
}

// limitChecks sends frames a provider must refuse (SPEC 2.2, 7).
func (s *provSuite) limitChecks(ctx context.Context) {
	// A frame one byte over each protocol's limit (2.2, 7): the length
	// prefix alone says so, and the answer comes before the body.
	tooLarge := []struct {
		id   p2pproto.ID
		max  int
		ans  proto.Message
		code func(proto.Message) pb.Code
	}{
		{protocol.OfferID, protocol.MaxOfferMsg, new(pb.OfferResponse), func(m proto.Message) pb.Code { return m.(*pb.OfferResponse).GetRefusal().GetCode() }},
		{protocol.LeaseID, protocol.MaxLeaseMsg, new(pb.LeaseAnswer), func(m proto.Message) pb.Code { return m.(*pb.LeaseAnswer).GetError().GetCode() }},
		{protocol.WatchID, protocol.MaxWatchMsg, new(pb.WatchEvent), func(m proto.Message) pb.Code { return m.(*pb.WatchEvent).GetError().GetCode() }},
		{protocol.ReceiptID, protocol.MaxReceiptMsg, new(pb.ReceiptAck), func(m proto.Message) pb.Code { return m.(*pb.ReceiptAck).GetError().GetCode() }},
		{protocol.BlocksID, protocol.MaxBlocksMsg, new(pb.BlockResponse), func(m proto.Message) pb.Code { return m.(*pb.BlockResponse).GetError().GetCode() }},
	}
	ok := true
	for _, c := range tooLarge {
		err := s.c.raw(ctx, c.id, binary.AppendUvarint(nil, uint64(c.max)+1), c.ans)
		if err != nil || c.code(c.ans) != pb.Code_CODE_TOO_LARGE {
			s.fail("limits.too-large", "a frame of %d bytes on %s: want CODE_TOO_LARGE, got %v %v", c.max+1, c.id, c.ans, err)
			ok = false
		}
	}
	if ok {
		s.pass("limits.too-large")
	}
	for _, c := range []struct {
		what string
		b    []byte
	}{
		{"a non-minimal length prefix 80 00", []byte{0x80, 0x00}},
		{"a frame cut inside its body", append(binary.AppendUvarint(nil, 10), 1, 2, 3)},
		{"a body that is not an OfferRequest", append(binary.AppendUvarint(nil, 2), 0xff, 0xff)},
	} {
		var a pb.OfferResponse
		err := s.c.raw(ctx, protocol.OfferID, c.b, &a)
		if err != nil || a.GetRefusal().GetCode() != pb.Code_CODE_MALFORMED {
			s.fail("limits.malformed", "%s: want CODE_MALFORMED, got %s %v", c.what, describeOfferResponse(&a), err)
			return
		}
	}
	s.pass("limits.malformed")
}

// otherRequester connects as a second requester and checks that the kit's
// lease l is unknown to it: a cancel and a watch of it are CODE_UNKNOWN_LEASE
// (6.2, 6.3).
func (s *provSuite) otherRequester(ctx context.Context, l *pb.Lease) {
	h, err := newHost(s.other, onLoopback(s.o.Target.Addrs))
	if err != nil {
		s.skip("cancel.unknown", "start a second host: %v", err)
		return
	}
	defer h.Close()
	if err := h.Connect(ctx, s.o.Target); err != nil {
		s.skip("cancel.unknown", "connect a second host: %v", err)
		return
	}
	c := &conn{h: h, to: s.target}
	ca, err := c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Cancel{Cancel: &pb.Cancel{LeaseId: l.LeaseId, Epoch: l.Epoch}}})
	s.expect("cancel.unknown", err == nil && !ca.Accepted && ca.GetError().GetCode() == pb.Code_CODE_UNKNOWN_LEASE, "another requester's cancel of the kit's lease: %v %v", ca, err)
	w := c.watch(ctx, &pb.WatchRequest{LeaseId: l.LeaseId, Epoch: l.Epoch}, nil)
	s.expect("watch.unknown", len(w.events) == 1 && w.events[0].GetError().GetCode() == pb.Code_CODE_UNKNOWN_LEASE, "another requester's watch of the kit's lease: %s %v", summary(w.events), w.err)
}

// blocks sends one BlockRequest and reads the answers until the holder
// closes the stream, or an error answer.
func (c *conn) blocks(ctx context.Context, req *pb.BlockRequest) ([]*pb.BlockResponse, error) {
	return answers(ctx, c, protocol.BlocksID, req, 1<<8, func(b *pb.BlockResponse) bool { return b.Error != nil })
}

// answers writes one request on a new stream of protocol id and reads the
// answers until the peer closes the stream (io.EOF is no error), last says an
// answer was the last, or limit answers came.
func answers[M any, PM interface {
	*M
	proto.Message
}](ctx context.Context, c *conn, id p2pproto.ID, req proto.Message, limit int, last func(PM) bool) ([]PM, error) {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	st, r, w, err := c.stream(ctx, id)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := w.WriteMsg(req); err != nil {
		return nil, err
	}
	var out []PM
	for range limit {
		m := PM(new(M))
		if err := r.ReadMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, m)
		if last(m) {
			return out, nil
		}
	}
	return out, fmt.Errorf("more than %d answers on %s", limit, id)
}

// blockChecks fetches the main run's output root as the lease's requester,
// to whom the provider granted it, and asks what a holder must refuse
// (SPEC 6.6): the root by another requester, a CID not reached from the
// root, too many CIDs, a root that does not parse.
func (s *provSuite) blockChecks(ctx context.Context, res *pb.Result) {
	root, err := cid.Cast(res.OutputCid)
	if err != nil {
		s.fail("blocks.grant", "the Result's output_cid %x does not parse: %v", res.OutputCid, err)
		return
	}
	// The root, twice: answered in the request's order, hashing to its CID.
	got, err := s.c.blocks(ctx, &pb.BlockRequest{Cids: [][]byte{root.Bytes(), root.Bytes()}, Root: root.Bytes()})
	ok := err == nil && len(got) == 2
	for _, b := range got {
		sum, serr := root.Prefix().Sum(b.Data)
		ok = ok && b.Error == nil && !b.Missing && bytes.Equal(b.Cid, root.Bytes()) && serr == nil && sum.Equals(root)
	}
	s.expect("blocks.grant", ok, "the output root asked twice by the lease's requester: %d answers %v, %v", len(got), blockSummary(got), err)

	refused := func(what string, c *conn, req *pb.BlockRequest, want ...pb.Code) {
		got, err := c.blocks(ctx, req)
		if err != nil || len(got) == 0 || !slices.Contains(want, got[len(got)-1].GetError().GetCode()) {
			s.fail("blocks.refused", "%s: want %v, got %s %v", what, want, blockSummary(got), err)
		}
	}
	stray := wire.SumCID([]byte("a block the output does not reach")).Bytes()
	refused("a CID not reached from the granted root", s.c, &pb.BlockRequest{Cids: [][]byte{stray}, Root: root.Bytes()}, pb.Code_CODE_UNAUTHORIZED)
	many := make([][]byte, 65)
	for i := range many {
		many[i] = root.Bytes()
	}
	refused("65 CIDs", s.c, &pb.BlockRequest{Cids: many, Root: root.Bytes()}, pb.Code_CODE_MALFORMED)
	// A root that does not parse is granted to no one either: two faults,
	// so either code (6.6).
	refused("a root that does not parse", s.c, &pb.BlockRequest{Cids: [][]byte{root.Bytes()}, Root: []byte("not a CID")}, pb.Code_CODE_MALFORMED, pb.Code_CODE_UNAUTHORIZED)
	if h, err := newHost(s.other, onLoopback(s.o.Target.Addrs)); err == nil {
		defer h.Close()
		if err := h.Connect(ctx, s.o.Target); err == nil {
			refused("the output root asked by another requester", &conn{h: h, to: s.target}, &pb.BlockRequest{Cids: [][]byte{root.Bytes()}, Root: root.Bytes()}, pb.Code_CODE_UNAUTHORIZED)
		}
	}
	s.pass("blocks.refused") // a failure recorded stays one
}

// blockSummary describes block answers in one short line.
func blockSummary(bs []*pb.BlockResponse) string {
	var b []byte
	for _, x := range bs {
		switch {
		case x.Error != nil:
			b = fmt.Appendf(b, "error(%s) ", x.Error.Code)
		case x.Missing:
			b = fmt.Appendf(b, "missing ")
		default:
			b = fmt.Appendf(b, "block(%d bytes) ", len(x.Data))
		}
	}
	return string(b)
}
