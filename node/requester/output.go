package requester

import (
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/protocol/pb"
)

// output is a run's output as it comes back to this node: every replica
// that reached the same root is a holder to fetch it from.
type output struct {
	size    uint64
	holders []string
	held    bool   // the whole DAG is here
	err     string // the last fetch failed: why
}

// bringOutput fetches a succeeded run's output from its provider into this
// node, in the background, and keeps it for the job. A second replica with
// the same root adds a holder; its fetch finds most blocks held.
func (r *Requester) bringOutput(j *job, provider string, res *pb.Result) {
	root, err := cid.Cast(res.OutputCid)
	if r.cfg.Data == nil || err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
		return
	}
	key := string(res.OutputCid)
	var holders []string
	j.update(func() {
		if j.outputs == nil {
			j.outputs = map[string]*output{}
		}
		o := j.outputs[key]
		if o == nil {
			o = &output{size: res.OutputSize}
			j.outputs[key] = o
		}
		o.holders = append(o.holders, provider)
		holders = append(holders, o.holders...)
	})
	owner := "job/" + j.key()
	r.spawn(func() {
		err := r.cfg.Data.Fetch(r.ctx, holders, root, owner)
		j.update(func() {
			o := j.outputs[key]
			if err != nil {
				o.err = fmt.Sprintf("fetch from %d provider(s): %v", len(holders), err)
				return
			}
			o.held, o.err = true, ""
		})
		if err != nil {
			r.log.Warn("output not fetched", "job", j.name, "output", root, "err", err)
		}
	})
}

// key is the job's CID in text form, as the API names it.
func (j *job) key() string {
	c, err := cid.Cast([]byte(j.cid))
	if err != nil {
		return fmt.Sprintf("%x", j.cid)
	}
	return c.String()
}

// OutputView is a job's output as it came back to this node.
type OutputView struct {
	CID       string   `json:"cid"`
	Size      uint64   `json:"size"`
	Providers []string `json:"providers"` // the replicas that produced it
	Held      bool     `json:"held"`      // fetched whole into this node
	Error     string   `json:"error,omitempty"`
}
