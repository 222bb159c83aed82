package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/conformance"
	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestConformanceProvider runs the conformance kit's provider suite against
// a provider of a devnet, through the wire only: every check of the catalogue
// runs, and passes.
func TestConformanceProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	allPassed(t, runKit(t, nil), conformance.ProviderChecks)
}

// allPassed fails t unless rep has every check of catalogue, passed.
func allPassed(t *testing.T, rep conformance.Report, catalogue []conformance.Check) {
	t.Helper()
	var notPassed []string
	for _, r := range rep {
		if r.Outcome != conformance.Pass {
			notPassed = append(notPassed, r.Outcome.String()+" "+r.ID+": "+r.Seen)
		}
	}
	if len(notPassed) > 0 || len(rep) != len(catalogue) {
		t.Errorf("%d of %d checks passed; the others:\n%s", rep.Count(conformance.Pass), len(catalogue), strings.Join(notPassed, "\n"))
	}
}

// TestConformanceDeviants shows the kit catches each deviation from SPEC.md
// an outside implementation found in our provider (all fixed since): for
// each, the kit runs against a devnet provider whose wire behaviour is
// altered to deviate in exactly that way, and fails the checks of that rule
// and passes every other.
func TestConformanceDeviants(t *testing.T) {
	if testing.Short() {
		t.Skip("starts devnets")
	}
	for _, c := range []struct {
		name string
		wrap func(*node.Node) transport.Handler
		want []string // the checks failed, sorted
	}{
		{"seq-repeated", func(n *node.Node) transport.Handler { return repeatSeq{n.Handler()} },
			[]string{"watch.seq"}},
		{"no-final-status", func(n *node.Node) transport.Handler { return noFinalStatus{n.Handler()} },
			[]string{"watch.final-status", "watch.several"}},
		{"rewatch-without-status", func(n *node.Node) transport.Handler { return &bareRewatch{Handler: n.Handler()} },
			[]string{"watch.first-status", "watch.rewatch"}},
		{"receipt-amount", func(n *node.Node) transport.Handler { return &rebill{Handler: n.Handler(), key: n.Identity()} },
			[]string{"receipt.amount"}},
		{"stale-watch-streamed", func(n *node.Node) transport.Handler { return staleWatch{n.Handler()} },
			[]string{"lease.stale-epoch"}},
		{"expired-as-failed", func(n *node.Node) transport.Handler { return expiredAsFailed{n.Handler()} },
			[]string{"state.expired"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := runKit(t, c.wrap)
			if got := rep.Failed(); !slices.Equal(got, c.want) {
				t.Errorf("failed checks %v, want %v", got, c.want)
			}
			if n := rep.Count(conformance.Pass); n != len(conformance.ProviderChecks)-len(c.want) {
				t.Errorf("%d checks passed, want all %d others", n, len(conformance.ProviderChecks)-len(c.want))
			}
		})
	}
}

// kitDevnet starts a devnet of one provider for a kit's suite, closed with
// t, and returns the suite's context (2 minutes) and the module to run.
func kitDevnet(t *testing.T) (context.Context, *devnet.Devnet, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	d, err := devnet.Start(ctx, devnet.Options{N: 1, Dir: t.TempDir(), CacheDir: exectest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	mod, err := os.ReadFile("../../examples/wasm/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, d, mod
}

// runKit starts a devnet of one provider, serves its provider wrapped by
// wrap (as it is if nil), runs the kit's provider suite against it and
// returns the report, logged.
func runKit(t *testing.T, wrap func(*node.Node) transport.Handler) conformance.Report {
	t.Helper()
	ctx, d, mod := kitDevnet(t)
	p := d.Providers[0]
	if wrap != nil {
		p.Transport().Serve(wrap(p))
	}
	rep, err := conformance.RunProvider(ctx, conformance.ProviderOptions{Target: p.AddrInfo(), Module: mod})
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The deviants. Each wraps the provider's handler and alters what it
// answers, and nothing else; the provider's own events are shared between
// watches, so an altered one is a copy.

// repeatSeq repeats the seq of a FETCHING Status in the heartbeats that
// follow it, where SPEC 6.3 wants it strictly increasing.
type repeatSeq struct{ transport.Handler }

func (h repeatSeq) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	var last *pb.Status
	return h.Handler.Watch(ctx, from, req, func(ev *pb.WatchEvent) error {
		st := ev.GetStatus()
		if st == nil {
			return send(ev)
		}
		if last != nil && last.State == pb.LeaseState_LEASE_STATE_FETCHING && st.State == pb.LeaseState_LEASE_STATE_FETCHING {
			st = proto.Clone(st).(*pb.Status)
			st.Seq = last.Seq
			ev = &pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: st}}
		}
		last = st
		return send(ev)
	})
}

// noFinalStatus follows a run to its end with its logs and Result but no
// Status of its final state before them (SPEC 6.3). A watch of a lease
// already final, whose first event is that Status, keeps it: that is
// bareRewatch's deviation.
type noFinalStatus struct{ transport.Handler }

func (h noFinalStatus) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	first := true
	return h.Handler.Watch(ctx, from, req, func(ev *pb.WatchEvent) error {
		live := !first
		first = false
		if st := ev.GetStatus(); st != nil && live && protocol.Final(st.State) {
			return nil
		}
		return send(ev)
	})
}

// bareRewatch answers a watch of a finished lease, one whose Result it has
// streamed already, with the logs and the Result but no Status first (SPEC
// 6.3).
type bareRewatch struct {
	transport.Handler
	mu   sync.Mutex
	done map[leaseEpoch]bool // of the Results streamed
}

type leaseEpoch struct {
	id    string
	epoch uint64
}

func (h *bareRewatch) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	h.mu.Lock()
	finished := h.done[leaseEpoch{string(req.LeaseId), req.Epoch}]
	h.mu.Unlock()
	return h.Handler.Watch(ctx, from, req, func(ev *pb.WatchEvent) error {
		if finished && ev.GetStatus() != nil {
			return nil
		}
		if res := ev.GetResult(); res != nil {
			h.mu.Lock()
			if h.done == nil {
				h.done = map[leaseEpoch]bool{}
			}
			h.done[leaseEpoch{string(res.LeaseId), res.Epoch}] = true
			h.mu.Unlock()
		}
		return send(ev)
	})
}

// rebill signs receipts whose ended_at_ms is 1 ms after the run's end, the
// amount still billing the run's time: 1 ms less than the receipt's own
// fields say (SPEC 6.4, 5.5). Such a provider keeps the receipts it signed
// and takes them back countersigned: the provider under it, which kept its
// own, refuses them as CODE_UNKNOWN_LEASE once their countersignature has
// passed every other check, and rebill accepts those.
type rebill struct {
	transport.Handler
	key  crypto.PrivKey
	mu   sync.Mutex
	sent map[string][]byte // the provider's receipt envelope -> the one rebill sent in its place
	ours map[string]bool   // the envelopes rebill sent
}

func (h *rebill) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	return h.Handler.Watch(ctx, from, req, func(ev *pb.WatchEvent) error {
		res := ev.GetResult()
		if res == nil || len(res.Receipt) == 0 {
			return send(ev)
		}
		env, err := h.resign(res.Receipt)
		if err != nil {
			return err
		}
		res = proto.Clone(res).(*pb.Result)
		res.Receipt = env
		return send(&pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: res}})
	})
}

// resign returns the receipt rebill sends in place of the provider's env,
// the same for the same env.
func (h *rebill) resign(env []byte) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if out, ok := h.sent[string(env)]; ok {
		return out, nil
	}
	rc, err := record.OpenReceipt(env)
	if err != nil {
		return nil, err
	}
	rc.EndedAtMs++
	out, err := record.Seal(h.key, rc)
	if err != nil {
		return nil, err
	}
	if h.sent == nil {
		h.sent, h.ours = map[string][]byte{}, map[string]bool{}
	}
	h.sent[string(env)], h.ours[string(out)] = out, true
	return out, nil
}

func (h *rebill) Receipt(ctx context.Context, from string, sub *pb.ReceiptSubmit) *pb.ReceiptAck {
	ack := h.Handler.Receipt(ctx, from, sub)
	h.mu.Lock()
	ours := h.ours[string(sub.Receipt)]
	h.mu.Unlock()
	if ours && ack.GetError().GetCode() == pb.Code_CODE_UNKNOWN_LEASE {
		return &pb.ReceiptAck{Accepted: true}
	}
	return ack
}

// staleWatch answers a watch of an epoch older than the lease's, which SPEC
// 6.2 wants refused CODE_STALE_EPOCH, with the old run: stopped by the
// higher epoch, its final Status and its Result, CANCELLED and unbilled.
type staleWatch struct{ transport.Handler }

func (h staleWatch) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	return h.Handler.Watch(ctx, from, req, func(ev *pb.WatchEvent) error {
		if ev.GetError().GetCode() != pb.Code_CODE_STALE_EPOCH {
			return send(ev)
		}
		now := protocol.UnixMs(time.Now())
		st := &pb.Status{LeaseId: req.LeaseId, Epoch: req.Epoch, State: pb.LeaseState_LEASE_STATE_CANCELLED, Seq: now, AtMs: now}
		if err := send(&pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: st}}); err != nil {
			return err
		}
		return send(&pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: &pb.Result{LeaseId: req.LeaseId, Epoch: req.Epoch,
			State: pb.LeaseState_LEASE_STATE_CANCELLED, EndedAtMs: now}}})
	})
}

// expiredAsFailed ends a lease still FETCHING at its expires_at_ms FAILED
// with CODE_INTERNAL, where SPEC 9 wants it EXPIRED.
type expiredAsFailed struct{ transport.Handler }

func (h expiredAsFailed) Watch(ctx context.Context, from string, req *pb.WatchRequest, send func(*pb.WatchEvent) error) error {
	const msg = "the module fetch did not end before the lease expired"
	return h.Handler.Watch(ctx, from, req, func(ev *pb.WatchEvent) error {
		if st := ev.GetStatus(); st != nil && st.State == pb.LeaseState_LEASE_STATE_EXPIRED {
			st = proto.Clone(st).(*pb.Status)
			st.State, st.Message = pb.LeaseState_LEASE_STATE_FAILED, msg
			ev = &pb.WatchEvent{Event: &pb.WatchEvent_Status{Status: st}}
		}
		if res := ev.GetResult(); res != nil && res.State == pb.LeaseState_LEASE_STATE_EXPIRED {
			res = proto.Clone(res).(*pb.Result)
			res.State, res.Error = pb.LeaseState_LEASE_STATE_FAILED, &pb.Error{Code: pb.Code_CODE_INTERNAL, Message: msg}
			ev = &pb.WatchEvent{Event: &pb.WatchEvent_Result{Result: res}}
		}
		return send(ev)
	})
}

// TestConformanceRequester runs the conformance kit's requester suite
// against a requester of ours: a node that joins the kit's DHT only, and
// places one job of 40 slots there, through the wire only. Every check
// passes: it leases none of the offers with a fault, declines those it can
// read, countersigns no receipt that bills too much, and when the slot it
// leased first goes silent it cancels that epoch and leases the slot again.
func TestConformanceRequester(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	ctx, d, mod := kitDevnet(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var placed error
	rep, err := conformance.RunRequester(ctx, conformance.RequesterOptions{Ready: func(boot peer.AddrInfo) {
		req, err := d.NewRequesterAt(ctx, []peer.AddrInfo{boot})
		if err != nil {
			placed = err
			cancel()
			return
		}
		spec := "version: 1\nname: conformance\ncount: 40\ntask:\n  module: hello.wasm\n  resources: {cpu: 100m, memory: 32Mi}\n"
		js, err := jobspec.ParseJobSpecFile("job.yaml", []byte(spec))
		if err != nil {
			placed = err
			cancel()
			return
		}
		j, err := js.Job(func(string) (cid.Cid, error) { return wire.SumCID(mod), nil })
		if err == nil {
			j.Nonce = make([]byte, protocol.NonceSize)
			rand.Read(j.Nonce)
			var sj *record.SignedJob
			if sj, err = record.SealJob(req.Identity(), j); err == nil {
				_, err = req.Submit(sj.Envelope, mod, "job.yaml")
			}
		}
		if err != nil {
			placed = err
			cancel()
		}
	}})
	var out bytes.Buffer
	rep.Print(&out)
	t.Logf("report:\n%s", out.String())
	if placed != nil {
		t.Fatalf("place the job: %v", placed)
	}
	if err != nil {
		t.Fatal(err)
	}
	allPassed(t, rep, conformance.RequesterChecks)
}
