package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// abuseFull is the environment variable that runs the abuse tests at full
// size (`make abuse`); abuseReport names a file to append their reports to.
const (
	abuseFull   = "CUIVRE_ABUSE"
	abuseReport = "CUIVRE_ABUSE_REPORT"
)

// floodSize is what TestFlood's attacker does: peer IDs, connections each,
// offer requests on each connection, peer IDs at work at once; and the
// honest jobs submitted meanwhile.
type floodSize struct {
	peers, conns, streams, parallel, jobs int
}

// TestFlood (T3): from one host, many peer IDs open connections and ask a
// provider daemon for offers as fast as they can, asking for the largest
// share they may hold and never leasing one. The provider's limits are on
// for loopback (limits.loopback), and the attacker comes from another
// /24 than the honest customer (127.0.1.1 against 127.0.0.1), as it would
// over the internet. Meanwhile a customer submits jobs through its own
// daemon. Every honest job is placed and succeeds; the provider's memory
// stays under a bound; its rate limits and offer caps were hit; and within
// 30 s of the flood's end it holds no reservation and its goroutines and
// peers are back to their baseline. At full size (`make abuse`) the
// attacker is 1,000 peer IDs opening 20,000 connections and 100,000
// streams, and the customer's placement p99 must stay within 2 s.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	size, full := floodSize{peers: 40, conns: 2, streams: 5, parallel: 8, jobs: 6}, os.Getenv(abuseFull) == "full"
	if full {
		size = floodSize{peers: 1000, conns: 20, streams: 5, parallel: 16, jobs: 60}
	}
	pDir := initDir(t)
	// It sells 2.8 vCPU and 2.4 GiB; it listens on TCP too, for the
	// attacker: a TCP dial leaves from the dialer's listen address
	// (127.0.1.1), a QUIC one from 127.0.0.1 like the customer's.
	prov := startDaemon(t, pDir, "", "limits.loopback=true", "listen=/ip4/127.0.0.1/udp/0/quic-v1,/ip4/127.0.0.1/tcp/0")
	rDir := initDir(t)
	startDaemon(t, rDir, prov.id.Addrs[0], "labels.jurisdiction=de")
	target := &peer.AddrInfo{}
	for _, s := range prov.id.Addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			t.Fatal(err)
		}
		target.ID = ai.ID
		if _, err := ai.Addrs[0].ValueForProtocol(ma.P_TCP); err == nil {
			target.Addrs = append(target.Addrs, ai.Addrs...)
		}
	}
	if len(target.Addrs) == 0 {
		t.Fatalf("the provider listens on no TCP address: %v", prov.id.Addrs)
	}
	status := func() (s api.NodeStatus) {
		c, err := api.Dial(pDir)
		if err == nil {
			err = c.Get("/v1/status", &s)
		}
		if err != nil {
			t.Fatalf("provider status: %v", err)
		}
		return s
	}
	base := scrape(t, pDir)
	basePeers := status().Peers

	dir := t.TempDir()
	hello, err := filepath.Abs("../../examples/wasm/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "hello.yaml")
	writeFile(t, spec, "version: 1\nname: hello\ntask:\n  module: "+hello+"\n  args: [--name, flood]\n"+
		"  resources: {cpu: 500m, memory: 128Mi, timeout: 30s}\nconstraints:\n  - jurisdiction = fr\n")

	// The attacker.
	var (
		stop                           atomic.Bool
		conns, connsRefused            atomic.Int64
		streams, offered, rateLimited  atomic.Int64
		otherRefusals, streamsFailed   atomic.Int64
		peakHeap, peakGoroutines, peak atomic.Int64
	)
	jobCID := wire.SumCID([]byte("flood")).Bytes()
	var refusedMu sync.Mutex
	refusedBy := map[string]int{}
	attack := func(ctx context.Context) {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Error(err)
			return
		}
		// A bare go-libp2p client on TCP only: a TCP dial leaves from its
		// listen address, 127.0.1.1 (a QUIC one would leave by 127.0.0.1).
		h, err := libp2p.New(libp2p.Identity(k), libp2p.ListenAddrStrings("/ip4/127.0.1.1/tcp/0"),
			libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		offer := func(req *pb.OfferRequest) (*pb.OfferResponse, error) {
			s, err := h.NewStream(ctx, target.ID, protocol.OfferID)
			if err != nil {
				return nil, err
			}
			defer s.Close()
			s.SetDeadline(time.Now().Add(10 * time.Second))
			if err := wire.NewWriter(s, protocol.MaxOfferMsg).WriteMsg(req); err != nil {
				return nil, err
			}
			var resp pb.OfferResponse
			return &resp, wire.NewReader(s, protocol.MaxOfferMsg).ReadMsg(&resp)
		}
		for range size.conns {
			// A connection refused (the provider's per-IP limit) is
			// tried again at once, up to a hundred times.
			ok := false
			for try := 0; try < 100 && !ok; try++ {
				if ok = h.Connect(ctx, *target) == nil; !ok {
					connsRefused.Add(1)
				}
			}
			if !ok {
				continue
			}
			conns.Add(1)
			for range size.streams {
				nonce := make([]byte, protocol.NonceSize)
				rand.Read(nonce)
				streams.Add(1)
				resp, err := offer(&pb.OfferRequest{
					Nonce: nonce, JobCid: jobCID, Executor: "wasm", TimeoutMs: 60_000,
					Resources:   &pb.Resources{CpuMillis: 1000, MemoryBytes: 512 << 20},
					ExpiresAtMs: protocol.UnixMs(time.Now().Add(2 * time.Minute)),
				})
				switch {
				case err != nil:
					streamsFailed.Add(1)
				case resp.GetOffer() != nil:
					offered.Add(1)
				case resp.GetRefusal().GetCode() == pb.Code_CODE_RATE_LIMITED:
					rateLimited.Add(1)
				default:
					otherRefusals.Add(1)
					refusedMu.Lock()
					refusedBy[resp.GetRefusal().GetCode().String()+": "+resp.GetRefusal().GetMessage()[:min(40, len(resp.GetRefusal().GetMessage()))]]++
					refusedMu.Unlock()
				}
			}
			h.Network().ClosePeer(target.ID)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var attackers sync.WaitGroup
	next := atomic.Int64{}
	floodStart := time.Now()
	for range size.parallel {
		attackers.Go(func() {
			for int(next.Add(1)) <= size.peers && !stop.Load() {
				attack(ctx)
			}
		})
	}
	// The provider's memory, sampled while the flood lasts.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for !stop.Load() {
			m := scrape(t, pDir)
			peakHeap.Store(max(peakHeap.Load(), int64(m["go_memstats_heap_inuse_bytes"])))
			peakGoroutines.Store(max(peakGoroutines.Load(), int64(m["go_goroutines"])))
			peak.Store(max(peak.Load(), int64(status().Reservations)))
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	// The honest customer, during the flood.
	var cids []string
	for range size.jobs {
		cids = append(cids, detach(t, rDir, spec))
	}
	var placed []float64
	var slowest requester.JobView
	for _, cid := range cids {
		var v requester.JobView
		until(t, "job "+cid+" to end", 3*time.Minute, func() bool {
			v = viewOf(t, rDir, cid)
			return v.State == "succeeded" || v.State == "failed" || v.State == "cancelled"
		})
		if v.State != "succeeded" {
			t.Errorf("honest job %s %s during the flood: %s %q", cid, v.State, v.Reason, v.History)
		}
		placed = append(placed, v.PlacedMs)
		if v.PlacedMs >= slowest.PlacedMs {
			slowest = v
		}
	}
	attackers.Wait()
	stop.Store(true)
	<-watched
	floodEnd := time.Now()

	// Back to the baseline within 30 s.
	var after map[string]float64
	var st api.NodeStatus
	until(t, "the provider to be back to its baseline", 30*time.Second, func() bool {
		after, st = scrape(t, pDir), status()
		return st.Reservations == 0 && st.Peers <= basePeers && after["go_goroutines"] <= base["go_goroutines"]+20
	}, func() string {
		return fmt.Sprintf("%d reservations, %d peers (baseline %d), %.0f goroutines (baseline %.0f)",
			st.Reservations, st.Peers, basePeers, after["go_goroutines"], base["go_goroutines"])
	})
	back := time.Since(floodEnd)

	slices.Sort(placed)
	p99 := placed[min(len(placed)-1, int(0.99*float64(len(placed))))]
	heapBound := base["go_memstats_heap_inuse_bytes"] + 256<<20
	report := fmt.Sprintf(`flood (T3): %d peer IDs from 127.0.1.1, %d at a time, for %s
  connections opened %d, refused %d times (tried again at once, up to 100 times each); offer streams %d: %d offers, %d RATE_LIMITED, %d other refusals, %d failed
  provider: %.0f rate-limited requests counted; peak live reservations %d
  provider heap in use: baseline %.1f MiB, peak %.1f MiB (bound: baseline + 256 MiB); goroutines baseline %.0f, peak %d
  honest jobs: %d, placed p50 %.0f ms, p99 %.0f ms (max %.0f ms)
  back to baseline (no reservation, peers and goroutines as before) %s after the flood
`, size.peers, size.parallel, floodEnd.Sub(floodStart).Round(time.Millisecond),
		conns.Load(), connsRefused.Load(), streams.Load(), offered.Load(), rateLimited.Load(), otherRefusals.Load(), streamsFailed.Load(),
		after["cuivre_rate_limited_total"], peak.Load(),
		base["go_memstats_heap_inuse_bytes"]/(1<<20), float64(peakHeap.Load())/(1<<20), base["go_goroutines"], peakGoroutines.Load(),
		len(placed), placed[len(placed)/2], p99, placed[len(placed)-1], back.Round(time.Millisecond))
	t.Log(report)
	t.Logf("the slowest honest placement: %q, asked %+v", slowest.History, slowest.Asked)
	refusedMu.Lock()
	t.Logf("the attacker's refusals: %v", refusedBy)
	writeReport(t, report)

	if rateLimited.Load() == 0 {
		t.Error("no request of the flood was rate-limited: the limits did not hold, or the flood was too small to meet them")
	}
	if float64(peakHeap.Load()) > heapBound {
		t.Errorf("provider heap peaked at %.1f MiB, over the bound of %.1f MiB", float64(peakHeap.Load())/(1<<20), heapBound/(1<<20))
	}
	if full && p99 > 2000 {
		t.Errorf("honest placement p99 %.0f ms during the flood, want at most 2 s", p99)
	}
}

// scrape reads a daemon's metrics, summing the series of each name.
func scrape(t *testing.T, dir string) map[string]float64 {
	t.Helper()
	c, err := api.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Stream("/metrics", &buf); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name, rest = name[:i], line[strings.LastIndexByte(line, '}')+2:]
		}
		if v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64); err == nil {
			m[name] += v
		}
	}
	return m
}

// writeReport appends a test's report to the file CUIVRE_ABUSE_REPORT names.
func writeReport(t *testing.T, report string) {
	t.Helper()
	path := os.Getenv(abuseReport)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(report + "\n"); err != nil {
		t.Fatal(err)
	}
}
