package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// ValidateOptions configure a validation run: what the simulator's model of
// discovery and placement is checked against. The zero value of each field
// means its default.
type ValidateOptions struct {
	Nodes   int // providers of the devnet (the default profiles, in turn); default 20
	Warm    int // placements of the devnet's requester measured, one after another, after a warm-up; default 200
	Cold    int // fresh requesters, each placing one job; default 20
	Lookups int // DHT lookups traced from each of two requesters; default 48
	// Dir holds the nodes' data; default a new temporary dir.
	Dir      string
	Progress io.Writer
}

func (o ValidateOptions) withDefaults() ValidateOptions {
	if o.Nodes <= 0 {
		o.Nodes = 20
	}
	if o.Warm <= 0 {
		o.Warm = 200
	}
	if o.Cold <= 0 {
		o.Cold = 20
	}
	if o.Lookups <= 0 {
		o.Lookups = 48
	}
	return o
}

// Validation is what one devnet measured: the placement latencies the
// simulator is held to, and the costs it is given.
type Validation struct {
	Nodes int `json:"nodes"`
	// Warm are the devnet's requester's placements (submission to lease
	// accepted, ms) once its connections are up and its lookups cached:
	// jobs one after another. Cold are the first placements of fresh
	// requesters (role requester: DHT clients), each just joined: routing
	// table filled, nothing cached, no cuivre stream opened yet.
	Warm []float64 `json:"warm_ms"`
	Cold []float64 `json:"cold_ms"`

	// StreamRTT is the p50 round trip of 8 bytes on an open stream, from
	// the requester to the providers; NewStream the same on a new stream
	// (its protocol negotiated) over an open connection; Dial a new
	// connection (QUIC handshake, security, muxer, identify) before such a
	// stream, less NewStream. All in ms.
	StreamRTT float64   `json:"stream_rtt_ms"`
	NewStream float64   `json:"new_stream_rtt_ms"`
	Dial      []float64 `json:"dial_ms"`
	// OfferExchange are offers asked by the requester and checked (a new
	// stream, the provider's quote and signature, the requester's
	// verification), declined after, in ms.
	OfferExchange []float64 `json:"offer_exchange_ms"`
	// OfferService and LeaseService are the providers' own times, in their
	// handlers, for each offer request and lease of the placements
	// measured (quote and sign; check, commit and fsync), in ms.
	OfferService []float64 `json:"offer_service_ms"`
	LeaseService []float64 `json:"lease_service_ms"`
	// DHTRPC are GET_PROVIDERS to peers already connected, from the traced
	// lookups' query events, in ms.
	DHTRPC []float64 `json:"dht_rpc_ms"`
	// Lookups traces FindProviders as the requester's placements call it,
	// two at a time (a round's two shards), from the devnet's requester (a
	// DHT server) and from a fresh one (a client), of the jurisdiction=fr
	// shards and of keys no one provides.
	Lookups []LookupTrace `json:"lookups"`
	// RoutingTable is the mean routing-table size of the fresh requesters
	// when they placed; Connected the mean share of the providers each was
	// connected to then.
	RoutingTable float64 `json:"routing_table"`
	Connected    float64 `json:"connected"`
	// Servers is the number of DHT servers: the providers and the devnet's
	// requester.
	Servers int `json:"servers"`
	// RequesterSync are commits of a job's record (bbolt's Update and its
	// fsync, without a batch's wait), in a store beside the devnet's, in ms:
	// the requester's write before each lease, less its batch delay.
	RequesterSync []float64 `json:"requester_sync_ms"`
	// WarmRate is the jobs per second of the warm measure, one after
	// another: what the simulated requester is given.
	WarmRate float64 `json:"warm_jobs_per_s"`
	// ColdHistory is each cold job's history, for reading where its time
	// went.
	ColdHistory [][]string `json:"cold_history"`
	// FirstOffer are offers a fresh requester asked, after its job, of
	// providers it had not asked yet (its first stream of the offer
	// protocol to each), and AgainOffer of one it had; FreshSync the first
	// commits of a new store, in ms.
	FirstOffer []float64 `json:"first_offer_ms"`
	// Second are the fresh requesters' second placements, right after
	// their first: lookups cached, connections up.
	Second     []float64 `json:"second_ms"`
	AgainOffer []float64 `json:"again_offer_ms"`
	FreshSync  []float64 `json:"fresh_sync_ms"`
}

// LookupTrace is one FindProviders, followed through kad-dht's query
// events.
type LookupTrace struct {
	From string `json:"from"` // "server" (the devnet's requester) or "client" (a fresh one)
	Key  string `json:"key"`
	// Holders are the DHT servers whose provider store held the key's
	// records (the k closest when they were announced, and the providers
	// themselves); Found the providers the lookup returned.
	Holders int `json:"holders"`
	Found   int `json:"found"`
	// Hops is the depth of the first holder that answered: 0 when the
	// requester holds the records itself, 1 for a peer of its own routing
	// table, 2 for one a first answer named, and so on; -1 when no holder
	// answered.
	Hops int `json:"hops"`
	// Depth is the deepest peer queried; RPCs the GET_PROVIDERS sent; Dials
	// the peers dialled for them.
	Depth int     `json:"depth"`
	RPCs  int     `json:"rpcs"`
	Dials int     `json:"dials"`
	Ms    float64 `json:"ms"`
	// Complete says the lookup ran to its end (fewer providers than it
	// needed), rather than stopping once it had them.
	Complete bool `json:"complete"`
}

// Validate starts a devnet of o.Nodes providers and measures it: the costs,
// the lookups, then warm and cold placements.
func Validate(ctx context.Context, o ValidateOptions) (*Validation, error) {
	o = o.withDefaults()
	b := &bench{o: Options{Progress: o.Progress}, start: time.Now(), values: map[string][]float64{}}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "cuivre-validate")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	d, err := devnet.Start(ctx, devnet.Options{N: o.Nodes, Dir: filepath.Join(dir, "devnet"), ClientRequesters: true})
	if err != nil {
		return nil, fmt.Errorf("devnet of %d nodes: %w", o.Nodes, err)
	}
	defer d.Close()
	v := &Validation{Nodes: o.Nodes, Servers: o.Nodes + 1}
	b.logf("devnet of %d providers up", o.Nodes)

	timers := timeHandlers(d)
	p, err := newPlacer()
	if err != nil {
		return nil, err
	}
	if err := v.costs(ctx, d, p); err != nil {
		return nil, err
	}
	b.logf("costs: stream %.3f ms, new stream %.3f ms, dial %.3f ms, offer exchange %.3f ms (p50)", v.StreamRTT, v.NewStream,
		percentile(slices.Clone(v.Dial), 50), percentile(slices.Clone(v.OfferExchange), 50))

	// Warm: the module compiled, connections up, lookups cached.
	for range warmUp {
		if _, err := p.run(ctx, d.Requester, writeModule); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	timers.reset()
	probe, err := syncProbe(dir)
	if err != nil {
		return nil, fmt.Errorf("requester's sync: %w", err)
	}
	t0 := time.Now()
	for range o.Warm {
		jv, err := p.run(ctx, d.Requester, writeModule)
		if err != nil {
			probe()
			return nil, fmt.Errorf("warm placement: %w", err)
		}
		v.Warm = append(v.Warm, jv.PlacedMs)
	}
	v.WarmRate = float64(o.Warm) / time.Since(t0).Seconds()
	if v.RequesterSync, err = probe(); err != nil {
		return nil, fmt.Errorf("requester's sync: %w", err)
	}
	v.OfferService, v.LeaseService = timers.take()
	b.logf("warm: p50 %.2f ms, p99 %.2f ms over %d jobs; offer service p50 %.3f ms, lease %.3f ms, a requester's commit %.3f ms", percentile(slices.Clone(v.Warm), 50),
		percentile(slices.Clone(v.Warm), 99), len(v.Warm), percentile(slices.Clone(v.OfferService), 50), percentile(slices.Clone(v.LeaseService), 50),
		percentile(slices.Clone(v.RequesterSync), 50))

	// Cold: fresh requesters, one job each.
	var rt, conn float64
	for range o.Cold {
		n, err := joined(ctx, d)
		if err != nil {
			return nil, err
		}
		rt += float64(n.RoutingTableSize())
		conn += float64(connected(n, d.Providers)) / float64(len(d.Providers))
		jv, err := p.run(ctx, n, writeModule)
		if err != nil {
			return nil, fmt.Errorf("cold placement: %w", err)
		}
		v.Cold = append(v.Cold, jv.PlacedMs)
		v.ColdHistory = append(v.ColdHistory, jv.History)
		if jv2, err := p.run(ctx, n, writeModule); err == nil {
			v.Second = append(v.Second, jv2.PlacedMs)
		}
		first, again, err := offersAfter(ctx, d, n, p, jv)
		if err != nil {
			return nil, err
		}
		v.FirstOffer, v.AgainOffer = append(v.FirstOffer, first...), append(v.AgainOffer, again...)
		fresh, err := freshSync(dir, len(v.Cold))
		if err != nil {
			return nil, err
		}
		v.FreshSync = append(v.FreshSync, fresh...)
	}
	v.RoutingTable, v.Connected = rt/float64(o.Cold), conn/float64(o.Cold)
	b.logf("cold: p50 %.2f ms, p99 %.2f ms over %d fresh requesters (routing table %.1f, connected to %.0f%% of providers)",
		percentile(slices.Clone(v.Cold), 50), percentile(slices.Clone(v.Cold), 99), len(v.Cold), v.RoutingTable, 100*v.Connected)

	// Lookups, last: the fresh requester traced has placed nothing.
	fresh, err := joined(ctx, d)
	if err != nil {
		return nil, err
	}
	servers := append([]*node.Node{d.Requester}, d.Providers...)
	var rpcs []float64
	for _, from := range []struct {
		name string
		n    *node.Node
	}{{"server", d.Requester}, {"client", fresh}} {
		// Two at a time, as a placement's round looks up two shards.
		for i := 0; i < o.Lookups; i += 2 {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for k := i; k < min(i+2, o.Lookups); k++ {
				var c cid.Cid
				if k%4 == 3 { // a key no one provides: a lookup to its end
					c = wire.SumCID([]byte(rand.Text()))
				} else {
					c = wire.FacetCID(protocol.FacetKey{Facet: protocol.FacetJurisdiction, Value: "fr", Shard: uint32(k % 16)})
				}
				wg.Go(func() {
					tr, times := traceLookup(ctx, from.n, c, servers)
					tr.From, tr.Key = from.name, c.String()
					mu.Lock()
					v.Lookups = append(v.Lookups, tr)
					rpcs = append(rpcs, times...)
					mu.Unlock()
				})
			}
			wg.Wait()
		}
	}
	v.DHTRPC = rpcs
	b.logf("lookups: %d traced, GET_PROVIDERS p50 %.3f ms", len(v.Lookups), percentile(slices.Clone(rpcs), 50))
	return v, nil
}

// costs measures the stream, dial and offer costs between the requester and
// the providers.
func (v *Validation) costs(ctx context.Context, d *devnet.Devnet, p *placer) error {
	req := d.Requester.Host()
	provs := d.Providers[:min(len(d.Providers), 16)]
	for _, n := range provs {
		n.Host().SetStreamHandler(echoID, echo)
		defer n.Host().RemoveStreamHandler(echoID)
	}
	var open, fresh, dial []float64
	for range 8 {
		for _, n := range provs {
			id := n.ID()
			if err := req.Connect(ctx, n.AddrInfo()); err != nil {
				return err
			}
			rt, err := roundTrips(ctx, req.NewStream, id, 5, true)
			if err != nil {
				return fmt.Errorf("stream round trip: %w", err)
			}
			nrt, err := roundTrips(ctx, req.NewStream, id, 1, false)
			if err != nil {
				return fmt.Errorf("new stream round trip: %w", err)
			}
			req.Network().ClosePeer(id)
			waitClosed(ctx, req.Network(), id)
			req.Peerstore().AddAddrs(id, n.AddrInfo().Addrs, time.Hour)
			drt, err := roundTrips(ctx, req.NewStream, id, 1, false)
			if err != nil {
				return fmt.Errorf("dial and new stream: %w", err)
			}
			open, fresh, dial = append(open, rt), append(fresh, nrt), append(dial, drt)
		}
	}
	v.StreamRTT, v.NewStream = percentile(open, 50), percentile(fresh, 50)
	for _, d := range dial {
		v.Dial = append(v.Dial, max(d-v.NewStream, 0))
	}

	spec, err := p.spec.Job(func(string) (cid.Cid, error) { return wire.SumCID(writeModule), nil })
	if err != nil {
		return err
	}
	spec.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(spec.Nonce)
	sj, err := record.SealJob(p.key, spec)
	if err != nil {
		return err
	}
	j, err := scheduler.JobFromPB(string(sj.CID.Bytes()), string(d.Requester.ID()), sj.Job)
	if err != nil {
		return err
	}
	var offers []float64
	for range 8 {
		for _, n := range provs {
			nonce := make([]byte, protocol.NonceSize)
			rand.Read(nonce)
			r := scheduler.Request{Nonce: string(nonce), Requester: j.Requester, JobCID: j.CID, Executor: j.Executor,
				Resources: j.Resources, Timeout: j.Timeout, ExpiresAt: time.Now().Add(3 * time.Second)}
			t0 := time.Now()
			o, _, err := d.Requester.RequestOffer(ctx, n.ID(), r)
			took := time.Since(t0)
			if err != nil {
				if protocol.CodeOf(err) == pb.Code_CODE_CONSTRAINT_MISMATCH {
					continue
				}
				return fmt.Errorf("offer: %w", err)
			}
			offers = append(offers, ms(took))
			requester.Decline(ctx, d.Requester.Transport(), o.Provider, o.Nonce, j.CID)
		}
	}
	v.OfferExchange = offers
	return nil
}

// joined adds a fresh requester to the devnet and returns once it has joined
// the DHT: its routing table as full as a bucket, or the devnet, and no
// longer growing (its bootstrap's walks over).
func joined(ctx context.Context, d *devnet.Devnet) (*node.Node, error) {
	n, err := d.NewRequester(ctx)
	if err != nil {
		return nil, err
	}
	want := min(len(d.Providers), 20)
	if err := devnet.WaitFor(ctx, 10*time.Second, func() bool { return n.RoutingTableSize() >= want }); err != nil {
		return nil, err
	}
	last, since := n.RoutingTableSize(), time.Now()
	err = devnet.WaitFor(ctx, 10*time.Second, func() bool {
		if size := n.RoutingTableSize(); size != last {
			last, since = size, time.Now()
		}
		return time.Since(since) > 300*time.Millisecond
	})
	return n, err
}

// syncProbe samples, while the warm placements run, what a commit of a
// requester's store costs: every 10 ms, a job's record put and synced
// (bbolt's Update: the fsync without a batch's wait), in a store of its
// own beside the devnet's, on the same disk at the same moments. The
// function it returns stops it and returns the times, in ms.
func syncProbe(dir string) (func() ([]float64, error), error) {
	st, err := store.Open(filepath.Join(dir, "sync-probe.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	env := make([]byte, 600)
	rand.Read(env)
	stop, done := make(chan struct{}), make(chan struct{})
	var lat []float64
	var perr error
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			j := store.Job{CID: string(wire.SumCID([]byte(fmt.Sprint("job-", i))).Bytes()), Envelope: env, SpecFile: "bench.yaml",
				Submitted: time.Now(), State: scheduler.JobPlacing}
			t0 := time.Now()
			if perr = st.Update(func(tx *store.Tx) error { return tx.PutJob(j) }); perr != nil {
				return
			}
			lat = append(lat, ms(time.Since(t0)))
		}
	}()
	return func() ([]float64, error) {
		close(stop)
		<-done
		return lat, errors.Join(perr, st.Close())
	}, nil
}

// offersAfter asks, from requester n after its first job jv, offers of two
// fr providers it has not asked yet and of the one its job leased, and
// returns their times in ms.
func offersAfter(ctx context.Context, d *devnet.Devnet, n *node.Node, p *placer, jv requester.JobView) (first, again []float64, err error) {
	spec, err := p.spec.Job(func(string) (cid.Cid, error) { return wire.SumCID(writeModule), nil })
	if err != nil {
		return nil, nil, err
	}
	spec.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(spec.Nonce)
	sj, err := record.SealJob(p.key, spec)
	if err != nil {
		return nil, nil, err
	}
	j, err := scheduler.JobFromPB(string(sj.CID.Bytes()), string(n.ID()), sj.Job)
	if err != nil {
		return nil, nil, err
	}
	ask := func(to peer.ID) (float64, error) {
		nonce := make([]byte, protocol.NonceSize)
		rand.Read(nonce)
		r := scheduler.Request{Nonce: string(nonce), Requester: j.Requester, JobCID: j.CID, Executor: j.Executor,
			Resources: j.Resources, Timeout: j.Timeout, ExpiresAt: time.Now().Add(3 * time.Second)}
		t0 := time.Now()
		o, _, err := n.RequestOffer(ctx, to, r)
		took := ms(time.Since(t0))
		if err == nil {
			requester.Decline(ctx, n.Transport(), o.Provider, o.Nonce, j.CID)
		}
		return took, err
	}
	leased := ""
	if len(jv.Slots) > 0 {
		leased = jv.Slots[0].Provider
	}
	for i, prov := range d.Providers {
		if len(first) == 2 {
			break
		}
		if d.Profiles[i].Region[:2] != "fr" || prov.ID().String() == leased {
			continue
		}
		if took, err := ask(prov.ID()); err == nil {
			first = append(first, took)
		}
	}
	if id, err := peer.Decode(leased); err == nil {
		if took, err := ask(id); err == nil {
			again = append(again, took)
		}
	}
	return first, again, nil
}

// freshSync returns the times of the first three commits of a new store, in
// ms: what a requester just started pays, its file growing.
func freshSync(dir string, i int) ([]float64, error) {
	st, err := store.Open(filepath.Join(dir, fmt.Sprintf("fresh-%d.db", i)), store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var lat []float64
	for k := range 3 {
		j := store.Job{CID: string(wire.SumCID([]byte(fmt.Sprint("fresh-", i, "-", k))).Bytes()), Envelope: make([]byte, 600),
			SpecFile: "bench.yaml", Submitted: time.Now(), State: scheduler.JobPlacing}
		t0 := time.Now()
		if err := st.Update(func(tx *store.Tx) error { return tx.PutJob(j) }); err != nil {
			return nil, err
		}
		lat = append(lat, ms(time.Since(t0)))
	}
	return lat, nil
}

// waitClosed waits until the network has no connection to p.
func waitClosed(ctx context.Context, n network.Network, p peer.ID) {
	for n.Connectedness(p) == network.Connected && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}

// connected counts the providers n has a connection to.
func connected(n *node.Node, provs []*node.Node) int {
	c := 0
	for _, p := range provs {
		if n.Host().Network().Connectedness(p.ID()) == network.Connected {
			c++
		}
	}
	return c
}

// traceLookup looks c up from n as the requester's placements do (SPEC 4.3:
// the daemon asks for MinLookup + 1 providers, stops once it has one and
// its grace has passed), following kad-dht's query events, and returns the
// trace and the times of the GET_PROVIDERS answered by peers already
// connected.
func traceLookup(ctx context.Context, n *node.Node, c cid.Cid, servers []*node.Node) (LookupTrace, []float64) {
	tr := LookupTrace{Hops: -1}
	holder := map[peer.ID]bool{}
	for _, s := range servers {
		if ps, err := s.Transport().DHT().ProviderStore().GetProviders(ctx, c.Hash()); err == nil && len(ps) > 0 {
			holder[s.ID()] = true
			tr.Holders++
		}
	}
	if holder[n.ID()] {
		tr.Hops = 0
	}
	depth := map[peer.ID]int{}
	for _, p := range n.Transport().DHT().RoutingTable().NearestPeers(kb.ConvertKey(string(c.Hash())), 20) {
		depth[p] = 1
	}
	ectx, cancel := context.WithCancel(ctx)
	ectx, events := routing.RegisterForQueryEvents(ectx)
	var times []float64
	done := make(chan struct{})
	go func() {
		defer close(done)
		sent := map[peer.ID]time.Time{}
		dialled := map[peer.ID]bool{}
		for ev := range events {
			now := time.Now()
			switch ev.Type {
			case routing.DialingPeer:
				tr.Dials++
				dialled[ev.ID] = true
			case routing.SendingQuery:
				tr.RPCs++
				sent[ev.ID] = now
				if depth[ev.ID] == 0 {
					depth[ev.ID] = 1
				}
				tr.Depth = max(tr.Depth, depth[ev.ID])
			case routing.PeerResponse:
				if t, ok := sent[ev.ID]; ok && !dialled[ev.ID] {
					times = append(times, ms(now.Sub(t)))
				}
				if holder[ev.ID] && tr.Hops < 0 {
					tr.Hops = depth[ev.ID]
				}
				for _, r := range ev.Responses {
					if depth[r.ID] == 0 {
						depth[r.ID] = depth[ev.ID] + 1
					}
				}
			}
		}
	}()
	lctx, lcancel := context.WithTimeout(ectx, 10*time.Second)
	t0 := time.Now()
	found, complete := n.Transport().FindProviders(lctx, c, scheduler.MinLookup+1, 1, 2*time.Millisecond)
	tr.Ms = ms(time.Since(t0))
	lcancel()
	cancel()
	<-done
	tr.Found, tr.Complete = len(found), complete
	return tr, times
}

// handlerTimer wraps a provider's handler and times its offers and leases.
type handlerTimer struct {
	transport.Handler
	t *timers
}

type timers struct {
	mu             sync.Mutex
	offers, leases []float64
}

func (t *timers) reset() {
	t.mu.Lock()
	t.offers, t.leases = nil, nil
	t.mu.Unlock()
}

func (t *timers) take() (offers, leases []float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	offers, leases, t.offers, t.leases = t.offers, t.leases, nil, nil
	return offers, leases
}

func (h handlerTimer) Offer(ctx context.Context, from string, req *pb.OfferRequest) *pb.OfferResponse {
	t0 := time.Now()
	r := h.Handler.Offer(ctx, from, req)
	took := ms(time.Since(t0))
	h.t.mu.Lock()
	h.t.offers = append(h.t.offers, took)
	h.t.mu.Unlock()
	return r
}

func (h handlerTimer) Lease(ctx context.Context, from string, req *pb.LeaseRequest) (*pb.LeaseAnswer, func()) {
	t0 := time.Now()
	a, then := h.Handler.Lease(ctx, from, req)
	took := ms(time.Since(t0))
	if _, ok := req.Kind.(*pb.LeaseRequest_Lease); ok {
		h.t.mu.Lock()
		h.t.leases = append(h.t.leases, took)
		h.t.mu.Unlock()
	}
	return a, then
}

// timeHandlers puts a timer around every provider's handler.
func timeHandlers(d *devnet.Devnet) *timers {
	t := &timers{}
	for _, n := range d.Providers {
		n.Transport().Serve(handlerTimer{Handler: n.Handler(), t: t})
	}
	return t
}
