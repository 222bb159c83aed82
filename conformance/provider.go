package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// ProviderOptions configures RunProvider. Target and Module are required.
type ProviderOptions struct {
	// Target is the provider: its peer ID and addresses.
	Target peer.AddrInfo
	// Module is a WASI preview 1 command that exits 0 quickly, such as
	// examples/wasm/hello.wasm; the kit serves it (SPEC 6.5) and derives
	// from it modules of other CIDs for the checks that need a fetch held.
	Module []byte
	// Args are the module's arguments.
	Args []string
	// Key is the kit's identity, as requester and customer; default a new
	// Ed25519 key.
	Key crypto.PrivKey
	// Now is the kit's clock; default time.Now.
	Now func() time.Time
	// NoDHT skips the DHT checks (capacity record, facet keys).
	NoDHT bool
}

// Validate reports what is missing or wrong in o.
func (o *ProviderOptions) Validate() error {
	if o.Target.ID == "" {
		return errors.New("conformance: no provider peer ID: give a multiaddr ending in /p2p/<peer ID>")
	}
	if len(o.Target.Addrs) == 0 {
		return fmt.Errorf("conformance: no address for provider %s", o.Target.ID)
	}
	if len(o.Module) < 8 || !bytes.Equal(o.Module[:4], []byte("\x00asm")) {
		return errors.New("conformance: the module is not WebAssembly: give the bytes of a WASI command such as examples/wasm/hello.wasm")
	}
	if o.Key != nil && o.Key.Type() != crypto.Ed25519 {
		return errors.New("conformance: the kit's key must be Ed25519 (SPEC 3.1)")
	}
	return nil
}

// resources is what every job of the suite asks: small, so that the
// suite's offers fit any provider.
var resources = &pb.Resources{CpuMillis: 100, MemoryBytes: 32 << 20, ScratchBytes: 1 << 20}

// jobTimeout is the timeout of the suite's jobs.
const jobTimeout = 60 * time.Second

// provSuite is one run of the provider suite.
type provSuite struct {
	*recorder
	o      ProviderOptions
	h      host.Host
	c      *conn
	key    crypto.PrivKey
	other  crypto.PrivKey // a second requester's key, for wrong signers
	self   peer.ID
	target peer.ID
	mods   *moduleServer
	blocks *blockServer
	now    func() time.Time
	capRec *pb.CapacityRecord
	job    *record.SignedJob // the job of the main run, of Module
}

// RunProvider runs the provider suite against o.Target. It returns an error
// only when the suite cannot run at all (bad options, provider unreachable);
// a provider that misbehaves gets a report with failures. It takes minutes at
// most, bounded by ctx.
func RunProvider(ctx context.Context, o ProviderOptions) (Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &provSuite{recorder: newRecorder(ProviderChecks), o: o, now: o.Now, target: o.Target.ID, mods: newModuleServer(), blocks: newBlockServer()}
	var err error
	if s.key = o.Key; s.key == nil {
		if s.key, _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
			return nil, err
		}
	}
	if s.other, _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
		return nil, err
	}
	if s.h, err = newHost(s.key, onLoopback(o.Target.Addrs)); err != nil {
		return nil, fmt.Errorf("conformance: start the kit's host: %w", err)
	}
	defer s.h.Close()
	defer s.mods.releaseAll()
	s.self = s.h.ID()
	s.h.SetStreamHandler(protocol.ModuleID, s.mods.handle)
	s.h.SetStreamHandler(protocol.BlocksID, s.blocks.handle)
	if err := s.h.Connect(ctx, o.Target); err != nil {
		return nil, fmt.Errorf("conformance: connect to %s: %w", o.Target.ID, err)
	}
	s.c = &conn{h: s.h, to: o.Target.ID}
	s.mods.add(wire.SumCID(o.Module).Bytes(), o.Module, false)
	if s.job, err = s.newJob(o.Module, resources, jobTimeout, 1); err != nil {
		return nil, err
	}

	if o.NoDHT {
		for _, id := range []string{"capacity.record", "capacity.signer", "facet.keys", "facet.one-shard"} {
			s.skip(id, "DHT checks not asked for")
		}
	} else {
		s.dhtChecks(ctx)
	}
	main, req, err := s.offerChecks(ctx)
	if err != nil {
		return nil, err
	}
	s.limitChecks(ctx)
	if main != nil {
		s.mainRun(ctx, main, req)
	} else {
		s.skip("lease.accept", "no offer to lease")
	}
	s.leaseRefusals(ctx)
	s.epochRun(ctx)
	s.moduleFailures(ctx)
	s.inputRuns(ctx)
	s.expiryRun(ctx)
	if err := ctx.Err(); err != nil {
		return s.report(), fmt.Errorf("conformance: the suite did not finish: %w", err)
	}
	return s.report(), nil
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// variant returns a valid module of another CID: module with a custom
// section named name appended (a WebAssembly custom section changes nothing
// of what the module does).
func variant(module []byte, name string) []byte {
	body := binary.AppendUvarint(nil, uint64(len(name)))
	body = append(body, name...)
	out := slices.Clone(module)
	out = append(out, 0)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// newJob signs a job of module with the kit's key as the customer.
func (s *provSuite) newJob(module []byte, res *pb.Resources, timeout time.Duration, version uint32) (*record.SignedJob, error) {
	j := &pb.Job{Version: version, Name: "conformance", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task: &pb.Task{Engine: "wasm", ModuleCid: wire.SumCID(module).Bytes(), Args: s.o.Args,
			Resources: proto.Clone(res).(*pb.Resources), TimeoutMs: uint64(timeout / time.Millisecond)},
		Nonce: random(protocol.NonceSize)}
	if version != protocol.JobVersion {
		// Not a valid job, so SealJob refuses it: seal it as it is.
		env, err := record.Seal(s.key, j)
		if err != nil {
			return nil, err
		}
		return &record.SignedJob{Job: j, CID: wire.SumCID(mustCanonical(j)), Customer: s.self, Envelope: env}, nil
	}
	sj, err := record.SealJob(s.key, j)
	if err != nil {
		return nil, fmt.Errorf("conformance: sign the job: %w", err)
	}
	return sj, nil
}

func mustCanonical(m proto.Message) []byte {
	b, err := protocol.Canonical(m)
	if err != nil {
		panic(err) // the kit's own messages always encode
	}
	return b
}

// request returns a valid offer request for job.
func (s *provSuite) request(job *record.SignedJob) *pb.OfferRequest {
	return &pb.OfferRequest{Nonce: random(protocol.NonceSize), JobCid: job.CID.Bytes(), Executor: "wasm",
		Resources: proto.Clone(job.Job.Task.Resources).(*pb.Resources), TimeoutMs: job.Job.Task.TimeoutMs,
		ExpiresAtMs: protocol.UnixMs(s.now().Add(30 * time.Second))}
}

// getOffer sends req and opens the offer it brings.
func (s *provSuite) getOffer(ctx context.Context, req *pb.OfferRequest) (*pb.Offer, []byte, error) {
	resp, err := s.c.offer(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if r := resp.GetRefusal(); r != nil {
		return nil, nil, fmt.Errorf("refused: %s %q", r.Code, r.Message)
	}
	env := resp.GetOffer()
	o, err := record.OpenOffer(env, s.now())
	if err != nil {
		return nil, env, fmt.Errorf("the offer does not open: %w", err)
	}
	return o, env, nil
}

// refusal sends req and returns the code of its refusal, or a description
// of what came instead.
func (s *provSuite) offerRefusal(ctx context.Context, req *pb.OfferRequest) (pb.Code, string) {
	resp, err := s.c.offer(ctx, req)
	if err != nil {
		return 0, err.Error()
	}
	if r := resp.GetRefusal(); r != nil {
		return r.Code, fmt.Sprintf("%s %q", r.Code, r.Message)
	}
	if o, err := record.OpenOffer(resp.GetOffer(), s.now()); err == nil {
		s.decline(ctx, o)
	}
	return 0, "an offer"
}

// expectOfferRefusal passes id if req is refused with one of want.
func (s *provSuite) expectOfferRefusal(ctx context.Context, id string, req *pb.OfferRequest, what string, want ...pb.Code) bool {
	code, seen := s.offerRefusal(ctx, req)
	if !slices.Contains(want, code) {
		s.fail(id, "%s: want %v, got %s", what, want, seen)
		return false
	}
	s.pass(id)
	return true
}

// decline declines an offer the kit no longer needs, best effort.
func (s *provSuite) decline(ctx context.Context, o *pb.Offer) (*pb.LeaseAnswer, error) {
	return s.c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Decline{Decline: &pb.Decline{OfferNonce: o.Nonce, JobCid: o.JobCid}}})
}

func (s *provSuite) offerChecks(ctx context.Context) (*pb.Offer, *pb.OfferRequest, error) {
	req := s.request(s.job)
	resp, err := s.c.offer(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("conformance: ask %s for an offer: %w", s.target, err)
	}
	if r := resp.GetRefusal(); r != nil {
		return nil, nil, fmt.Errorf("conformance: %s refuses the suite's first offer request (%s %q): give it room for %d millicores and %s", s.target, r.Code, r.Message, resources.CpuMillis, protocol.FormatBytes(resources.MemoryBytes))
	}
	env := resp.GetOffer()
	o := new(pb.Offer)
	signer, _, err := record.Open(env, o)
	if err != nil {
		s.fail("offer.signed", "the offer does not open: %v (%s)", err, protocol.CodeOf(err))
		return nil, req, nil
	}
	s.pass("offer.signed")
	s.expect("offer.signer", signer == s.target && bytes.Equal(o.Provider, []byte(s.target)),
		"signer %s, Offer.provider %x, remote peer %s", signer, o.Provider, s.target)
	s.checkOffer(o, req)
	if _, err := record.OpenOffer(env, s.now()); err != nil {
		s.fail("offer.expiry", "%v", err)
	}

	// A retry gets the same offer.
	if resp2, err := s.c.offer(ctx, req); err != nil {
		s.fail("offer.retry", "%v", err)
	} else {
		s.expect("offer.retry", bytes.Equal(resp2.GetOffer(), env), "a retry got %s", describeOfferResponse(resp2))
	}
	// The same nonce for another request.
	re := proto.Clone(req).(*pb.OfferRequest)
	re.TimeoutMs++
	s.expectOfferRefusal(ctx, "offer.replayed", re, "a nonce reused with another timeout", pb.Code_CODE_REPLAYED)

	bad := s.request(s.job)
	bad.ExpiresAtMs = protocol.UnixMs(s.now().Add(-time.Second))
	s.expectOfferRefusal(ctx, "offer.expired", bad, "a request expired 1 s ago", pb.Code_CODE_EXPIRED)
	bad = s.request(s.job)
	bad.ExpiresAtMs = protocol.UnixMs(s.now().Add(10 * time.Minute))
	s.expectOfferRefusal(ctx, "offer.too-far-ahead", bad, "a request expiring in 10 min", pb.Code_CODE_TOO_FAR_AHEAD)
	bad = s.request(s.job)
	bad.Nonce = random(8)
	if s.expectOfferRefusal(ctx, "offer.malformed", bad, "an 8-byte nonce", pb.Code_CODE_MALFORMED) {
		bad = s.request(s.job)
		bad.TimeoutMs = 0
		s.expectOfferRefusal(ctx, "offer.malformed", bad, "timeout_ms 0", pb.Code_CODE_MALFORMED)
	}
	bad = s.request(s.job)
	bad.Executor = "conformance-no-such-engine"
	s.expectOfferRefusal(ctx, "offer.executor", bad, "executor conformance-no-such-engine", pb.Code_CODE_EXECUTOR_UNSUPPORTED)
	bad = s.request(s.job)
	bad.Constraints = []*pb.Constraint{{Key: "region", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"conformance-nowhere"}}}
	s.expectOfferRefusal(ctx, "offer.constraint", bad, "region = conformance-nowhere", pb.Code_CODE_CONSTRAINT_MISMATCH)
	if o.Price != nil {
		other := "EUR"
		if o.Price.Currency == "EUR" {
			other = "USD"
		}
		bad = s.request(s.job)
		bad.MaxPrice = &pb.Amount{Currency: other, Nanos: 1 << 62}
		s.expectOfferRefusal(ctx, "offer.currency", bad, "a ceiling in "+other, pb.Code_CODE_CURRENCY_MISMATCH)
		if o.Total != nil && o.Total.Nanos > 0 {
			bad = s.request(s.job)
			bad.MaxPrice = &pb.Amount{Currency: o.Price.Currency, Nanos: o.Total.Nanos - 1}
			s.expectOfferRefusal(ctx, "offer.ceiling", bad, "a ceiling 1 nano below the offer's total", pb.Code_CODE_PRICE_ABOVE_CEILING)
		} else {
			s.skip("offer.ceiling", "the provider's total is 0: no ceiling below it")
		}
	}
	if s.capRec.GetTotal() == nil {
		s.skip("offer.insufficient", "no capacity record to size a request beyond the provider's capacity")
	} else {
		t := s.capRec.Total
		for _, c := range []struct {
			res  *pb.Resources
			code pb.Code
		}{
			{&pb.Resources{CpuMillis: t.CpuMillis + 1, MemoryBytes: resources.MemoryBytes, ScratchBytes: resources.ScratchBytes}, pb.Code_CODE_INSUFFICIENT_CPU},
			{&pb.Resources{CpuMillis: resources.CpuMillis, MemoryBytes: t.MemoryBytes + 1, ScratchBytes: resources.ScratchBytes}, pb.Code_CODE_INSUFFICIENT_MEMORY},
			{&pb.Resources{CpuMillis: resources.CpuMillis, MemoryBytes: resources.MemoryBytes, ScratchBytes: t.ScratchBytes + 1}, pb.Code_CODE_INSUFFICIENT_SCRATCH},
		} {
			bad = s.request(s.job)
			bad.Resources = c.res
			bad.TimeoutMs = 1000
			if !s.expectOfferRefusal(ctx, "offer.insufficient", bad, fmt.Sprintf("resources %v beyond capacity %v", c.res, t), c.code) {
				break
			}
		}
	}
	return o, req, nil
}

func describeOfferResponse(r *pb.OfferResponse) string {
	if e := r.GetRefusal(); e != nil {
		return fmt.Sprintf("a refusal %s %q", e.Code, e.Message)
	}
	return fmt.Sprintf("another offer (%d bytes)", len(r.GetOffer()))
}

// checkOffer checks an offer's fields against its request (SPEC 6.1, 5.5).
func (s *provSuite) checkOffer(o *pb.Offer, req *pb.OfferRequest) {
	switch {
	case !bytes.Equal(o.RequestNonce, req.Nonce):
		s.fail("offer.fields", "request_nonce %x, want %x", o.RequestNonce, req.Nonce)
	case !bytes.Equal(o.Requester, []byte(s.self)):
		s.fail("offer.fields", "requester %x, want the kit's peer ID %x", o.Requester, []byte(s.self))
	case !bytes.Equal(o.JobCid, req.JobCid):
		s.fail("offer.fields", "job_cid %x, want %x", o.JobCid, req.JobCid)
	case !proto.Equal(o.Resources, req.Resources):
		s.fail("offer.fields", "resources %v, want %v", o.Resources, req.Resources)
	case len(o.Nonce) != protocol.NonceSize:
		s.fail("offer.fields", "nonce of %d bytes", len(o.Nonce))
	default:
		s.pass("offer.fields")
	}
	now := protocol.UnixMs(s.now())
	s.expect("offer.expiry", o.ExpiresAtMs > now && o.ExpiresAtMs <= now+uint64((protocol.MaxOfferTTL+30*time.Second)/time.Millisecond),
		"expires_at_ms %d, now %d", o.ExpiresAtMs, now)
	if want, err := protocol.Cost(o.Resources, o.Price, time.Duration(req.TimeoutMs)*time.Millisecond); err != nil {
		s.fail("offer.total", "its cost does not compute: %v", err)
	} else {
		s.expect("offer.total", proto.Equal(want, o.Total), "total %v, but cost(%v, %v, %d ms) = %v", o.Total, o.Resources, o.Price, req.TimeoutMs, want)
	}
	sorted := slices.IsSortedFunc(o.Labels, func(a, b *pb.Label) int {
		if a.Key < b.Key {
			return -1
		} else if a.Key > b.Key {
			return 1
		}
		return 0
	})
	unique := true
	for i := 1; i < len(o.Labels); i++ {
		unique = unique && o.Labels[i].Key != o.Labels[i-1].Key
	}
	s.expect("offer.labels", sorted && unique && o.LoadPermille <= 1000, "labels %v, load_permille %d", o.Labels, o.LoadPermille)
}

// leaseMsg returns a valid lease of offer o for job, slot id at epoch.
func (s *provSuite) leaseMsg(o *pb.Offer, job *record.SignedJob, id []byte, epoch uint64) *pb.Lease {
	return &pb.Lease{LeaseId: id, Provider: []byte(s.target), Requester: []byte(s.self), OfferNonce: o.Nonce,
		JobCid: job.CID.Bytes(), Epoch: epoch, Nonce: random(protocol.NonceSize),
		ExpiresAtMs: protocol.UnixMs(s.now().Add(time.Minute)), Job: job.Envelope, HeartbeatMs: 200}
}

func (s *provSuite) sendLease(ctx context.Context, env []byte) (*pb.LeaseAnswer, error) {
	return s.c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Lease{Lease: env}})
}

func (s *provSuite) seal(key crypto.PrivKey, m proto.Message) []byte {
	env, err := record.Seal(key, m)
	if err != nil {
		panic(err) // the kit's own records always seal with an Ed25519 key
	}
	return env
}

// lease seals l with the kit's key and sends it; it returns the answer's
// error code (0 for accepted) or a description of a failed exchange.
func (s *provSuite) leaseCode(ctx context.Context, env []byte) (pb.Code, string) {
	a, err := s.sendLease(ctx, env)
	if err != nil {
		return -1, err.Error()
	}
	if a.Accepted {
		return 0, "accepted"
	}
	if a.Error == nil {
		return -1, "not accepted, and no error"
	}
	return a.Error.Code, fmt.Sprintf("%s %q", a.Error.Code, a.Error.Message)
}

// mustRefuse sends env and passes id if it is refused with want.
func (s *provSuite) mustRefuse(ctx context.Context, id, what string, env []byte, want pb.Code) bool {
	code, seen := s.leaseCode(ctx, env)
	if code != want {
		s.fail(id, "%s: want %s, got %s", what, want, seen)
		return false
	}
	s.pass(id)
	return true
}

// receiptHash is the countersignature's receipt_hash (SPEC 6.4).
func receiptHash(env []byte) []byte {
	h := sha256.Sum256(env)
	return h[:]
}
