package conformance

import (
	"context"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	p2precord "github.com/libp2p/go-libp2p/core/record"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// kitRecord is an envelope's content as the kit chooses it: any domain, any
// payload type, any payload bytes, for the envelopes a peer must refuse
// (SPEC 3.1).
type kitRecord struct {
	domain  string
	codec   []byte
	payload []byte
}

func (r kitRecord) Domain() string                 { return r.domain }
func (r kitRecord) Codec() []byte                  { return r.codec }
func (r kitRecord) MarshalRecord() ([]byte, error) { return r.payload, nil }
func (r kitRecord) UnmarshalRecord([]byte) error   { return nil }

// sealRaw seals payload under domain and payload type with key, whatever its
// type.
func sealRaw(key crypto.PrivKey, domain string, codec, payload []byte) []byte {
	env, err := p2precord.Seal(kitRecord{domain, codec, payload}, key)
	if err != nil {
		panic(err) // a key the kit made always signs
	}
	b, err := env.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// envelopeCases are leases whose envelope has exactly one fault, each
// refused by the opening steps of SPEC 3.1 and 3.2, in their order.
func (s *provSuite) envelopeCases() []leaseCase {
	lease := record.KindLease
	return []leaseCase{
		{"lease.envelope", "bytes that are not an envelope (3.1 step 1)", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			return random(96)
		}, pb.Code_CODE_MALFORMED},
		{"lease.envelope", "a lease envelope whose payload is not a Lease (3.1 step 3)", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			return sealRaw(s.key, lease.Domain(), lease.PayloadType(), []byte{0xff, 0xff, 0xff})
		}, pb.Code_CODE_MALFORMED},
		{"lease.envelope", "a lease under the lease domain with the offer's payload type (3.1 step 5)", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			return sealRaw(s.key, lease.Domain(), record.KindOffer.PayloadType(), mustCanonical(l))
		}, pb.Code_CODE_WRONG_DOMAIN},
		{"lease.field-signer", "a lease signed by the remote peer whose requester field names another peer (3.2)", nil, func(o *pb.Offer, l *pb.Lease) []byte {
			l.Requester = []byte(mustID(s.other))
			return s.seal(s.key, l)
		}, pb.Code_CODE_WRONG_SIGNER},
	}
}

// keyTypeCase leases as a requester whose identity is a secp256k1 key, from
// a host of that identity, under an offer made to it: the lease's one fault
// is its key type, which opening refuses (SPEC 3.1 step 4: only Ed25519).
// (From the kit's own host, the lease would also have a signer other than
// the remote peer, a second fault.)
func (s *provSuite) keyTypeCase(ctx context.Context) {
	secp, _, err := crypto.GenerateSecp256k1Key(nil)
	if err != nil {
		s.skip("lease.envelope", "a secp256k1 key: %v", err)
		return
	}
	h, err := newHost(secp, onLoopback(s.o.Target.Addrs))
	if err != nil {
		s.skip("lease.envelope", "a host of a secp256k1 identity: %v", err)
		return
	}
	defer h.Close()
	if err := h.Connect(ctx, s.o.Target); err != nil {
		s.skip("lease.envelope", "connect a host of a secp256k1 identity: %v", err)
		return
	}
	c := &conn{h: h, to: s.target}
	resp, err := c.offer(ctx, s.request(s.job))
	o, oerr := record.OpenOffer(resp.GetOffer(), s.now())
	if err != nil || oerr != nil {
		s.skip("lease.envelope", "no offer to a secp256k1 requester: %v %v %v", err, resp.GetRefusal(), oerr)
		return
	}
	l := s.leaseMsg(o, s.job, random(protocol.LeaseIDSize), 1)
	l.Requester = []byte(h.ID())
	lease := record.KindLease
	a, err := c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Lease{Lease: sealRaw(secp, lease.Domain(), lease.PayloadType(), mustCanonical(l))}})
	s.expect("lease.envelope", err == nil && !a.Accepted && a.GetError().GetCode() == pb.Code_CODE_BAD_SIGNATURE,
		"a lease signed with a secp256k1 key by its requester (3.1 step 4): want CODE_BAD_SIGNATURE, got %v %v", a, err)
	c.lease(ctx, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Decline{Decline: &pb.Decline{OfferNonce: o.Nonce, JobCid: o.JobCid}}})
}

// sealJob seals j as the kit's customer without validating it, for jobs a
// provider must refuse.
func (s *provSuite) sealJob(j *pb.Job) *record.SignedJob {
	payload := mustCanonical(j)
	return &record.SignedJob{Job: j, CID: wire.SumCID(payload), Customer: s.self,
		Envelope: sealRaw(s.key, record.KindJob.Domain(), record.KindJob.PayloadType(), payload)}
}

// jobCases are leases carrying a job that breaks exactly one rule of SPEC 5.2
// (and the job limits of 7), each CODE_MALFORMED; and one job payload not in
// canonical form (3.2).
func (s *provSuite) jobCases() []leaseCase {
	edit := func(f func(j *pb.Job)) *record.SignedJob {
		j := proto.Clone(s.job.Job).(*pb.Job)
		j.Nonce = random(protocol.NonceSize)
		f(j)
		return s.sealJob(j)
	}
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	affinity := func(key string, values []string, weight int32) *pb.Affinity {
		return &pb.Affinity{Key: key, Op: pb.Operator_OPERATOR_IN, Values: values, Weight: weight}
	}
	jobs := []struct {
		what string
		job  *record.SignedJob
	}{
		{"an empty name", edit(func(j *pb.Job) { j.Name = "" })},
		{"a name of 64 bytes", edit(func(j *pb.Job) { j.Name = "c" + strings.Repeat("x", 63) })},
		{"a name with an upper-case letter", edit(func(j *pb.Job) { j.Name = "Conformance" })},
		{"type unspecified", edit(func(j *pb.Job) { j.Type = pb.JobType_JOB_TYPE_UNSPECIFIED })},
		{"count 1001", edit(func(j *pb.Job) { j.Count = 1001 })},
		{"replicas 0", edit(func(j *pb.Job) { j.Replicas = 0 })},
		{"replicas 17", edit(func(j *pb.Job) { j.Replicas = 17 })},
		{"heartbeat_ms 50", edit(func(j *pb.Job) { j.HeartbeatMs = 50 })},
		{"host entropy with 2 replicas", edit(func(j *pb.Job) { j.Entropy, j.Replicas = pb.Entropy_ENTROPY_HOST, 2 })},
		{"257 args", edit(func(j *pb.Job) { j.Task.Args = many(257, func(int) string { return "a" }) })},
		{"257 environment variables", edit(func(j *pb.Job) {
			for i := range 257 {
				j.Task.Env = append(j.Task.Env, &pb.EnvVar{Name: fmt.Sprintf("V%03d", i), Value: "v"})
			}
		})},
		{"environment variables out of order", edit(func(j *pb.Job) {
			j.Task.Env = []*pb.EnvVar{{Name: "B", Value: "1"}, {Name: "A", Value: "2"}}
		})},
		{"stdin of 256 KiB + 1 byte", edit(func(j *pb.Job) { j.Task.Stdin = make([]byte, 256<<10+1) })},
		{"cpu_millis 0", edit(func(j *pb.Job) { j.Task.Resources.CpuMillis = 0 })},
		{"memory_bytes 1 MiB - 1", edit(func(j *pb.Job) { j.Task.Resources.MemoryBytes = 1<<20 - 1 })},
		{"timeout_ms 0", edit(func(j *pb.Job) { j.Task.TimeoutMs = 0 })},
		{"17 constraints", edit(func(j *pb.Job) {
			for i := range 17 {
				j.Constraints = append(j.Constraints, &pb.Constraint{Key: fmt.Sprintf("k%02d", i), Op: pb.Operator_OPERATOR_NOT_IN, Values: []string{"none"}})
			}
		})},
		{"17 affinities", edit(func(j *pb.Job) {
			for i := range 17 {
				j.Affinities = append(j.Affinities, affinity(fmt.Sprintf("k%02d", i), []string{"v"}, 1))
			}
		})},
		{"a selector of 17 values", edit(func(j *pb.Job) {
			j.Affinities = []*pb.Affinity{affinity("k", many(17, func(i int) string { return fmt.Sprintf("v%02d", i) }), 1)}
		})},
		{"a selector key of 64 bytes", edit(func(j *pb.Job) { j.Affinities = []*pb.Affinity{affinity(strings.Repeat("k", 64), []string{"v"}, 1)} })},
		{"a selector's values out of order", edit(func(j *pb.Job) { j.Affinities = []*pb.Affinity{affinity("k", []string{"b", "a"}, 1)} })},
		{"an affinity weight 0", edit(func(j *pb.Job) { j.Affinities = []*pb.Affinity{affinity("k", []string{"v"}, 0)} })},
		{"an affinity weight 101", edit(func(j *pb.Job) { j.Affinities = []*pb.Affinity{affinity("k", []string{"v"}, 101)} })},
		{"9 spread attributes", edit(func(j *pb.Job) {
			for i := range 9 {
				j.Spread = append(j.Spread, &pb.Spread{Attribute: fmt.Sprintf("k%d", i), Weight: 1})
			}
		})},
		{"a spread weight 0", edit(func(j *pb.Job) { j.Spread = []*pb.Spread{{Attribute: "k", Weight: 0}} })},
		{"a spread weight 101", edit(func(j *pb.Job) { j.Spread = []*pb.Spread{{Attribute: "k", Weight: 101}} })},
		{"impossible constraints", edit(func(j *pb.Job) {
			j.Constraints = []*pb.Constraint{{Key: "k", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"a"}}, {Key: "k", Op: pb.Operator_OPERATOR_EQUAL, Values: []string{"b"}}}
		})},
		{"a max_price currency of 2 letters", edit(func(j *pb.Job) { j.MaxPrice = &pb.Amount{Currency: "EU", Nanos: 1} })},
		{"a nonce of 15 bytes", edit(func(j *pb.Job) { j.Nonce = random(15) })},
		{"a canonical encoding over 512 KiB", edit(func(j *pb.Job) { j.Task.Args = many(200, func(int) string { return strings.Repeat("a", 3<<10) }) })},
	}
	var out []leaseCase
	for _, c := range jobs {
		out = append(out, leaseCase{"lease.job-rules", "a job with " + c.what, c.job, func(o *pb.Offer, l *pb.Lease) []byte { return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED})
	}
	// A job payload not in canonical form: the valid job with its first
	// field, version (08 01), moved to the end, which re-encoding puts back
	// first (3.2, 5.3). (An unknown field would not do: receivers keep it,
	// and re-encode it where it was, SPEC 10.)
	canon := mustCanonical(s.job.Job)
	if canon[0] != 0x08 || canon[1] != 0x01 {
		panic("conformance: a version 1 job's encoding starts 08 01") // 5.3: fields in number order
	}
	payload := append(append([]byte(nil), canon[2:]...), canon[:2]...)
	nonCanon := &record.SignedJob{Job: s.job.Job, CID: wire.SumCID(payload), Customer: s.self,
		Envelope: sealRaw(s.key, record.KindJob.Domain(), record.KindJob.PayloadType(), payload)}
	out = append(out, leaseCase{"lease.job-canonical", "a job payload not in canonical form", nonCanon, func(o *pb.Offer, l *pb.Lease) []byte { return s.seal(s.key, l) }, pb.Code_CODE_MALFORMED})
	return out
}
