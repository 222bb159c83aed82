package node

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"

	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// startRequesterDaemon starts a requester daemon as `cuivre daemon` would,
// from a data dir made by `cuivre init --role requester`, on loopback,
// bootstrapped from boot, and waits until it has a DHT peer.
func startRequesterDaemon(t *testing.T, boot peer.AddrInfo) *Daemon {
	t.Helper()
	dir := t.TempDir()
	res, err := config.InitRole(dir, false, config.RoleRequester)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := peer.AddrInfoToP2pAddrs(&boot)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(res.ConfigPath, nil, map[string]string{"listen": "/ip4/127.0.0.1/udp/0/quic-v1",
		"api.listen": "127.0.0.1:0", "bootstrap": addrs[0].String()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := StartDaemon(ctx, dir, c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(0); err != nil {
			t.Errorf("stop the requester: %v", err)
		}
	})
	waitFor(t, time.Minute, "the requester's first DHT peer", func() bool { return d.Node.Ready() == nil })
	return d
}

// input is a root and the size of its files, as a job names an input.
type input struct {
	root cid.Cid
	size uint64
}

// submitSpec signs a job spec whose module is module and whose inputs name
// the roots in inputs (by source), with n's key, and submits it to n.
func submitSpec(t *testing.T, n *Node, spec string, module []byte, inputs map[string]input) string {
	t.Helper()
	key, err := n.Submit(sealSpec(t, n, spec, module, inputs), module, "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// sealSpec signs a job spec as submitSpec does, and returns the envelope.
func sealSpec(t *testing.T, n *Node, spec string, module []byte, inputs map[string]input) []byte {
	t.Helper()
	s, err := jobspec.ParseJobSpecFile("job.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveInputs(func(src string, _ cid.Cid) (cid.Cid, uint64, error) {
		in, ok := inputs[src]
		if !ok {
			return cid.Undef, 0, errors.New("no such input")
		}
		return in.root, in.size, nil
	}); err != nil {
		t.Fatal(err)
	}
	j, err := s.Job(func(string) (cid.Cid, error) { return wire.SumCID(module), nil })
	if err != nil {
		t.Fatal(err)
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(j.Nonce)
	sj, err := record.SealJob(n.Identity(), j)
	if err != nil {
		t.Fatal(err)
	}
	return sj.Envelope
}

// TestRequesterOnly: a requester daemon (role requester) places a job over
// its own data on a provider, which fetches the module and the input from
// it, and gets the output back and the receipt countersigned; yet it sells
// nothing. It is under no facet key and has no capacity record; it is in no
// provider's routing table (its DHT runs in client mode); the protocols only
// a seller answers (offer, lease, watch, receipt) are not registered on its
// host, so a stream to it on one of them fails in multistream negotiation
// (SPEC 1, 4.1), while module and blocks are answered; and a job another
// node submits runs elsewhere.
func TestRequesterOnly(t *testing.T) {
	other, provs := federation(t, []string{"fr-par", "fr-lyo"})
	d := startRequesterDaemon(t, provs[0].AddrInfo())
	r := d.Node
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if d.Exec != nil || r.Role() != config.RoleRequester || r.Status().Role != config.RoleRequester {
		t.Fatalf("requester daemon: executor %v, role %q, status role %q", d.Exec, r.Role(), r.Status().Role)
	}
	if got := provs[0].Status().Role; got != config.RoleProvider {
		t.Errorf("a provider's status role %q", got)
	}

	// Its job, over its own data, runs on a provider.
	root, size, err := d.Data.AddFS(ctx, fstest.MapFS{"a.txt": {Data: []byte("le cuivre et le courant\n")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wordfreq := exectest.Module(t, "wordfreq")
	key := submitSpec(t, r, "version: 1\nname: words\ntask:\n  module: m.wasm\n  args: [corpus]\n  inputs:\n    - {path: corpus, source: corpus}\n"+
		"  outputs: [words.txt]\n  resources: {cpu: 500m, memory: 64Mi, scratch: 1Mi}\n", wordfreq,
		map[string]input{"corpus": {root, size}})
	v, err := r.Wait(ctx, key)
	if err != nil || v.State != "succeeded" {
		t.Fatalf("the requester's job: %+v, %v", v, err)
	}
	ran := slices.IndexFunc(provs, func(p *Node) bool { return p.ID().String() == v.Slots[0].Provider })
	if ran < 0 {
		t.Fatalf("the requester's job ran on %s, no provider", v.Slots[0].Provider)
	}
	waitFor(t, time.Minute, "the output fetched back and the receipt countersigned", func() bool {
		v, _ := r.Job(key)
		rs, err := provs[ran].opts.Store.Receipts()
		return len(v.Outputs) == 1 && v.Outputs[0].Held && err == nil && len(rs) == 1 && len(rs[0].Countersignature) > 0
	})

	// A job of another node runs elsewhere.
	hello := exectest.Module(t, "hello")
	const hi = "version: 1\nname: hi\ntask:\n  module: m.wasm\n  resources: {cpu: 500m, memory: 64Mi}\n"
	key = submitSpec(t, other, hi, hello, nil)
	if v, err := other.Wait(ctx, key); err != nil || v.State != "succeeded" || v.Slots[0].Provider == r.ID().String() {
		t.Fatalf("another node's job: %+v, %v: want it succeeded on a provider", v, err)
	}
	quotes, err := other.Quote(ctx, sealSpec(t, other, hi, hello, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range quotes {
		if q.Provider == r.ID().String() {
			t.Errorf("another node's quote asked the requester: %+v", q)
		}
	}

	// It announces nothing: under no facet key a provider of its labels
	// would be found under, its own shards and the providers' alike.
	for _, p := range provs {
		if slices.Contains(p.Transport().RoutingPeers(), string(r.ID())) {
			t.Errorf("provider %s has the requester in its routing table", p.ID())
		}
	}
	m := provs[0].prov.Offering()
	keys := scheduler.ProviderKeys(string(r.ID()), m.Labels, m.Executors, m.Capacity)
	for _, p := range provs {
		keys = append(keys, scheduler.ProviderKeys(string(p.ID()), m.Labels, m.Executors, m.Capacity)...)
	}
	found := 0
	for _, k := range keys {
		ids := other.FindProviders(ctx, k, 20)
		if slices.Contains(ids, r.ID()) {
			t.Errorf("the requester is found under %s", k)
		}
		found += len(ids)
	}
	if found == 0 {
		t.Fatal("no provider found under any key: the lookups prove nothing")
	}
	if _, err := other.Capacity(ctx, r.ID()); err == nil {
		t.Error("the requester has a capacity record in the DHT")
	}
	if err := r.Advertise(ctx); !errors.Is(err, errSellsNothing) {
		t.Errorf("Advertise() = %v, want %v", err, errSellsNothing)
	}
	if err := r.PublishCapacity(ctx); !errors.Is(err, errSellsNothing) {
		t.Errorf("PublishCapacity() = %v, want %v", err, errSellsNothing)
	}

	// The seller's protocols are not registered: an offer request, a lease,
	// a watch and a receipt each fail negotiation before any message.
	notSupported := func(what string, err error) {
		t.Helper()
		if !errors.As(err, new(msmux.ErrNotSupported[p2pproto.ID])) {
			t.Errorf("%s to the requester: %v, want the protocol not supported", what, err)
		}
	}
	_, _, err = other.RequestOffer(ctx, r.ID(), scheduler.Request{Nonce: nonce(t), JobCID: string(wire.SumCID([]byte("j")).Bytes()), Resources: scheduler.Resources{CPUMillis: 100, MemoryBytes: 16 << 20},
		Timeout: time.Second, ExpiresAt: time.Now().Add(10 * time.Second)})
	notSupported("an offer request", err)
	_, err = other.Transport().Lease(ctx, string(r.ID()), &pb.LeaseRequest{Kind: &pb.LeaseRequest_Decline{Decline: &pb.Decline{OfferNonce: make([]byte, 16)}}})
	notSupported("a decline", err)
	err = other.Transport().Watch(ctx, string(r.ID()), &pb.WatchRequest{LeaseId: make([]byte, 16), Epoch: 1}, func(*pb.WatchEvent) bool { return false })
	notSupported("a watch", err)
	_, err = other.Transport().Receipt(ctx, string(r.ID()), &pb.ReceiptSubmit{})
	notSupported("a receipt", err)
	// What a buyer serves is answered: its job's module to anyone who asks,
	// its data to the peers it granted it only.
	var module []byte
	err = other.Transport().Module(ctx, string(r.ID()), &pb.ModuleRequest{Cid: wire.SumCID(wordfreq).Bytes()}, func(ch *pb.ModuleChunk) bool {
		module = append(module, ch.Data...)
		return !ch.Last && ch.Error == nil
	})
	if err != nil || wire.SumCID(module) != wire.SumCID(wordfreq) {
		t.Errorf("the job's module from the requester: %d bytes, %v", len(module), err)
	}
	var refusal pb.Code
	err = other.Transport().Blocks(ctx, string(r.ID()), &pb.BlockRequest{Cids: [][]byte{root.Bytes()}, Root: root.Bytes()}, func(b *pb.BlockResponse) bool {
		refusal = b.GetError().GetCode()
		return false
	})
	if err != nil || refusal != pb.Code_CODE_UNAUTHORIZED {
		t.Errorf("blocks of data not granted: %v, %v; want CODE_UNAUTHORIZED", refusal, err)
	}
	// Identify tells every peer as much, and no DHT protocol (client mode).
	protos, err := provs[ran].Host().Peerstore().GetProtocols(r.ID())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []p2pproto.ID{protocol.OfferID, protocol.LeaseID, protocol.WatchID, protocol.ReceiptID, protocol.DHTPrefix + "/kad/1.0.0"} {
		if slices.Contains(protos, id) {
			t.Errorf("the requester announces %s", id)
		}
	}
	for _, id := range []p2pproto.ID{protocol.ModuleID, protocol.BlocksID} {
		if !slices.Contains(protos, id) {
			t.Errorf("the requester does not announce %s: %v", id, protos)
		}
	}
}

// TestLoneProvider: a federation of one provider and one customer's
// requester-only node. The requester, a DHT client, never enters the
// provider's routing table, so the provider has nobody to store its records
// with; it keeps them in its own DHT store, where the requester's lookups,
// which ask it, find them.
func TestLoneProvider(t *testing.T) {
	ex := exectest.NewExecutor(t, exec.Config{})
	p, err := New(Options{Identity: newKey(t), Market: testMarket(), Store: openStore(t), Exec: ex, Data: openData(t), ProvideValidity: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := startRequesterDaemon(t, p.AddrInfo()).Node
	if n := p.RoutingTableSize(); n != 0 {
		t.Fatalf("the provider's routing table holds %d peers: want none, its only peer being a DHT client", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := submitSpec(t, r, "version: 1\nname: hi\ntask:\n  module: m.wasm\n  resources: {cpu: 500m, memory: 64Mi}\n", exectest.Module(t, "hello"), nil)
	v, err := r.Wait(ctx, key)
	if err != nil || v.State != "succeeded" || v.Slots[0].Provider != p.ID().String() {
		t.Fatalf("the customer's job: %+v, %v: want it succeeded on the lone provider", v, err)
	}
}
