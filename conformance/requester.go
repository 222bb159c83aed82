package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// RequesterOptions configures RunRequester.
type RequesterOptions struct {
	// Ready is called once the kit's providers are up and announced, with
	// the addresses of the one the requester under test must bootstrap its
	// DHT from. The caller then has the requester place one job (2.5 below).
	Ready func(boot peer.AddrInfo)
	// Public makes the kit's providers listen on every interface rather
	// than loopback, for a requester on another host.
	Public bool
	// Now is the kit's clock; default time.Now.
	Now func() time.Time
}

// JobFits is what the job placed on the kit must fit in: the engine, and at
// most these resources (every kit provider has them).
var JobFits = &pb.Resources{CpuMillis: 4000, MemoryBytes: 8 << 30, ScratchBytes: 10 << 30}

// Roles of the kit's providers in the requester suite: the cheapest offer
// lies about its total; the first slot leased goes silent after its first
// Status; a slot leased again at a higher epoch runs.
const (
	roleLiar   = "liar"
	roleHonest = "honest"
)

// reqSuite is one run of the requester suite.
type reqSuite struct {
	*recorder
	o     RequesterOptions
	now   func() time.Time
	provs []*kitProvider

	mu            sync.Mutex
	nonces        map[string]string        // OfferRequest nonce -> the request's bytes
	offers        map[string]*offerMade    // offer nonce -> the offer, while live
	lies          []lie                    // the liar's offers, in order
	other         crypto.PrivKey           // another provider's key, for offers it did not sign
	declined      map[string]bool          // offer nonces declined
	leases        []*pb.Lease              // accepted, in order
	silent        map[string]uint64        // lease_id -> epoch that went silent
	silenced      bool                     // a lease went silent: the suite's first
	cancelled     map[string]uint64        // lease_id -> epoch cancelled by the requester
	cancels       map[string]chan struct{} // lease_id -> closed when a Cancel of it came
	signed        bool                     // the rescheduled run's receipt came countersigned
	runs          int                      // runs reported
	billed        map[string]bool          // lease_id+epoch of the receipts billed right
	overbilled    map[string]bool          // ... billed a nano too much
	countersigned map[string]bool          // ... that came back countersigned
	done          chan struct{}            // closed when signed and every silent epoch cancelled
	finish        sync.Once
	ctx           context.Context
}

// offerMade is an offer one of the kit's providers made.
type offerMade struct {
	role      string
	fault     string // the liar's: its one fault
	provider  peer.ID
	offer     *pb.Offer
	timeoutMs uint64 // of its request
}

// kitProvider is one provider the kit plays.
type kitProvider struct {
	s     *reqSuite
	role  string
	key   crypto.PrivKey
	h     host.Host
	d     *dht.IpfsDHT
	price *pb.Price
	gone  map[string]bool // job CIDs it refuses offers for: a slot of them went silent here
}

// RunRequester runs the requester suite: the kit plays three providers,
// announced in a DHT of their own, for a requester under test that
// bootstraps from them (Ready) and places one job of engine wasm, of at
// least 40 slots each fitting in JobFits. It checks the requester's offer
// requests, leases, module serving, watch, handling of a lost lease (SPEC 9:
// Cancel, then the slot leased again at a higher epoch) and countersigned
// receipts. One provider's offers each have one fault of offerFaults, in
// turn, which the requester must not lease, and must decline if it can read
// them (6.1); the first slot leased goes silent after its first Status. It
// returns when every fault was offered, the silent epoch cancelled and its
// slot's new lease countersigned, and every offer not leased declined; or
// when ctx ends.
func RunRequester(ctx context.Context, o RequesterOptions) (Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &reqSuite{recorder: newRecorder(RequesterChecks), o: o, now: o.Now,
		nonces: map[string]string{}, offers: map[string]*offerMade{}, declined: map[string]bool{}, silent: map[string]uint64{}, cancelled: map[string]uint64{},
		cancels: map[string]chan struct{}{}, billed: map[string]bool{}, overbilled: map[string]bool{}, countersigned: map[string]bool{}, done: make(chan struct{}), ctx: ctx}
	var err error
	if s.other, _, err = crypto.GenerateEd25519Key(rand.Reader); err != nil {
		return nil, err
	}
	price := &pb.Price{Currency: "EUR", CpuNanosPerSecond: 10_000, MemoryNanosPerGibSecond: 1_000, EgressNanosPerGib: 1_000_000}
	for _, role := range []string{roleLiar, roleHonest, roleHonest} {
		p, err := s.startProvider(ctx, role, !o.Public, price)
		if p != nil {
			s.provs = append(s.provs, p)
		}
		if err != nil {
			s.close()
			return nil, fmt.Errorf("conformance: start the kit's providers: %w", err)
		}
	}
	defer s.close()
	if err := s.announce(ctx); err != nil {
		return nil, fmt.Errorf("conformance: announce the kit's providers: %w", err)
	}
	if o.Ready != nil {
		o.Ready(peer.AddrInfo{ID: s.provs[len(s.provs)-1].h.ID(), Addrs: s.provs[len(s.provs)-1].h.Addrs()})
	}
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.concludeLocked()
	if err := ctx.Err(); err != nil && !s.finished() {
		return s.report(), fmt.Errorf("conformance: the requester did not finish the suite's job: %w", err)
	}
	return s.report(), nil
}

func (s *reqSuite) finished() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// concludeLocked records the checks whose evidence is the whole run.
func (s *reqSuite) concludeLocked() {
	if len(s.silent) == 0 {
		s.skip("req.lost-cancel", "no lease was placed, so none went silent")
		s.skip("req.reschedule", "no lease was placed, so none went silent")
	}
	for id, epoch := range s.silent {
		if c, ok := s.cancelled[id]; !ok || c != epoch {
			s.fail("req.lost-cancel", "lease %x epoch %d went silent; no Cancel of it came", id, epoch)
		}
		again := slices.ContainsFunc(s.leases, func(l *pb.Lease) bool { return string(l.LeaseId) == id && l.Epoch > epoch })
		if !again {
			s.fail("req.reschedule", "lease %x epoch %d went silent; the slot was not leased again", id, epoch)
		}
	}
	var kinds []string
	for _, l := range s.lies {
		if !slices.Contains(kinds, l.fault) {
			kinds = append(kinds, l.fault)
		}
		if l.opens && !s.declined[l.nonce] {
			s.fail("req.offer-checked", "offer %x, whose fault is %s, was not declined (6.1: discarded and declined)", l.nonce, l.fault)
		}
	}
	switch {
	case len(s.lies) == 0:
		s.skip("req.offer-checked", "the provider whose offers have faults was never asked")
	case len(kinds) < len(offerFaults):
		s.fail("req.offer-checked", "only %d of the %d faulty offers were asked of the kit (%v): have the requester place a job of more slots", len(kinds), len(offerFaults), kinds)
	default:
		s.pass("req.offer-checked") // a failure recorded stays one
	}
	var undeclined int
	for n := range s.offers {
		if !s.declined[n] {
			undeclined++
		}
	}
	s.expect("req.decline-rest", undeclined == 0, "%d of the %d offers it did not lease were not declined", undeclined, len(s.offers))
	if !s.signed {
		s.fail("req.countersign", "no countersigned receipt of the rescheduled run came")
	}
	for k := range s.billed {
		if !s.countersigned[k] {
			s.fail("req.countersign", "the receipt of lease %s, billed right, was not countersigned", k)
			break
		}
	}
	// A countersignature that comes after the suite's end is not seen: the
	// suite ends once every right receipt came back, so a requester that
	// countersigns in order is caught.
	if len(s.overbilled) == 0 {
		s.skip("req.receipt-checked", "no run was billed wrong: have the requester place a job of more slots")
	} else {
		s.pass("req.receipt-checked") // a failure recorded stays one
	}
}

func (s *reqSuite) close() {
	for _, p := range s.provs {
		if p.d != nil {
			p.d.Close()
		}
		p.h.Close()
	}
}

// startProvider starts one of the kit's providers: a libp2p host with a DHT
// server and the provider's protocols.
func (s *reqSuite) startProvider(ctx context.Context, role string, loopback bool, price *pb.Price) (*kitProvider, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := newHost(key, loopback)
	if err != nil {
		return nil, err
	}
	p := &kitProvider{s: s, role: role, key: key, h: h, price: price, gone: map[string]bool{}}
	if p.d, err = dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix(protocol.DHTPrefix),
		dht.NamespacedValidator(protocol.CapacityNamespace, record.CapacityValidator{Now: s.now})); err != nil {
		return p, err
	}
	h.SetStreamHandler(protocol.OfferID, p.handleOffer)
	h.SetStreamHandler(protocol.LeaseID, p.handleLease)
	h.SetStreamHandler(protocol.WatchID, p.handleWatch)
	h.SetStreamHandler(protocol.ReceiptID, p.handleReceipt)
	return p, nil
}

// announce connects the kit's providers to each other, and puts each one's
// capacity record and facet keys (any, executor wasm, its size class and the
// smaller ones, in each of its presences) in their DHT (SPEC 4.2 to 4.4).
func (s *reqSuite) announce(ctx context.Context) error {
	for i, p := range s.provs {
		for _, q := range s.provs[:i] {
			if err := p.h.Connect(ctx, peer.AddrInfo{ID: q.h.ID(), Addrs: q.h.Addrs()}); err != nil {
				return err
			}
			p.d.RoutingTable().TryAddPeer(q.h.ID(), true, false)
			q.d.RoutingTable().TryAddPeer(p.h.ID(), true, false)
		}
	}
	for _, p := range s.provs {
		now := s.now()
		rec := &pb.CapacityRecord{Provider: []byte(p.h.ID()), Seq: protocol.UnixMs(now), IssuedAtMs: protocol.UnixMs(now),
			ExpiresAtMs: protocol.UnixMs(now.Add(protocol.MaxCapacityTTL)), Total: JobFits, Free: JobFits, Price: p.price,
			Executors: []string{"wasm"}}
		for _, a := range p.h.Addrs() {
			rec.Addrs = append(rec.Addrs, a.Bytes())
		}
		env, err := record.Seal(p.key, rec)
		if err != nil {
			return err
		}
		if err := p.d.PutValue(ctx, record.CapacityKey(p.h.ID()), env); err != nil {
			return fmt.Errorf("put the capacity record: %w", err)
		}
		values := []struct {
			f protocol.Facet
			v string
		}{{protocol.FacetAny, ""}, {protocol.FacetExecutor, "wasm"}}
		for _, class := range protocol.SizeClassesUpTo(JobFits.MemoryBytes) {
			values = append(values, struct {
				f protocol.Facet
				v string
			}{protocol.FacetSize, class})
		}
		for _, f := range values {
			for _, shard := range protocol.ProviderShards(f.f, string(p.h.ID()), JobFits.CpuMillis) {
				k, err := protocol.NewFacetKey(f.f, f.v, shard)
				if err != nil {
					return err
				}
				if err := p.d.Provide(ctx, wire.FacetCID(k), true); err != nil {
					return fmt.Errorf("provide %s: %w", k, err)
				}
			}
		}
	}
	return nil
}

// read reads one framed request of protocol id from s.
func read(s network.Stream, m proto.Message) (*wire.Writer, error) {
	max := protocol.MaxMsgSize(s.Protocol())
	if err := wire.NewReader(s, max).ReadMsg(m); err != nil {
		return nil, err
	}
	return wire.NewWriter(s, max), nil
}

// handleOffer checks an OfferRequest (SPEC 6.1) and answers it as the
// provider's role says.
func (p *kitProvider) handleOffer(st network.Stream) {
	defer st.Close()
	s := p.s
	req := new(pb.OfferRequest)
	w, err := read(st, req)
	if err != nil {
		s.fail("req.offer-request", "an OfferRequest that does not decode: %v", err)
		return
	}
	now := s.now()
	nowMs := protocol.UnixMs(now)
	// A nonce seen before is a replay, unless the request is the same: a
	// retry (6.1).
	body, _ := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	s.mu.Lock()
	prev, seen := s.nonces[string(req.Nonce)]
	reused := seen && prev != string(body)
	s.nonces[string(req.Nonce)] = string(body)
	gone := p.gone[string(req.JobCid)]
	s.mu.Unlock()
	_, cidErr := wire.ParseCID(req.JobCid)
	switch {
	case len(req.Nonce) != protocol.NonceSize:
		s.fail("req.offer-request", "a nonce of %d bytes", len(req.Nonce))
	case reused:
		s.fail("req.offer-request", "nonce %x used before for another request (3.4, 6.1)", req.Nonce)
	case cidErr != nil:
		s.fail("req.offer-request", "job_cid %x: %v", req.JobCid, cidErr)
	case req.TimeoutMs == 0 || req.Resources == nil: // an empty executor means wasm (6.1)
		s.fail("req.offer-request", "timeout_ms %d, executor %q, resources %v", req.TimeoutMs, req.Executor, req.Resources)
	case req.ExpiresAtMs <= nowMs || req.ExpiresAtMs > nowMs+uint64((protocol.MaxOfferTTL+30*time.Second)/time.Millisecond):
		s.fail("req.offer-request", "expires_at_ms %d, now %d", req.ExpiresAtMs, nowMs)
	default:
		s.pass("req.offer-request")
	}
	refuse := func(code pb.Code, msg string) {
		w.WriteMsg(&pb.OfferResponse{Result: &pb.OfferResponse_Refusal{Refusal: &pb.Error{Code: code, Message: msg}}})
	}
	if gone {
		refuse(pb.Code_CODE_INSUFFICIENT_CPU, "the conformance kit: this provider is taken")
		return
	}
	if (req.Executor != "wasm" && req.Executor != "") || req.Resources == nil || !fits(req.Resources, JobFits) {
		refuse(pb.Code_CODE_INSUFFICIENT_MEMORY, "the conformance kit's providers run wasm jobs within JobFits")
		return
	}
	total, err := protocol.Cost(req.Resources, p.price, time.Duration(req.TimeoutMs)*time.Millisecond)
	if err != nil {
		refuse(pb.Code_CODE_MALFORMED, err.Error())
		return
	}
	o := &pb.Offer{Provider: []byte(p.h.ID()), Requester: []byte(st.Conn().RemotePeer()), RequestNonce: req.Nonce,
		Nonce: random(protocol.NonceSize), JobCid: req.JobCid, Resources: req.Resources, Price: p.price, Total: total,
		ExpiresAtMs: protocol.UnixMs(now.Add(protocol.MaxOfferTTL)), Capacity: JobFits}
	env := sealRaw(p.key, record.KindOffer.Domain(), record.KindOffer.PayloadType(), mustCanonical(o))
	made := &offerMade{role: p.role, provider: p.h.ID(), offer: o, timeoutMs: req.TimeoutMs}
	if p.role == roleLiar {
		// Each answer of the liar has one fault, the next of the list in
		// turn; its total is also below what its price makes, so that it
		// ranks first with a requester that checks nothing.
		s.mu.Lock()
		f := offerFaults[len(s.lies)%len(offerFaults)]
		s.mu.Unlock()
		o.Total.Nanos /= 2
		if f.name != "total" {
			o.Total.Nanos *= 2 // the total is right: the one fault is f's
		}
		env = f.make(s, p, o)
		made.fault = f.name
		s.mu.Lock()
		s.lies = append(s.lies, lie{nonce: string(o.Nonce), fault: f.name, opens: f.opens})
		s.mu.Unlock()
	}
	s.mu.Lock()
	if made.fault == "" || offerFaultOpens(made.fault) {
		s.offers[string(o.Nonce)] = made
	}
	s.mu.Unlock()
	resp, _ := proto.Marshal(&pb.OfferResponse{Result: &pb.OfferResponse_Offer{Offer: env}})
	if len(resp) > protocol.MaxOfferMsg {
		// The too-large fault: a frame the kit's own writer would refuse.
		st.Write(append(binary.AppendUvarint(nil, uint64(len(resp))), resp...))
	} else {
		w.WriteMsg(&pb.OfferResponse{Result: &pb.OfferResponse_Offer{Offer: env}})
	}
	s.checkDone()
}

// lie is an offer of the liar: its nonce and its one fault.
type lie struct {
	nonce, fault string
	opens        bool // it opens (3.1, 3.2): the requester knows its nonce and declines it
}

// offerFaults are the faults of the liar's offers, one an offer, each a
// check of SPEC 6.1 (requester's steps 2 to 6) the requester must apply: it
// never leases such an offer, and declines those that open.
var offerFaults = []struct {
	name  string
	opens bool
	make  func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte
}{
	{"total", true, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { return p.seal(o) }}, // step 6: the total is half
	{"bad-signature", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 2
		env := p.seal(o)
		env[len(env)-1] ^= 1
		return env
	}},
	{"wrong-domain", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 2
		return sealRaw(p.key, record.KindLease.Domain(), record.KindOffer.PayloadType(), mustCanonical(o))
	}},
	{"expired", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 2 (3.3)
		o.ExpiresAtMs = protocol.UnixMs(s.now().Add(-time.Second))
		return p.seal(o)
	}},
	{"too-far-ahead", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 2 (3.3)
		o.ExpiresAtMs = protocol.UnixMs(s.now().Add(10 * time.Minute))
		return p.seal(o)
	}},
	{"short-nonce", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 2 (3.2)
		o.Nonce = random(8)
		return p.seal(o)
	}},
	{"another-provider", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 3: not the asked provider's offer to decline
		o.Provider = []byte(mustID(s.other))
		return sealRaw(s.other, record.KindOffer.Domain(), record.KindOffer.PayloadType(), mustCanonical(o))
	}},
	{"not-an-envelope", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { return random(96) }}, // step 2 (3.1 step 1)
	{"bad-payload", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 2 (3.1 step 3)
		return sealRaw(p.key, record.KindOffer.Domain(), record.KindOffer.PayloadType(), []byte{0xff, 0xff, 0xff})
	}},
	{"other-payload-type", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 2 (3.1 step 5)
		return sealRaw(p.key, record.KindOffer.Domain(), record.KindLease.PayloadType(), mustCanonical(o))
	}},
	{"provider-not-signer", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 2 (3.2)
		o.Provider = []byte(mustID(s.other))
		return p.seal(o)
	}},
	{"too-large", false, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // a frame over 64 KiB (2.2, 7)
		o.Labels = []*pb.Label{{Key: "padding", Value: string(make([]byte, protocol.MaxOfferMsg))}}
		return p.seal(o)
	}},
	{"another-request", true, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 4
		o.RequestNonce = random(protocol.NonceSize)
		return p.seal(o)
	}},
	{"another-job", true, func(s *reqSuite, p *kitProvider, o *pb.Offer) []byte { // step 4
		o.JobCid = wire.SumCID([]byte("another job")).Bytes()
		return p.seal(o)
	}},
}

func offerFaultOpens(name string) bool {
	for _, f := range offerFaults {
		if f.name == name {
			return f.opens
		}
	}
	return false
}

func (p *kitProvider) seal(m proto.Message) []byte {
	k := record.KindOf(m)
	return sealRaw(p.key, k.Domain(), k.PayloadType(), mustCanonical(m))
}

func fits(r, in *pb.Resources) bool {
	return r.CpuMillis <= in.CpuMillis && r.MemoryBytes <= in.MemoryBytes && r.ScratchBytes <= in.ScratchBytes
}

// handleLease checks a lease (SPEC 3, 6.2), a decline or a cancel.
func (p *kitProvider) handleLease(st network.Stream) {
	defer st.Close()
	s := p.s
	req := new(pb.LeaseRequest)
	w, err := read(st, req)
	if err != nil {
		s.fail("req.lease-signed", "a LeaseRequest that does not decode: %v", err)
		return
	}
	from := st.Conn().RemotePeer()
	switch k := req.Kind.(type) {
	case *pb.LeaseRequest_Decline:
		s.mu.Lock()
		s.declined[string(k.Decline.OfferNonce)] = true
		s.mu.Unlock()
		w.WriteMsg(&pb.LeaseAnswer{Accepted: true})
		s.checkDone()
	case *pb.LeaseRequest_Cancel:
		s.mu.Lock()
		s.cancelled[string(k.Cancel.LeaseId)] = k.Cancel.Epoch
		if ch, ok := s.cancels[string(k.Cancel.LeaseId)]; ok {
			close(ch)
			delete(s.cancels, string(k.Cancel.LeaseId))
		}
		if e, ok := s.silent[string(k.Cancel.LeaseId)]; ok && e == k.Cancel.Epoch {
			s.pass("req.lost-cancel")
		}
		s.mu.Unlock()
		w.WriteMsg(&pb.LeaseAnswer{LeaseId: k.Cancel.LeaseId, Epoch: k.Cancel.Epoch, Accepted: true})
		s.checkDone()
	case *pb.LeaseRequest_Lease:
		if l, err := record.OpenLease(k.Lease, s.now()); err == nil && s.accepted(l) {
			// A retry of a lease accepted here is accepted again (6.2).
			w.WriteMsg(&pb.LeaseAnswer{LeaseId: l.LeaseId, Epoch: l.Epoch, Accepted: true})
			return
		}
		l, ok := p.checkLease(k.Lease, from)
		if !ok {
			w.WriteMsg(&pb.LeaseAnswer{Error: &pb.Error{Code: pb.Code_CODE_MALFORMED, Message: "the conformance kit refuses this lease: see its report"}})
			return
		}
		s.mu.Lock()
		made := s.offers[string(l.OfferNonce)]
		delete(s.offers, string(l.OfferNonce))
		s.leases = append(s.leases, l)
		if made.role == roleLiar {
			s.fail("req.offer-checked", "it leased offer %x, whose fault is %s (6.1)", l.OfferNonce, made.fault)
		}
		if l.Epoch > 1 {
			// The silent slot is placed again: the silent provider
			// may offer again, for the job's other slots.
			for _, q := range s.provs {
				delete(q.gone, string(l.JobCid))
			}
			var before *pb.Lease
			for _, x := range s.leases[:len(s.leases)-1] {
				if bytes.Equal(x.LeaseId, l.LeaseId) {
					before = x
				}
			}
			switch {
			case before == nil:
				s.fail("req.reschedule", "a lease of epoch %d for slot %x never leased before", l.Epoch, l.LeaseId)
			case l.Epoch != before.Epoch+1 && l.Epoch <= before.Epoch:
				s.fail("req.reschedule", "slot %x leased at epoch %d after epoch %d", l.LeaseId, l.Epoch, before.Epoch)
			default:
				s.pass("req.reschedule")
			}
		}
		s.mu.Unlock()
		w.WriteMsg(&pb.LeaseAnswer{LeaseId: l.LeaseId, Epoch: l.Epoch, Accepted: true})
	default:
		w.WriteMsg(&pb.LeaseAnswer{Error: &pb.Error{Code: pb.Code_CODE_MALFORMED, Message: "empty lease request"}})
	}
}

// accepted reports whether l, or a lease of its slot and epoch under its
// offer, was accepted already.
func (s *reqSuite) accepted(l *pb.Lease) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.leases, func(x *pb.Lease) bool {
		return bytes.Equal(x.LeaseId, l.LeaseId) && x.Epoch == l.Epoch && bytes.Equal(x.OfferNonce, l.OfferNonce)
	})
}

// checkLease opens and checks a sealed lease (SPEC 3.1 to 3.3, 6.2) and
// records what it finds.
func (p *kitProvider) checkLease(env []byte, from peer.ID) (*pb.Lease, bool) {
	s := p.s
	now := s.now()
	l, err := record.OpenLease(env, now)
	if err != nil {
		s.fail("req.lease-signed", "the lease does not open: %v (%s)", err, protocol.CodeOf(err))
		return nil, false
	}
	signer, _, _ := record.Open(env, new(pb.Lease))
	if signer != from || !bytes.Equal(l.Requester, []byte(from)) {
		s.fail("req.lease-signed", "signed by %s, Lease.requester %x, sent by %s", signer, l.Requester, from)
		return nil, false
	}
	s.pass("req.lease-signed")
	s.mu.Lock()
	made := s.offers[string(l.OfferNonce)]
	s.mu.Unlock()
	nowMs := protocol.UnixMs(now)
	if made == nil || made.provider != p.h.ID() {
		s.fail("req.lease-fields", "offer_nonce %x names no live offer of this provider", l.OfferNonce)
		return nil, false
	}
	switch {
	case made.offer.ExpiresAtMs <= nowMs:
		s.fail("req.lease-fields", "offer %x expired at %d, the lease came at %d", l.OfferNonce, made.offer.ExpiresAtMs, nowMs)
	case !bytes.Equal(l.JobCid, made.offer.JobCid):
		s.fail("req.lease-fields", "job_cid %x, the offer's %x", l.JobCid, made.offer.JobCid)
	case !bytes.Equal(l.Provider, []byte(p.h.ID())):
		s.fail("req.lease-fields", "provider %x, not the provider it is sent to", l.Provider)
	case len(l.LeaseId) != protocol.LeaseIDSize || len(l.Nonce) != protocol.NonceSize || l.Epoch == 0:
		s.fail("req.lease-fields", "lease_id of %d bytes, nonce of %d bytes, epoch %d", len(l.LeaseId), len(l.Nonce), l.Epoch)
	case !protocol.HeartbeatInRange(l.HeartbeatMs):
		s.fail("req.lease-fields", "heartbeat_ms %d", l.HeartbeatMs)
	case l.ExpiresAtMs <= nowMs:
		s.fail("req.lease-fields", "expires_at_ms %d, now %d", l.ExpiresAtMs, nowMs)
	default:
		s.pass("req.lease-fields")
	}
	job, err := record.OpenJob(l.Job)
	switch {
	case err != nil:
		s.fail("req.lease-job", "the job does not open: %v (%s)", err, protocol.CodeOf(err))
		return nil, false
	case !bytes.Equal(job.CID.Bytes(), l.JobCid):
		s.fail("req.lease-job", "the job's CID is %s, Lease.job_cid %x", job.CID, l.JobCid)
	case l.Instance >= job.Job.Count:
		s.fail("req.lease-job", "instance %d of a job of count %d", l.Instance, job.Job.Count)
	case job.Job.GetTask().GetResources() == nil || !fits(job.Job.GetTask().GetResources(), made.offer.Resources) || job.Job.GetTask().GetTimeoutMs() > made.timeoutMs:
		s.fail("req.lease-job", "a job asking %v for %d ms, offered %v for %d ms", job.Job.GetTask().GetResources(), job.Job.GetTask().GetTimeoutMs(), made.offer.Resources, made.timeoutMs)
	default:
		s.pass("req.lease-job")
		return l, true
	}
	return nil, false
}

// handleWatch streams a lease: the first one leased of a slot goes silent
// after its first Status; a slot leased again runs (module fetched, Status,
// logs, final Status, Result with a receipt).
func (p *kitProvider) handleWatch(st network.Stream) {
	defer st.Close()
	s := p.s
	req := new(pb.WatchRequest)
	w, err := read(st, req)
	if err != nil {
		s.fail("req.watch", "a WatchRequest that does not decode: %v", err)
		return
	}
	s.mu.Lock()
	var l *pb.Lease
	for _, x := range s.leases {
		if bytes.Equal(x.LeaseId, req.LeaseId) && x.Epoch == req.Epoch && bytes.Equal(x.Provider, []byte(p.h.ID())) {
			l = x
		}
	}
	silentEpoch, silentBefore := s.silent[string(req.LeaseId)]
	s.mu.Unlock()
	if l == nil {
		s.fail("req.watch", "a watch of lease %x epoch %d, which it did not lease here", req.LeaseId, req.Epoch)
		w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Error{Error: &pb.Error{Code: pb.Code_CODE_UNKNOWN_LEASE, Message: "no such lease here"}}})
		return
	}
	s.pass("req.watch")
	seq := protocol.UnixMs(s.now())
	status := func(state pb.LeaseState) error {
		seq++
		return w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: &pb.Status{LeaseId: l.LeaseId, Epoch: l.Epoch,
			State: state, Seq: seq, AtMs: protocol.UnixMs(s.now()), Used: jobResources(l)}}})
	}
	s.mu.Lock()
	silence := (silentBefore && silentEpoch == l.Epoch) || (!s.silenced && l.Epoch == 1)
	s.silenced = s.silenced || silence
	s.mu.Unlock()
	if silence {
		// The silent one: one Status, then nothing, until the requester
		// gives up on it (SPEC 9: no Status for 3 x heartbeat_ms) and
		// cancels it, or resets the stream.
		s.mu.Lock()
		s.silent[string(l.LeaseId)] = l.Epoch
		p.gone[string(l.JobCid)] = true
		cancelled, ok := s.cancels[string(l.LeaseId)]
		if !ok {
			cancelled = make(chan struct{})
			s.cancels[string(l.LeaseId)] = cancelled
		}
		s.mu.Unlock()
		status(pb.LeaseState_LEASE_STATE_ACCEPTED)
		reset := make(chan struct{})
		go func() {
			if _, err := io.Copy(io.Discard, st); err != nil {
				close(reset)
			}
		}()
		select {
		case <-cancelled:
		case <-reset:
		case <-s.ctx.Done():
		case <-s.done:
		}
		return
	}
	started := s.now()
	status(pb.LeaseState_LEASE_STATE_ACCEPTED)
	status(pb.LeaseState_LEASE_STATE_FETCHING)
	job, _ := record.OpenJob(l.Job)
	if !p.fetchModule(st.Conn().RemotePeer(), job.Job.GetTask().GetModuleCid()) {
		return
	}
	status(pb.LeaseState_LEASE_STATE_RUNNING)
	stdout := []byte("the conformance kit ran no code\n")
	w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Log{Log: &pb.LogChunk{LeaseId: l.LeaseId, Epoch: l.Epoch,
		Stream: pb.LogStream_LOG_STREAM_STDOUT, Data: stdout}}})
	ended := s.now()
	status(pb.LeaseState_LEASE_STATE_SUCCEEDED)
	rec := &pb.UsageReceipt{LeaseId: l.LeaseId, Epoch: l.Epoch, Provider: []byte(p.h.ID()), Requester: l.Requester,
		JobCid: l.JobCid, Reserved: jobResources(l), StartedAtMs: protocol.UnixMs(started), EndedAtMs: protocol.UnixMs(ended),
		Price: p.price, Nonce: random(protocol.NonceSize), EgressBytes: uint64(len(stdout))}
	offerTotal, _ := protocol.Cost(rec.Reserved, p.price, time.Duration(job.Job.GetTask().GetTimeoutMs())*time.Millisecond)
	nanos, err := protocol.ReceiptAmount(rec, offerTotal.GetNanos())
	if err != nil {
		s.fail("req.countersign", "the kit cannot bill its own run: %v", err)
		return
	}
	rec.Amount = &pb.Amount{Currency: p.price.Currency, Nanos: nanos}
	// One run in four of a first epoch bills a nano more than 5.5 makes of
	// the receipt's own fields: the requester must not countersign it (6.4).
	s.mu.Lock()
	s.runs++
	overbill := l.Epoch == 1 && s.runs%4 == 0
	key := leaseKey(l.LeaseId, l.Epoch)
	if overbill {
		rec.Amount.Nanos++
		s.overbilled[key] = true
	} else {
		s.billed[key] = true
	}
	s.mu.Unlock()
	renv, err := record.Seal(p.key, rec)
	if err != nil {
		return
	}
	w.WriteMsg(&pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: &pb.Result{LeaseId: l.LeaseId, Epoch: l.Epoch,
		State: pb.LeaseState_LEASE_STATE_SUCCEEDED, StdoutCid: wire.SumCID(stdout).Bytes(), StderrCid: wire.SumCID(nil).Bytes(),
		StartedAtMs: rec.StartedAtMs, EndedAtMs: rec.EndedAtMs, Receipt: renv}}})
}

// maxModule bounds the module the kit fetches: SPEC 6.5 sets no limit
// (Appendix A); the kit takes what a provider of ours takes.
const maxModule = 64 << 20

// leaseKey names a lease epoch in the suite's maps.
func leaseKey(id []byte, epoch uint64) string { return fmt.Sprintf("%x epoch %d", id, epoch) }

// jobResources returns the resources a lease's job asks, or nil.
func jobResources(l *pb.Lease) *pb.Resources {
	job, err := record.OpenJob(l.Job)
	if err != nil {
		return nil
	}
	return job.Job.GetTask().GetResources()
}

// fetchModule fetches the job's module from the requester (SPEC 6.5) and
// checks it: contiguous chunks, the last flagged, bytes hashing to the CID.
func (p *kitProvider) fetchModule(from peer.ID, cidBytes []byte) bool {
	s := p.s
	c := &conn{h: p.h, to: from}
	chunks, err := answers(s.ctx, c, protocol.ModuleID, &pb.ModuleRequest{Cid: cidBytes}, 1<<12, func(ch *pb.ModuleChunk) bool {
		return ch.Last || ch.Error != nil || ch.Size > maxModule
	})
	var buf []byte
	for _, ch := range chunks {
		switch {
		case ch.Error != nil:
			s.fail("req.module", "the requester does not serve its job's module %x: %s %q", cidBytes, ch.Error.Code, ch.Error.Message)
			return false
		case ch.Size > maxModule:
			s.skip("req.module", "a module of %d bytes: the kit fetches at most %d (SPEC 6.5 sets no limit)", ch.Size, maxModule)
			return false
		case ch.Offset != uint64(len(buf)):
			s.fail("req.module", "a chunk at offset %d of %d bytes, after %d bytes", ch.Offset, ch.Size, len(buf))
			return false
		}
		buf = append(buf, ch.Data...)
		if ch.Last {
			got := wire.SumCID(buf).Bytes()
			s.expect("req.module", bytes.Equal(got, cidBytes) && uint64(len(buf)) == ch.Size,
				"%d bytes hashing to %x, size %d, CID asked %x", len(buf), got, ch.Size, cidBytes)
			if bytes.Equal(got, cidBytes) {
				p.moduleRequests(s.ctx, from, cidBytes, buf)
			}
			return bytes.Equal(got, cidBytes)
		}
	}
	s.fail("req.module", "%d bytes and no last chunk: %v", len(buf), err)
	return false
}

// moduleRequests asks the requester for its module again as a holder must
// answer (SPEC 6.5): from an offset, the rest of it; from beyond its end,
// CODE_MALFORMED; a module it does not have, CODE_MODULE_NOT_FOUND.
func (p *kitProvider) moduleRequests(ctx context.Context, from peer.ID, cidBytes, module []byte) {
	s := p.s
	c := &conn{h: p.h, to: from}
	ask := func(req *pb.ModuleRequest) ([]*pb.ModuleChunk, error) {
		return answers(ctx, c, protocol.ModuleID, req, 1<<12, func(ch *pb.ModuleChunk) bool { return ch.Last || ch.Error != nil })
	}
	half := uint64(len(module) / 2)
	chunks, err := ask(&pb.ModuleRequest{Cid: cidBytes, Offset: half})
	var rest []byte
	contiguous := len(chunks) > 0 && chunks[0].Offset == half
	for _, ch := range chunks {
		contiguous = contiguous && ch.Offset == half+uint64(len(rest)) && ch.Error == nil
		rest = append(rest, ch.Data...)
	}
	if err != nil || !contiguous || !bytes.Equal(rest, module[half:]) {
		s.fail("req.module-serve", "the module from offset %d: %d chunks, %d bytes, %v", half, len(chunks), len(rest), err)
		return
	}
	chunks, err = ask(&pb.ModuleRequest{Cid: cidBytes, Offset: uint64(len(module)) + 1})
	if err != nil || len(chunks) != 1 || chunks[0].GetError().GetCode() != pb.Code_CODE_MALFORMED {
		s.fail("req.module-serve", "an offset beyond the module: %d chunks, %v, want one CODE_MALFORMED", len(chunks), err)
		return
	}
	chunks, err = ask(&pb.ModuleRequest{Cid: wire.SumCID([]byte("no such module")).Bytes()})
	if err != nil || len(chunks) != 1 || chunks[0].GetError().GetCode() != pb.Code_CODE_MODULE_NOT_FOUND {
		s.fail("req.module-serve", "a module it does not have: %d chunks, %v, want one CODE_MODULE_NOT_FOUND", len(chunks), err)
		return
	}
	s.pass("req.module-serve")
}

// handleReceipt checks a countersigned receipt (SPEC 6.4).
func (p *kitProvider) handleReceipt(st network.Stream) {
	defer st.Close()
	s := p.s
	sub := new(pb.ReceiptSubmit)
	w, err := read(st, sub)
	if err != nil {
		s.fail("req.countersign", "a ReceiptSubmit that does not decode: %v", err)
		return
	}
	from := st.Conn().RemotePeer()
	rec := new(pb.UsageReceipt)
	cs := new(pb.Countersignature)
	signer, _, rerr := record.Open(sub.Receipt, rec)
	csSigner, _, cerr := record.Open(sub.Countersignature, cs)
	switch {
	case rerr != nil || signer != p.h.ID():
		s.fail("req.countersign", "it submitted a receipt the kit did not issue: %v", rerr)
	case cerr != nil:
		s.fail("req.countersign", "the countersignature does not open: %v (%s)", cerr, protocol.CodeOf(cerr))
	case csSigner != from || !bytes.Equal(cs.Requester, []byte(from)) || !bytes.Equal(rec.Requester, []byte(from)):
		s.fail("req.countersign", "countersigned by %s, Countersignature.requester %x, the lease's requester %x, sent by %s", csSigner, cs.Requester, rec.Requester, from)
	case !bytes.Equal(cs.ReceiptHash, receiptHash(sub.Receipt)):
		s.fail("req.countersign", "receipt_hash %x, sha2-256 of the receipt %x", cs.ReceiptHash, receiptHash(sub.Receipt))
	default:
		s.pass("req.countersign")
	}
	w.WriteMsg(&pb.ReceiptAck{Accepted: true})
	key := leaseKey(rec.LeaseId, rec.Epoch)
	s.mu.Lock()
	if s.overbilled[key] {
		s.fail("req.receipt-checked", "it countersigned receipt of lease %x epoch %d, which bills %d nanos, one more than SPEC 5.5 makes of its fields", rec.LeaseId, rec.Epoch, rec.GetAmount().GetNanos())
	}
	s.countersigned[key] = true
	s.signed = s.signed || rec.Epoch > 1
	s.mu.Unlock()
	s.checkDone()
}

// checkDone ends the suite once the rescheduled run's receipt is
// countersigned and every silent epoch cancelled.
func (s *reqSuite) checkDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.signed {
		return
	}
	for k := range s.billed { // every right receipt came back countersigned
		if !s.countersigned[k] {
			return
		}
	}
	for n := range s.offers { // not leased: every one declined (6.1)
		if !s.declined[n] {
			return
		}
	}
	kinds := map[string]bool{}
	for _, l := range s.lies {
		kinds[l.fault] = true
	}
	if len(kinds) < len(offerFaults) {
		return
	}
	for id, e := range s.silent {
		if c, ok := s.cancelled[id]; !ok || c != e {
			return
		}
	}
	s.finish.Do(func() { close(s.done) })
}
