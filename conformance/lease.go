package conformance

import (
	"bytes"
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

func mustID(k crypto.PrivKey) peer.ID {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		panic(err) // an Ed25519 key always has a peer ID
	}
	return id
}

// leaseCase is a lease with one fault and the code it must be refused with.
type leaseCase struct {
	id, what string
	job      *record.SignedJob // the job the offer is asked for; default s.job
	build    func(o *pb.Offer, l *pb.Lease) []byte
	want     pb.Code
}

// leaseRefusals sends leases with exactly one fault each, every one under a
// fresh live offer, which it then declines (SPEC 6.2, 3).
func (s *provSuite) leaseRefusals(ctx context.Context) {
	big := proto.Clone(resources).(*pb.Resources)
	big.CpuMillis *= 2
	bigJob, err1 := s.newJob(s.o.Module, big, jobTimeout, 1)
	longJob, err2 := s.newJob(s.o.Module, resources, jobTimeout+time.Second, 1)
	v2Job, err3 := s.newJob(s.o.Module, resources, jobTimeout, 2)
	otherJob, err4 := s.newJob(s.o.Module, resources, jobTimeout, 1)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		s.skip("lease.job", "could not make the jobs: %v %v %v %v", err1, err2, err3, err4)
		return
	}
	badSig := func(env []byte) []byte {
		b := append([]byte(nil), env...)
		b[len(b)-1] ^= 1 // the signature is the envelope's last field
		return b
	}
	cases := []leaseCase{
		{"lease.bad-signature", "a lease with a flipped signature bit", nil, func(o *pb.Offer, l *pb.Lease) []byte { return badSig(s.seal(s.key, l)) }, pb.Code_CODE_BAD_SIGNATURE},
		{"lease.wrong-domain", "an offer-domain record in place of the lease", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			return s.seal(s.key, &pb.Offer{Provider: []byte(s.self), Requester: []byte(s.self), Nonce: random(16), RequestNonce: random(16), JobCid: l.JobCid,
				ExpiresAtMs: l.ExpiresAtMs})
		}, pb.Code_CODE_WRONG_DOMAIN},
		{"lease.wrong-signer", "a lease signed by another requester than the remote peer", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.Requester = []byte(mustID(s.other))
			return s.seal(s.other, l)
		}, pb.Code_CODE_WRONG_SIGNER},
		{"lease.expired", "a lease expired 1 s ago", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.ExpiresAtMs = protocol.UnixMs(s.now().Add(-time.Second))
			return s.seal(s.key, l)
		}, pb.Code_CODE_EXPIRED},
		{"lease.too-far-ahead", "a lease expiring in 10 min", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.ExpiresAtMs = protocol.UnixMs(s.now().Add(10 * time.Minute))
			return s.seal(s.key, l)
		}, pb.Code_CODE_TOO_FAR_AHEAD},
		{"lease.malformed", "epoch 0", nil, func(o *pb.Offer, l *pb.Lease) []byte { l.Epoch = 0; return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED},
		{"lease.malformed", "an 8-byte lease ID", nil, func(o *pb.Offer, l *pb.Lease) []byte { l.LeaseId = random(8); return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED},
		{"lease.malformed", "an 8-byte nonce", nil, func(o *pb.Offer, l *pb.Lease) []byte { l.Nonce = random(8); return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED},
		{"lease.wrong-provider", "a lease naming another provider", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.Provider = []byte(mustID(s.other))
			return s.seal(s.key, l)
		}, pb.Code_CODE_MALFORMED},
		{"lease.unknown-offer", "a lease naming an offer never made", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.OfferNonce = random(16)
			return s.seal(s.key, l)
		}, pb.Code_CODE_UNKNOWN_OFFER},
		{"lease.job", "a job_cid other than the offer's", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.JobCid, l.Job = otherJob.CID.Bytes(), otherJob.Envelope
			return s.seal(s.key, l)
		}, pb.Code_CODE_MALFORMED},
		{"lease.job", "a job whose CID is not job_cid", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.Job = otherJob.Envelope
			return s.seal(s.key, l)
		}, pb.Code_CODE_MALFORMED},
		{"lease.job", "instance 1 of a job of count 1", nil, func(o *pb.Offer, l *pb.Lease) []byte { l.Instance = 1; return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED},
		{"lease.job-signature", "a job with a flipped signature bit", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.Job = badSig(l.Job)
			return s.seal(s.key, l)
		}, pb.Code_CODE_BAD_SIGNATURE},
		{"lease.job-version", "a job of version 2", v2Job, func(o *pb.Offer, l *pb.Lease) []byte { return s.seal(s.key, l) }, pb.Code_CODE_UNSUPPORTED_VERSION},
		{"lease.over-offer", "a job asking twice the CPU of its offer", bigJob, func(o *pb.Offer, l *pb.Lease) []byte { return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED},
		{"lease.over-offer", "a job asking 1 s more than its offer's timeout", longJob, func(o *pb.Offer, l *pb.Lease) []byte { return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED},
		{"lease.heartbeat", "heartbeat_ms 10", nil, func(o *pb.Offer, l *pb.Lease) []byte { l.HeartbeatMs = 10; return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED},
		{"lease.heartbeat", "heartbeat_ms 60001", nil, func(o *pb.Offer, l *pb.Lease) []byte { l.HeartbeatMs = 60001; return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED},
	}
	cases = append(cases, s.envelopeCases()...)
	s.keyTypeCase(ctx)
	cases = append(cases, s.jobCases()...)
	for _, c := range cases {
		if ctx.Err() != nil {
			return
		}
		job := c.job
		if job == nil {
			job = s.job
		}
		// The offer is asked for the suite's usual resources and timeout,
		// whatever the job asks.
		req := s.request(job)
		req.Resources = proto.Clone(resources).(*pb.Resources)
		req.TimeoutMs = uint64(jobTimeout / time.Millisecond)
		o, _, err := s.getOffer(ctx, req)
		if err != nil {
			s.skip(c.id, "no offer to lease: %v", err)
			continue
		}
		env := c.build(o, s.leaseMsg(o, job, random(protocol.LeaseIDSize), 1))
		a, err := s.sendLease(ctx, env)
		switch {
		case err != nil:
			s.fail(c.id, "%s: %v", c.what, err)
		case a.Accepted || a.GetError().GetCode() != c.want:
			s.fail(c.id, "%s: want %s, got accepted %v, %v", c.what, c.want, a.Accepted, a.GetError())
		default:
			s.pass(c.id)
		}
		// A refused lease that opens is answered with its lease_id and
		// epoch (6.2).
		if l, oerr := record.OpenLease(env, s.now()); err == nil && oerr == nil && !a.Accepted {
			s.expect("lease.refusal-ids", bytes.Equal(a.LeaseId, l.LeaseId) && a.Epoch == l.Epoch,
				"%s: the refusal names lease %x epoch %d, the lease %x epoch %d", c.what, a.LeaseId, a.Epoch, l.LeaseId, l.Epoch)
		}
		s.declineAck(ctx, o)
	}
}

// epochRun leases a slot whose module fetch the kit holds, leases it again
// at epoch 2, checks the fencing of epoch 1, then cancels epoch 2 (SPEC 6.2,
// 6.3, 9).
func (s *provSuite) epochRun(ctx context.Context) {
	mod := variant(s.o.Module, "conformance-epochs")
	cid := wire.SumCID(mod).Bytes()
	s.mods.add(cid, mod, true)
	defer s.mods.release(cid)
	job, err := s.newJob(mod, resources, jobTimeout, 1)
	if err != nil {
		s.skip("lease.higher-epoch", "%v", err)
		return
	}
	id := random(protocol.LeaseIDSize)
	o1, _, err := s.getOffer(ctx, s.request(job))
	if err != nil {
		s.skip("lease.higher-epoch", "no offer: %v", err)
		return
	}
	if code, seen := s.leaseCode(ctx, s.seal(s.key, s.leaseMsg(o1, job, id, 1))); code != 0 {
		s.fail("lease.accept", "a lease of epoch 1: %s", seen)
		return
	}
	o2, _, err := s.getOffer(ctx, s.request(job))
	if err != nil {
		s.skip("lease.higher-epoch", "no second offer: %v", err)
		return
	}
	l2 := s.leaseMsg(o2, job, id, 2)
	code, seen := s.leaseCode(ctx, s.seal(s.key, l2))
	if code != 0 {
		s.fail("lease.higher-epoch", "a lease of epoch 2 for a slot held at epoch 1: %s", seen)
		return
	}
	s.pass("lease.higher-epoch")
	// Epoch 1 is fenced: a lease, a cancel and a watch of it are stale.
	if o3, _, err := s.getOffer(ctx, s.request(job)); err == nil {
		s.mustRefuse(ctx, "lease.stale-epoch", "a lease of epoch 1 after epoch 2", s.seal(s.key, s.leaseMsg(o3, job, id, 1)), pb.Code_CODE_STALE_EPOCH)
		s.mustRefuse(ctx, "lease.same-epoch", "a lease of epoch 2 under another offer", s.seal(s.key, s.leaseMsg(o3, job, id, 2)), pb.Code_CODE_REPLAYED)
		s.declineAck(ctx, o3)
	}
	ca, err := s.c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Cancel{Cancel: &pb.Cancel{LeaseId: id, Epoch: 1}}})
	s.expect("lease.stale-epoch", err == nil && !ca.Accepted && ca.GetError().GetCode() == pb.Code_CODE_STALE_EPOCH, "a cancel of epoch 1 after epoch 2: %v %v", ca, err)
	w1 := s.c.watch(ctx, &pb.WatchRequest{LeaseId: id, Epoch: 1}, nil)
	s.expect("lease.stale-epoch", len(w1.events) == 1 && w1.events[0].GetError().GetCode() == pb.Code_CODE_STALE_EPOCH,
		"a watch of epoch 1 after epoch 2: %s %v", summary(w1.events), w1.err)

	// Leases it does not hold: never made, an ID of another size than 16
	// bytes (7), an epoch never committed (6.2, 6.3).
	for _, u := range []struct {
		what  string
		id    []byte
		epoch uint64
	}{{"a lease never made", random(16), 1}, {"an 8-byte lease ID", random(8), 1}, {"epoch 3 of a lease at epoch 2", id, 3}} {
		ca, err = s.c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Cancel{Cancel: &pb.Cancel{LeaseId: u.id, Epoch: u.epoch}}})
		s.expect("cancel.unknown", err == nil && !ca.Accepted && ca.GetError().GetCode() == pb.Code_CODE_UNKNOWN_LEASE, "a cancel of %s: %v %v", u.what, ca, err)
		s.expect("lease.refusal-ids", err != nil || (bytes.Equal(ca.LeaseId, u.id) && ca.Epoch == u.epoch), "the answer to a cancel of %s names lease %x epoch %d", u.what, ca.GetLeaseId(), ca.GetEpoch())
		wu := s.c.watch(ctx, &pb.WatchRequest{LeaseId: u.id, Epoch: u.epoch}, nil)
		s.expect("watch.unknown", len(wu.events) == 1 && wu.events[0].GetError().GetCode() == pb.Code_CODE_UNKNOWN_LEASE, "a watch of %s: %s %v", u.what, summary(wu.events), wu.err)
	}

	// Watch epoch 2 (held in FETCHING) on two streams at once; cancel it
	// once each has had two Statuses (one a heartbeat).
	var ws [2]*watched
	begun := make(chan struct{}, 2)
	done := make(chan struct{}, 2)
	for i := range ws {
		go func() {
			n := 0
			ws[i] = s.c.watch(ctx, &pb.WatchRequest{LeaseId: id, Epoch: 2}, func(ev *pb.WatchEvent) bool {
				if ev.GetStatus() != nil {
					if n++; n == 2 {
						begun <- struct{}{}
					}
				}
				return false
			})
			done <- struct{}{}
		}()
	}
	ended := 0
	for need := 2; need > 0; need-- {
		select {
		case <-begun:
		case <-done: // ended before two Statuses: checkWatch says how
			ended++
		case <-ctx.Done():
			return
		}
	}
	ca, err = s.c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Cancel{Cancel: &pb.Cancel{LeaseId: id, Epoch: 2}}})
	if err != nil || !ca.Accepted || !bytes.Equal(ca.LeaseId, id) || ca.Epoch != 2 {
		s.fail("cancel.live", "a cancel of a live lease: %v %v", ca, err)
	}
	for ; ended < 2; ended++ {
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
	s.checkSeveral(ws[0], ws[1])
	w := ws[0]
	res := s.checkWatch(w, run{offer: o2, lease: l2, job: job}, pb.LeaseState_LEASE_STATE_CANCELLED, false)
	s.expect("cancel.live", res != nil && res.State == pb.LeaseState_LEASE_STATE_CANCELLED && len(res.Receipt) > 0, "the Result after the cancel: %s", resultSummary(res))
	if res != nil {
		if rec := s.checkReceipt(res, run{offer: o2, lease: l2, job: job}, w); rec != nil {
			s.submitReceipt(ctx, res.Receipt, rec)
		}
	}
	// Epoch 1 stays stale once epoch 2 has ended (6.2).
	if o4, _, err := s.getOffer(ctx, s.request(job)); err == nil {
		s.mustRefuse(ctx, "lease.stale-epoch", "a lease of epoch 1 after epoch 2 ended", s.seal(s.key, s.leaseMsg(o4, job, id, 1)), pb.Code_CODE_STALE_EPOCH)
		s.declineAck(ctx, o4)
	}
}

// checkSeveral checks two watch streams of one lease epoch: Status.seq is
// strictly increasing over all the streams of a lease epoch (6.3), so no seq
// comes on both but the final Status's, which is the same message on each.
func (s *provSuite) checkSeveral(a, b *watched) {
	seqs := func(w *watched) (live map[uint64]bool, final *pb.Status) {
		live = map[uint64]bool{}
		for _, ev := range w.events {
			if st := ev.GetStatus(); st != nil {
				if protocol.Final(st.State) {
					final = st
				} else {
					live[st.Seq] = true
				}
			}
		}
		return live, final
	}
	la, fa := seqs(a)
	lb, fb := seqs(b)
	for q := range la {
		if lb[q] {
			s.fail("watch.several", "seq %d sent on both streams of the epoch (%s | %s)", q, summary(a.events), summary(b.events))
			return
		}
	}
	s.expect("watch.several", fa != nil && fb != nil && fa.Seq == fb.Seq && fa.State == fb.State,
		"final Status %v on one stream, %v on the other", fa, fb)
}

// moduleFailures leases jobs whose module the kit does not have, or serves
// with other bytes (SPEC 6.5, 9).
func (s *provSuite) moduleFailures(ctx context.Context) {
	// chunks splits m as a holder does: contiguous chunks of at most
	// MaxModuleChunk, each with its size, the last flagged; at least two,
	// for the faults between chunks.
	chunks := func(m []byte) []*pb.ModuleChunk {
		n := min(uint64(protocol.MaxModuleChunk), uint64(len(m)+1)/2)
		var out []*pb.ModuleChunk
		for off := uint64(0); off < uint64(len(m)); off += n {
			end := min(off+n, uint64(len(m)))
			out = append(out, &pb.ModuleChunk{Size: uint64(len(m)), Offset: off, Data: m[off:end], Last: end == uint64(len(m))})
		}
		return out
	}
	notWasm := []byte("these bytes are not WebAssembly")
	notCommand := []byte("\x00asm\x01\x00\x00\x00") // a valid module with no _start
	for _, c := range []struct {
		id, name string
		mod      []byte                           // the job's module; default a variant of Module named name
		serve    func(m []byte) []*pb.ModuleChunk // what the kit answers; nil: no such module
		code     pb.Code
	}{
		{"module.not-found", "conformance-missing", nil, nil, pb.Code_CODE_MODULE_NOT_FOUND},
		{"module.mismatch", "conformance-mismatch", nil, func([]byte) []*pb.ModuleChunk { return chunks(s.o.Module) }, pb.Code_CODE_MODULE_MISMATCH}, // bytes of another CID
		{"module.bad-chunks", "conformance-gap", nil, func(m []byte) []*pb.ModuleChunk {
			cs := chunks(m)
			cs[1].Offset, cs[1].Data = cs[1].Offset+1, cs[1].Data[1:] // a byte skipped
			return cs
		}, pb.Code_CODE_MALFORMED},
		{"module.bad-chunks", "conformance-size", nil, func(m []byte) []*pb.ModuleChunk {
			cs := chunks(m)
			cs[len(cs)-1].Size++ // the size changes
			return cs
		}, pb.Code_CODE_MALFORMED},
		{"module.bad-chunks", "conformance-short", nil, func(m []byte) []*pb.ModuleChunk {
			cs := chunks(m)
			for _, c := range cs {
				c.Size += 8 // the bytes end before their size
			}
			return cs
		}, pb.Code_CODE_MALFORMED},
		{"module.invalid", "not WebAssembly", notWasm, chunks, pb.Code_CODE_MALFORMED},
		{"module.invalid", "not a WASI command", notCommand, chunks, pb.Code_CODE_EXECUTOR_UNSUPPORTED},
	} {
		mod := c.mod
		if mod == nil {
			mod = variant(s.o.Module, c.name)
		}
		cid := wire.SumCID(mod).Bytes()
		if c.serve != nil {
			s.mods.serveChunks(cid, c.serve(mod))
		}
		job, err := s.newJob(mod, resources, jobTimeout, 1)
		if err != nil {
			s.skip(c.id, "%v", err)
			continue
		}
		res, _ := s.leaseAndWatch(ctx, job, time.Minute, pb.LeaseState_LEASE_STATE_FAILED)
		s.expect(c.id, res != nil && res.State == pb.LeaseState_LEASE_STATE_FAILED && res.GetError().GetCode() == c.code,
			"%s: the Result: %s, want FAILED with %s", c.name, resultSummary(res), c.code)
	}
}

// expiryRun leases a job whose module fetch the kit holds past the lease's
// expiry: the lease must end EXPIRED (SPEC 9).
func (s *provSuite) expiryRun(ctx context.Context) {
	mod := variant(s.o.Module, "conformance-expiry")
	cid := wire.SumCID(mod).Bytes()
	s.mods.add(cid, mod, true)
	defer s.mods.release(cid)
	job, err := s.newJob(mod, resources, jobTimeout, 1)
	if err != nil {
		s.skip("state.expired", "%v", err)
		return
	}
	res, seen := s.leaseAndWatch(ctx, job, 3*time.Second, pb.LeaseState_LEASE_STATE_EXPIRED)
	if res == nil && seen != "" {
		s.skip("state.expired", "%s", seen)
		return
	}
	s.expect("state.expired", res != nil && res.State == pb.LeaseState_LEASE_STATE_EXPIRED, "a lease not started by its expiry: Result %s", resultSummary(res))
}

// leaseAndWatch leases job under a fresh offer, with the lease expiring in
// ttl, watches it to its end and checks the watch, the Result and receipt.
func (s *provSuite) leaseAndWatch(ctx context.Context, job *record.SignedJob, ttl time.Duration, want pb.LeaseState) (*pb.Result, string) {
	o, _, err := s.getOffer(ctx, s.request(job))
	if err != nil {
		return nil, "no offer: " + err.Error()
	}
	l := s.leaseMsg(o, job, random(protocol.LeaseIDSize), 1)
	l.ExpiresAtMs = protocol.UnixMs(s.now().Add(ttl))
	if code, seen := s.leaseCode(ctx, s.seal(s.key, l)); code != 0 {
		s.declineAck(ctx, o)
		return nil, "the lease was refused: " + seen
	}
	w := s.c.watch(ctx, &pb.WatchRequest{LeaseId: l.LeaseId, Epoch: l.Epoch}, nil)
	r := run{offer: o, lease: l, job: job}
	res := s.checkWatch(w, r, want, false)
	if res != nil {
		if rec := s.checkReceipt(res, r, w); rec != nil {
			s.submitReceipt(ctx, res.Receipt, rec)
		}
	}
	return res, ""
}
