package chaos

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// jobView is what the harness reads of a requester's JobView (GET
// /v1/jobs/{cid}): its own copy of the fields it needs, so that it reads
// any daemon that serves them.
type jobView struct {
	CID       string      `json:"cid"`
	State     string      `json:"state"`
	Code      int32       `json:"code"`
	Reason    string      `json:"reason"`
	Slots     []slotView  `json:"slots"`
	Submitted time.Time   `json:"submitted"`
	PlacedMs  float64     `json:"placed_ms"`
	Events    []eventView `json:"events"`
}

type slotView struct {
	Provider string `json:"provider"`
	Epoch    uint64 `json:"epoch"`
	State    string `json:"state"`
	ExitCode int32  `json:"exit_code"`
}

// eventView is one step of a slot's leases, as the requester saw it:
// "leased" (the provider acknowledged an epoch), "lost" (the requester
// declared it lost) or "ended" (a result came).
type eventView struct {
	At       time.Time `json:"at"`
	Slot     int       `json:"slot"`
	Epoch    uint64    `json:"epoch"`
	Provider string    `json:"provider"`
	Kind     string    `json:"kind"`
}

func (v *jobView) ended() bool {
	switch v.State {
	case "succeeded", "failed", "cancelled":
		return true
	}
	return false
}

// placed says the job got a lease at some point.
func (v *jobView) placed() bool {
	if v.PlacedMs > 0 || v.State == "succeeded" {
		return true
	}
	for _, s := range v.Slots {
		if s.Provider != "" {
			return true
		}
	}
	return false
}

// ownFault says a failed job failed by its own doing: its program exited
// non-zero or ran past its own timeout. Every other end is the
// federation's.
func (v *jobView) ownFault() bool {
	if v.State != "failed" || scheduler.Reason(v.Code) != scheduler.ReasonRunFailed {
		return false
	}
	for _, s := range v.Slots {
		if s.State == "failed" && s.ExitCode != 0 {
			return true
		}
	}
	r := strings.ToLower(v.Reason)
	return strings.Contains(r, "timeout") || strings.Contains(r, "timed out")
}

// jobSpec is the job the harness submits over and over: the sieve, one
// vCPU, for a few seconds.
type jobSpec struct {
	module    []byte
	moduleCID cid.Cid
	args      []string
	timeout   time.Duration
	heartbeat time.Duration
	placement time.Duration
}

func newJobSpec(module []byte, args []string, heartbeat, placement time.Duration) jobSpec {
	return jobSpec{module: module, moduleCID: wire.SumCID(module), args: args, timeout: time.Minute, heartbeat: heartbeat, placement: placement}
}

// seal signs a fresh job (its own nonce, so its own CID) with key.
func (s jobSpec) seal(key crypto.PrivKey) (*record.SignedJob, error) {
	j := &pb.Job{Version: 1, Name: "chaos", Type: pb.JobType_JOB_TYPE_BATCH, Count: 1, Replicas: 1,
		Task: &pb.Task{Engine: "wasm", ModuleCid: s.moduleCID.Bytes(), Args: s.args,
			Resources: &pb.Resources{CpuMillis: 1000, MemoryBytes: 64 << 20, ScratchBytes: 1 << 20},
			TimeoutMs: uint64(s.timeout / time.Millisecond)},
		HeartbeatMs:        uint64(s.heartbeat / time.Millisecond),
		PlacementTimeoutMs: uint64(s.placement / time.Millisecond),
		Nonce:              make([]byte, protocol.NonceSize)}
	rand.Read(j.Nonce)
	return record.SealJob(key, j)
}

// job is one job the harness submitted, and what it last read of it.
type job struct {
	cid       string
	requester int
	submitted time.Time
	view      jobView
	seen      bool   // the requester has shown it at least once
	err       string // why its view could not be read at the end
}

// ledger is every job submitted, by CID.
type ledger struct {
	mu      sync.Mutex
	jobs    map[string]*job
	order   []*job
	skipped int // ticks with no requester up
	refused []string
}

func (l *ledger) add(j *job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.jobs == nil {
		l.jobs = map[string]*job{}
	}
	l.jobs[j.cid] = j
	l.order = append(l.order, j)
}

// open counts the jobs not yet ended.
func (l *ledger) open() (open, done int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range l.order {
		if j.view.ended() {
			done++
		} else {
			open++
		}
	}
	return open, done
}

func (l *ledger) all() []*job {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*job(nil), l.order...)
}

// submit posts a job to a requester's API; it returns the job's CID once
// the requester has acknowledged it (its Submit returns after the job is
// synced).
func submit(c *api.Client, env, module []byte) (string, error) {
	var resp api.SubmitResponse
	if err := c.Do("POST", "/v1/jobs", api.SubmitRequest{Job: env, Module: module, Spec: "chaos"}, &resp); err != nil {
		return "", err
	}
	return resp.CID, nil
}
