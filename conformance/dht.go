package conformance

import (
	"context"
	"time"

	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-msgio/pbio"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// dhtTimeout bounds each DHT lookup of the suite.
const dhtTimeout = 20 * time.Second

// dhtChecks reads the provider's capacity record and its facet keys from
// the private DHT, joined through the provider itself, in client mode.
func (s *provSuite) dhtChecks(ctx context.Context) {
	d, err := dht.New(s.h, dht.Mode(dht.ModeClient), dht.ProtocolPrefix(protocol.DHTPrefix),
		dht.BootstrapPeers(s.o.Target), dht.NamespacedValidator(protocol.CapacityNamespace, record.CapacityValidator{Now: s.now}))
	if err != nil {
		s.skip("capacity.record", "start a DHT client: %v", err)
		return
	}
	defer d.Close()
	// The provider is the kit's one DHT peer: it joins the routing table
	// now, once it is known to speak the DHT protocol (identify told, on
	// the connection the suite opened), rather than after kad-dht's own
	// liveness check, which runs in the background.
	kad := p2pproto.ID(protocol.DHTPrefix + "/kad/1.0.0")
	if p, err := s.h.Peerstore().FirstSupportedProtocol(s.target, kad); err != nil || p == "" {
		s.fail("capacity.record", "the provider does not speak %s (4.1)", kad)
		return
	}
	if _, err := d.RoutingTable().TryAddPeer(s.target, true, false); err != nil {
		s.skip("capacity.record", "add the provider to the routing table: %v", err)
		return
	}
	key := record.CapacityKey(s.target)
	gctx, cancel := context.WithTimeout(ctx, dhtTimeout)
	env, err := d.GetValue(gctx, key)
	cancel()
	if err != nil {
		s.fail("capacity.record", "GetValue(/%s/<peer ID>): %v", protocol.CapacityNamespace, err)
		return
	}
	rec := new(pb.CapacityRecord)
	signer, _, err := record.Open(env, rec)
	if err != nil {
		s.fail("capacity.record", "the record does not open: %v", err)
		return
	}
	s.expect("capacity.signer", signer == s.target && string(rec.Provider) == string(signer), "signer %s, CapacityRecord.provider %x", signer, rec.Provider)
	if _, err := (record.CapacityValidator{Now: s.now}).Open(key, env); err != nil {
		s.fail("capacity.record", "%v", err)
		return
	}
	s.pass("capacity.record")
	s.capRec = rec

	labels := map[string]string{}
	for _, l := range rec.Labels {
		labels[l.Key] = l.Value
	}
	type fv struct {
		f protocol.Facet
		v string
	}
	want := []fv{{protocol.FacetAny, ""}}
	for _, c := range []struct {
		f     protocol.Facet
		label string
	}{{protocol.FacetRegion, "region"}, {protocol.FacetJurisdiction, "jurisdiction"}, {protocol.FacetCertification, "certification"}} {
		if v, ok := labels[c.label]; ok {
			want = append(want, fv{c.f, v})
		}
	}
	for _, e := range rec.Executors {
		want = append(want, fv{protocol.FacetExecutor, e})
	}
	if rec.Total != nil {
		want = append(want, fv{protocol.FacetSize, protocol.SizeClass(rec.Total.MemoryBytes)})
	}
	var missing []string
	for _, w := range want {
		k, err := protocol.ProviderKey(w.f, w.v, string(s.target))
		if err != nil {
			continue // a value that is not a facet value is not announced (4.2)
		}
		if !s.provides(ctx, d, k) {
			missing = append(missing, k.String())
		}
	}
	s.expect("facet.keys", len(missing) == 0, "not a provider of %v", missing)
	s.capacityRefusals(ctx, kad)
	k, _ := protocol.ProviderKey(protocol.FacetAny, "", string(s.target))
	k.Shard = (k.Shard + 1) % 64
	s.expect("facet.one-shard", !s.provides(ctx, d, k), "also a provider of %s, not its shard", k)
}

// provides reports whether the provider is among the DHT providers of k.
func (s *provSuite) provides(ctx context.Context, d *dht.IpfsDHT, k protocol.FacetKey) bool {
	ctx, cancel := context.WithTimeout(ctx, dhtTimeout)
	defer cancel()
	for p := range d.FindProvidersAsync(ctx, wire.FacetCID(k), 0) {
		if p.ID == s.target {
			return true
		}
	}
	return false
}

// capacityRefusals puts capacity records into the provider's DHT server, as
// any DHT peer may, and sees the ones SPEC 3.3 and 4.4 make invalid refused:
// a DHT server answers a PUT_VALUE it stores with the message itself, and
// resets the stream on one it refuses. The kit's own valid record, put first,
// shows the difference.
func (s *provSuite) capacityRefusals(ctx context.Context, kad p2pproto.ID) {
	now := s.now()
	rec := func(edit func(*pb.CapacityRecord)) *pb.CapacityRecord {
		r := &pb.CapacityRecord{Provider: []byte(s.self), Seq: protocol.UnixMs(now), IssuedAtMs: protocol.UnixMs(now),
			ExpiresAtMs: protocol.UnixMs(now.Add(time.Minute)), Total: resources, Free: resources, Executors: []string{"wasm"}}
		if edit != nil {
			edit(r)
		}
		return r
	}
	put := func(key string, value []byte) (stored bool, err error) {
		ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
		defer cancel()
		st, err := s.h.NewStream(ctx, s.target, kad)
		if err != nil {
			return false, err
		}
		defer st.Close()
		stop := context.AfterFunc(ctx, func() { st.Reset() })
		defer stop()
		m := dhtpb.NewMessage(dhtpb.Message_PUT_VALUE, []byte(key), 0)
		m.Record = &recpb.Record{Key: []byte(key), Value: value}
		if err := pbio.NewDelimitedWriter(st).WriteMsg(m); err != nil {
			return false, err
		}
		var echo dhtpb.Message
		return pbio.NewDelimitedReader(st, 1<<20).ReadMsg(&echo) == nil, nil
	}
	own := record.CapacityKey(s.self)
	if ok, err := put(own, s.seal(s.key, rec(nil))); err != nil || !ok {
		s.skip("capacity.refused", "the provider's DHT server did not store the kit's own valid capacity record (%v): refusals cannot be told apart", err)
		return
	}
	// Each record has a higher seq than the one stored, so that it is
	// refused for its one fault, not for being older (4.4).
	big := rec(func(r *pb.CapacityRecord) { r.Seq++; r.Addrs = [][]byte{make([]byte, 17<<10)} })
	for _, c := range []struct {
		what  string
		key   string
		value []byte
	}{
		{"an expired record", own, s.seal(s.key, rec(func(r *pb.CapacityRecord) { r.Seq++; r.ExpiresAtMs = protocol.UnixMs(now.Add(-time.Second)) }))},
		{"a record expiring more than 1 h + 30 s ahead", own, s.seal(s.key, rec(func(r *pb.CapacityRecord) { r.Seq++; r.ExpiresAtMs = protocol.UnixMs(now.Add(2 * time.Hour)) }))},
		{"a record over 16 KiB", own, s.seal(s.key, big)},
		{"a record under another peer's key", record.CapacityKey(mustID(s.other)), s.seal(s.key, rec(nil))},
		{"a record whose provider field is not its signer", own, s.seal(s.key, rec(func(r *pb.CapacityRecord) { r.Seq++; r.Provider = []byte(mustID(s.other)) }))},
	} {
		if ok, err := put(c.key, c.value); ok || err != nil {
			s.fail("capacity.refused", "%s was stored (%v)", c.what, err)
			return
		}
	}
	s.pass("capacity.refused")
}
