package node

import (
	"context"
	"crypto/rand"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// ProviderView is a provider as `cuivre node list` shows it: what its signed
// capacity record in the DHT claims.
type ProviderView struct {
	ID          string              `json:"id"`
	Labels      map[string]string   `json:"labels"`
	Total       scheduler.Resources `json:"total"`
	Free        scheduler.Resources `json:"free"`
	CPUPerHour  string              `json:"cpu_per_hour"`
	MemPerHour  string              `json:"memory_gib_per_hour"`
	RecordAgeMs int64               `json:"record_age_ms"`
}

// Providers reads the capacity records of the peers in the routing table, in
// parallel, and returns those that verify, sorted by ID.
func (n *Node) Providers(ctx context.Context) []ProviderView {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var out []ProviderView
	var wg sync.WaitGroup
	for _, p := range n.dht.RoutingTable().ListPeers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := n.Capacity(ctx, p)
			if err != nil {
				return
			}
			v := ProviderView{ID: p.String(), Labels: map[string]string{}, Total: resourcesFromPB(rec.Total), Free: resourcesFromPB(rec.Free),
				RecordAgeMs: n.now().Sub(protocol.FromUnixMs(rec.IssuedAtMs)).Milliseconds()}
			for _, l := range rec.Labels {
				v.Labels[l.Key] = l.Value
			}
			hour := func(perSecond uint64) string {
				return protocol.FormatAmount(&pb.Amount{Currency: rec.GetPrice().GetCurrency(), Nanos: perSecond * 3600})
			}
			v.CPUPerHour, v.MemPerHour = hour(rec.GetPrice().GetCpuNanosPerSecond()), hour(rec.GetPrice().GetMemoryNanosPerGibSecond())
			mu.Lock()
			out = append(out, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out
}

// QuoteView is one provider's answer to a dry-run quote.
type QuoteView struct {
	Provider string `json:"provider"`
	Price    string `json:"price,omitempty"`
	Load     uint32 `json:"load_permille,omitempty"`
	Refusal  string `json:"refusal,omitempty"`
}

// Quote asks every provider in the routing table for an offer on a sealed
// job, declines every offer at once, and returns who would run it at what
// price and who refuses and why: a market quote that leases nothing.
func (n *Node) Quote(ctx context.Context, jobEnv []byte) ([]QuoteView, error) {
	sj, err := record.OpenJob(jobEnv)
	if err != nil {
		return nil, err
	}
	j, err := scheduler.JobFromPB(string(sj.CID.Bytes()), string(n.ID()), sj.Job)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var out []QuoteView
	var wg sync.WaitGroup
	for _, p := range n.dht.RoutingTable().ListPeers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nonce := make([]byte, protocol.NonceSize)
			rand.Read(nonce)
			req := scheduler.Request{Nonce: string(nonce), Requester: j.Requester, JobCID: j.CID, Executor: j.Executor,
				Resources: j.Resources, Timeout: j.Timeout, Constraints: j.Constraints, MaxPrice: j.MaxPrice,
				ExpiresAt: n.now().Add(3 * time.Second)}
			v := QuoteView{Provider: p.String()}
			o, _, err := n.RequestOffer(ctx, p, req)
			if err != nil {
				v.Refusal = err.Error()
			} else {
				v.Price = protocol.FormatAmount(&pb.Amount{Currency: o.Total.Currency, Nanos: o.Total.Nanos})
				v.Load = o.LoadPermille
				n.Decline(ctx, peer.ID(o.Provider), o.Nonce, j.CID)
			}
			mu.Lock()
			out = append(out, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, k int) bool {
		if (out[i].Refusal == "") != (out[k].Refusal == "") {
			return out[i].Refusal == ""
		}
		return out[i].Provider < out[k].Provider
	})
	return out, nil
}
