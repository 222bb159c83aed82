package requester

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

// QuoteView is one provider's answer to a dry-run quote.
type QuoteView struct {
	Provider string `json:"provider"`
	Price    string `json:"price,omitempty"`
	Load     uint32 `json:"load_permille,omitempty"`
	Refusal  string `json:"refusal,omitempty"`
}

// Quote asks each of peers for an offer on a sealed job, declines every offer
// at once, and returns who would run it at what price and who refuses and
// why: a market quote that leases nothing.
func (r *Requester) Quote(ctx context.Context, jobEnv []byte, peers []string) ([]QuoteView, error) {
	sj, err := record.OpenJob(jobEnv)
	if err != nil {
		return nil, err
	}
	j, err := scheduler.JobFromPB(string(sj.CID.Bytes()), r.id, sj.Job)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var out []QuoteView
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nonce := make([]byte, protocol.NonceSize)
			rand.Read(nonce)
			req := scheduler.Request{Nonce: string(nonce), Requester: j.Requester, JobCID: j.CID, Executor: j.Executor,
				Resources: j.Resources, Timeout: j.Timeout, Constraints: j.Constraints, MaxPrice: j.MaxPrice,
				ExpiresAt: r.clock.Now().Add(3 * time.Second)}
			v := QuoteView{Provider: peer.ID(p).String()}
			o, err := r.askOffer(ctx, nil, p, req)
			if err != nil {
				v.Refusal = err.Error()
			} else {
				v.Price = protocol.FormatAmount(&pb.Amount{Currency: o.Total.Currency, Nanos: o.Total.Nanos})
				v.Load = o.LoadPermille
				Decline(ctx, r.t, o.Provider, o.Nonce, j.CID)
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
