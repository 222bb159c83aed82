package abuse_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/abuse"
	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// size is the number of mutations in all: 10^6 with CUIVRE_ABUSE=full, a
// smoke of 20,000 otherwise.
func size() int {
	if os.Getenv("CUIVRE_ABUSE") == "full" {
		return 1_000_000
	}
	return 20_000
}

func random16() []byte {
	b := make([]byte, protocol.NonceSize)
	rand.Read(b)
	return b
}

// offerSource is a provider's answer as a requester's transport gets it.
type offerSource struct {
	transport.Transport
	self string
	env  []byte
}

func (s offerSource) Self() string { return s.self }
func (s offerSource) Offer(context.Context, string, *pb.OfferRequest) (*pb.OfferResponse, error) {
	return &pb.OfferResponse{Result: &pb.OfferResponse_Offer{Offer: s.env}}, nil
}

// forgery is one federation of a provider and a requester, the valid
// records they made, and an attacker's key.
type forgery struct {
	t        *testing.T
	f        *nodetest.Federation
	prov     *nodetest.Member
	attacker crypto.PrivKey
	attID    string
	job      *record.SignedJob
	reqs     [2]scheduler.Request
	offers   [2][]byte // sealed by the provider, for reqs
	leases   [2][]byte // sealed by the requester, under offers
	receipts [2][]byte // sealed by the provider
	tally    abuse.Tally
}

func (x *forgery) now() time.Time { return x.f.Clock.Now() }

// offer asks the provider for an offer to the requester, through its
// handler, and returns the request and the sealed offer.
func (x *forgery) offer() (scheduler.Request, []byte) {
	x.t.Helper()
	r := scheduler.Request{
		Nonce: string(random16()), Requester: x.f.Requester.ID, JobCID: string(x.job.CID.Bytes()), Executor: "wasm",
		Resources: scheduler.Resources{CPUMillis: 500, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20}, Timeout: time.Hour,
		MaxPrice: scheduler.Amount{Currency: "EUR", Nanos: 1e12}, ExpiresAt: x.now().Add(5 * time.Second),
	}
	resp := x.prov.Provider.Offer(context.Background(), x.f.Requester.ID, conv.RequestToPB(r))
	if resp.GetOffer() == nil {
		x.t.Fatalf("offer refused: %v", resp.GetRefusal())
	}
	return r, resp.GetOffer()
}

// lease seals a lease of the job under the offer env, with nonce.
func (x *forgery) lease(offerEnv, nonce []byte, heartbeat time.Duration) []byte {
	x.t.Helper()
	o, err := record.OpenOffer(offerEnv, x.now())
	if err != nil {
		x.t.Fatal(err)
	}
	env, err := record.Seal(x.f.Requester.Key, conv.LeaseToPB(scheduler.Lease{
		ID: string(random16()), Provider: x.prov.ID, Requester: x.f.Requester.ID, OfferNonce: string(o.Nonce),
		JobCID: string(x.job.CID.Bytes()), Epoch: 1, ExpiresAt: x.now().Add(30 * time.Second),
	}, string(nonce), x.job.Envelope, heartbeat))
	if err != nil {
		x.t.Fatal(err)
	}
	return env
}

// sendLease presents a sealed lease to the provider's handler as sent by
// from, and returns whether it was accepted and the refusal's code.
func (x *forgery) sendLease(from string, env []byte) (bool, pb.Code) {
	ans, then := x.prov.Provider.Lease(context.Background(), from, &pb.LeaseRequest{Kind: &pb.LeaseRequest_Lease{Lease: env}})
	if then != nil { // as the transport does once the answer is sent: the run starts
		then()
	}
	return ans.Accepted, ans.GetError().GetCode()
}

func newForgery(t *testing.T) *forgery {
	f := nodetest.New(t, "fr-par")
	x := &forgery{t: t, f: f, prov: f.Providers[0]}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	x.attacker, x.attID = k, string(id)
	x.job, err = record.SealJob(f.Requester.Key, &pb.Job{
		Version: 1, Name: "forged", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1, Nonce: random16(),
		Task: &pb.Task{Engine: "wasm", ModuleCid: wire.SumCID([]byte("module")).Bytes(), TimeoutMs: 3_600_000,
			Resources: &pb.Resources{CpuMillis: 500, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		x.reqs[i], x.offers[i] = x.offer()
		x.leases[i] = x.lease(x.offers[i], random16(), time.Duration(200*(i+1))*time.Millisecond)
		rc := &pb.UsageReceipt{
			LeaseId: random16(), Epoch: uint64(2 + i), Provider: []byte(x.prov.ID), Requester: []byte(f.Requester.ID),
			JobCid: x.job.CID.Bytes(), Reserved: &pb.Resources{CpuMillis: 500, MemoryBytes: 64 << 20},
			StartedAtMs: protocol.UnixMs(x.now()), EndedAtMs: protocol.UnixMs(x.now()) + uint64(500*(i+1)),
			Price: &pb.Price{Currency: "EUR", CpuNanosPerSecond: 10_000}, Amount: &pb.Amount{Currency: "EUR", Nanos: uint64(5000 * (i + 1))},
			OutputCid: wire.SumCID([]byte{byte(i)}).Bytes(), EgressBytes: uint64(10 * i), Nonce: random16(), OutputSize: uint64(i),
		}
		if x.receipts[i], err = record.Seal(x.prov.Key, rc); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// mutation is one mutated record: its envelope, the peer that presents it,
// and the kind of mutation.
type mutation struct {
	kind string
	env  []byte
	from string
}

// mutate makes one mutation of the valid record base (of kind k, opened as
// baseMsg, signed by honest, presented by honestPeer), with other a second
// valid record of the same kind for field swaps. Each mutation is something
// a peer can make without the signer's key, or a use of the signer's key
// that the checks must refuse: another domain, a lifetime out of range.
func (x *forgery) mutate(rng *mrand.Rand, k record.Kind, base []byte, baseMsg, other proto.Message, honest crypto.PrivKey, honestPeer string, stamp func(proto.Message, int)) mutation {
	t := x.t
	switch p := rng.IntN(100); {
	case p < 50:
		return mutation{"bitflip", abuse.FlipBits(rng, base), honestPeer}
	case p < 65:
		m := proto.Clone(baseMsg)
		if abuse.SwapField(rng, m, other) == "" {
			t.Fatal("the two records are the same")
		}
		env, err := abuse.Splice(base, m)
		if err != nil {
			t.Fatal(err)
		}
		return mutation{"swap", env, honestPeer}
	case p < 80:
		// Signed with the attacker's key: claiming the honest signer, or
		// itself, with a field of the other record or none swapped, and
		// presented as itself.
		m := proto.Clone(baseMsg)
		if rng.IntN(2) == 0 {
			abuse.SwapField(rng, m, other)
		}
		if rng.IntN(2) == 0 {
			stamp(m, -1)
		}
		env, err := record.Seal(x.attacker, m)
		if err != nil {
			t.Fatal(err)
		}
		return mutation{"resign", env, x.attID}
	case p < 90:
		d, c := abuse.OtherDomain(rng, k)
		env, err := abuse.SealAs(honest, d, c, baseMsg)
		if err != nil {
			t.Fatal(err)
		}
		return mutation{"domain", env, honestPeer}
	}
	// A lifetime out of range, signed by the honest key.
	m := proto.Clone(baseMsg)
	stamp(m, rng.IntN(2))
	env, err := record.Seal(honest, m)
	if err != nil {
		t.Fatal(err)
	}
	return mutation{"time", env, honestPeer}
}

// TestForgery presents mutated leases, offers and receipts (bit flips,
// fields swapped between two valid records, records re-signed with another
// key, signed under other domains, expired or too far ahead) to the checks
// their receivers run: the provider's lease handler (SPEC 6.2), the
// requester's offer and receipt checks (SPEC 6.1, 6.4). None may be
// accepted. A mutation accepted whose content is the original's is no
// forgery, and is counted apart. Then a replayed lease nonce is refused
// after the provider restarts on its store.
func TestForgery(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CUIVRE_ABUSE_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (CUIVRE_ABUSE_SEED=%d repeats it)", seed, seed)
	// A provider logs each refusal: a million lines say nothing the table
	// does not.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rng := mrand.New(mrand.NewPCG(seed, seed))
	n := size()
	synctest.Test(t, func(t *testing.T) {
		x := newForgery(t)
		f := x.f
		reqID := f.Requester.ID
		now := x.now()

		// Offers, as the requester checks them.
		baseOffer, err := record.OpenOffer(x.offers[0], now)
		if err != nil {
			t.Fatal(err)
		}
		otherOffer, _ := record.OpenOffer(x.offers[1], now)
		stampOffer := func(m proto.Message, how int) {
			o := m.(*pb.Offer)
			switch how {
			case -1:
				o.Provider = []byte(x.attID)
			case 0:
				o.ExpiresAtMs = protocol.UnixMs(now) - uint64(1+rng.IntN(60_000))
			default:
				o.ExpiresAtMs = protocol.UnixMs(now.Add(protocol.MaxOfferTTL)) + uint64(60_000+rng.IntN(60_000))
			}
		}
		for range n / 3 {
			m := x.mutate(rng, record.KindOffer, x.offers[0], baseOffer, otherOffer, x.prov.Key, x.prov.ID, stampOffer)
			_, env, err := requester.RequestOffer(context.Background(), offerSource{self: reqID, env: m.env}, x.prov.ID, x.reqs[0], x.now)
			x.count("offer", m, err, func() bool {
				o, oerr := record.OpenOffer(env, now)
				return oerr == nil && proto.Equal(o, baseOffer)
			})
		}

		// Receipts, as the requester checks them.
		baseRc, err := record.OpenReceipt(x.receipts[0])
		if err != nil {
			t.Fatal(err)
		}
		otherRc, _ := record.OpenReceipt(x.receipts[1])
		stampRc := func(m proto.Message, how int) {
			r := m.(*pb.UsageReceipt)
			switch how {
			case -1:
				r.Provider = []byte(x.attID)
			default: // a receipt of an older epoch, signed by the provider
				r.Epoch--
			}
		}
		for range n / 3 {
			m := x.mutate(rng, record.KindReceipt, x.receipts[0], baseRc, otherRc, x.prov.Key, x.prov.ID, stampRc)
			rc, err := requester.CheckReceipt(m.env, x.prov.ID, reqID, baseRc.LeaseId, baseRc.Epoch, string(baseRc.JobCid))
			x.count("receipt", m, err, func() bool { return proto.Equal(rc, baseRc) })
		}

		// Leases, as the provider checks them: half before the lease is
		// committed, half after (when a lease retried is accepted again).
		baseLease, err := record.OpenLease(x.leases[0], now)
		if err != nil {
			t.Fatal(err)
		}
		otherLease, _ := record.OpenLease(x.leases[1], now)
		stampLease := func(m proto.Message, how int) {
			l := m.(*pb.Lease)
			switch how {
			case -1:
				l.Requester = []byte(x.attID)
			case 0:
				l.ExpiresAtMs = protocol.UnixMs(now) - uint64(1+rng.IntN(60_000))
			default:
				l.ExpiresAtMs = protocol.UnixMs(now.Add(protocol.MaxLeaseTTL)) + uint64(60_000+rng.IntN(60_000))
			}
		}
		leases := n - 2*(n/3)
		for i := range leases {
			if i == leases/2 {
				if ok, code := x.sendLease(reqID, x.leases[0]); !ok {
					t.Fatalf("the valid lease is refused: %v", code)
				}
			}
			m := x.mutate(rng, record.KindLease, x.leases[0], baseLease, otherLease, f.Requester.Key, reqID, stampLease)
			ok, code := x.sendLease(m.from, m.env)
			var err error
			if !ok {
				err = protocol.Errorf(code, "refused")
			}
			x.count("lease", m, err, func() bool {
				l, oerr := record.OpenLease(m.env, now)
				return oerr == nil && m.from == reqID && proto.Equal(l, baseLease)
			})
		}
		if _, err := x.prov.Store.Lease(string(baseLease.LeaseId), 1); err != nil {
			t.Errorf("the valid lease is not in the provider's store: %v", err)
		}
		if got, err := x.prov.Store.Lease(string(otherLease.LeaseId), 1); err == nil {
			t.Errorf("the provider's store holds a lease never sent: %+v", got)
		}

		x.tally.Write(reportTo(t))
		total, identical, accepted := x.tally.Totals()
		t.Logf("%d mutations: %d forgeries accepted, %d identical to the original", total, accepted, identical)
		if accepted != 0 {
			t.Errorf("%d forgeries accepted", accepted)
		}
		if total != n {
			t.Errorf("%d mutations counted, want %d", total, n)
		}

		x.replayAfterRestart(baseLease)
	})
}

// count records a mutation's outcome: err nil is acceptance, which is no
// forgery when same says what was accepted is the original.
func (x *forgery) count(rec string, m mutation, err error, same func() bool) {
	switch {
	case err != nil:
		code := protocol.CodeOf(err)
		if code == pb.Code_CODE_UNSPECIFIED || code == pb.Code_CODE_INTERNAL {
			x.t.Errorf("%s %s refused without a code: %v", rec, m.kind, err)
		}
		x.tally.Add(rec, m.kind, abuse.Refused, code)
	case same():
		x.tally.Add(rec, m.kind, abuse.Identical, 0)
	default:
		x.t.Errorf("%s %s accepted: %x", rec, m.kind, m.env)
		x.tally.Add(rec, m.kind, abuse.Accepted, 0)
	}
}

// replayAfterRestart restarts the provider on its store, as a process that
// died and came back, and presents the nonce of the lease it accepted
// before in another lease, under a new offer: SPEC 3.4 and 6.2 refuse it
// CODE_REPLAYED. The same lease with a fresh nonce is accepted.
func (x *forgery) replayAfterRestart(accepted *pb.Lease) {
	t := x.t
	x.prov.Crash()
	x.prov.Restart()
	_, offer := x.offer()
	replayed := x.lease(offer, accepted.Nonce, 500*time.Millisecond)
	if ok, code := x.sendLease(x.f.Requester.ID, replayed); ok || code != protocol.CodeReplayed {
		t.Errorf("a lease nonce replayed after a restart: accepted %v, code %v; want CODE_REPLAYED", ok, code)
	}
	fresh := x.lease(offer, random16(), 500*time.Millisecond)
	if ok, code := x.sendLease(x.f.Requester.ID, fresh); !ok {
		t.Errorf("the same lease with a fresh nonce after a restart: %v", code)
	}
	// An offer request's nonce (SPEC 3.4) asked again after the restart,
	// before its request expires: reported, see the report.
	resp := x.prov.Provider.Offer(context.Background(), x.f.Requester.ID, conv.RequestToPB(x.reqs[0]))
	t.Logf("an offer request nonce asked again after a restart: offer %v, refusal %v", resp.GetOffer() != nil, resp.GetRefusal().GetCode())
}

// reportTo returns where the table goes: the test log, and the file
// CUIVRE_ABUSE_REPORT names.
func reportTo(t *testing.T) *bytes.Buffer {
	buf := new(bytes.Buffer)
	t.Cleanup(func() {
		t.Logf("\n%s", buf)
		if path := os.Getenv("CUIVRE_ABUSE_REPORT"); path != "" {
			// Appended: the flood and over-commit tests write there too.
			f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				_, err = f.Write(buf.Bytes())
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				t.Errorf("report: %v", err)
			}
		}
	})
	return buf
}
