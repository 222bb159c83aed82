package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// TestOvercommit (T7): many jobs submitted at once to a requester daemon,
// all at the same moment, onto 5 provider daemons, one of them killed with
// SIGKILL while it accepts leases. No provider ever holds more than it
// sells: each market checks its invariant on every change (a breach
// panics the daemon), and after the run every provider's store is audited,
// its leases' committed-to-ended spans summed at every instant. Every
// submission is answered, every job succeeds (re-placed off the killed
// provider, waiting for capacity meanwhile). At full size (`make abuse`)
// that is 1,000 submissions, each answered within 5 s.
func TestOvercommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	jobs, full := 40, os.Getenv(abuseFull) == "full"
	if full {
		jobs = 1000
	}
	const providers = 5
	sell := []string{"capacity.cpu=2", "capacity.memory=2Gi", "capacity.reserve.cpu=0", "capacity.reserve.memory=0", "capacity.offered_percent=100"}
	var provs []*daemon
	var boot string
	for i := range providers {
		d := startDaemon(t, initDir(t), boot, sell...)
		if i == 0 {
			boot = d.id.Addrs[0]
		}
		provs = append(provs, d)
	}
	rDir := initDir(t)
	startDaemon(t, rDir, boot, "labels.jurisdiction=de")
	key, err := config.LoadIdentity(rDir)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := os.ReadFile("../../examples/wasm/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := jobspec.ParseJobSpec([]byte("version: 1\nname: overcommit\ntask:\n  module: hello.wasm\n  args: [--name, many]\n" +
		"  resources: {cpu: 500m, memory: 64Mi, timeout: 30s}\nplacement_timeout: 10m\nconstraints:\n  - jurisdiction = fr\n"))
	if err != nil {
		t.Fatal(err)
	}
	seal := func() []byte {
		j, err := spec.Job(func(string) (cid.Cid, error) { return wire.SumCID(hello), nil })
		if err != nil {
			t.Fatal(err)
		}
		j.Nonce = make([]byte, protocol.NonceSize)
		rand.Read(j.Nonce)
		sj, err := record.SealJob(key, j)
		if err != nil {
			t.Fatal(err)
		}
		return sj.Envelope
	}
	envs := make([][]byte, jobs)
	for i := range envs {
		envs[i] = seal()
	}
	c, err := api.Dial(rDir)
	if err != nil {
		t.Fatal(err)
	}
	// The module first, so that the submissions carry only their jobs.
	var first api.SubmitResponse
	if err := c.Do("POST", "/v1/jobs", api.SubmitRequest{Job: seal(), Module: hello}, &first); err != nil {
		t.Fatal(err)
	}
	cids := []string{first.CID}
	// It ends before the others start, so that a lease a provider commits
	// from here on is one of theirs.
	if err := c.Follow(context.Background(), first.CID, func(api.JobEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	pcs, before := make([]*api.Client, providers), make([]float64, providers)
	for i, p := range provs {
		if pcs[i], err = api.Dial(p.dir); err != nil {
			t.Fatal(err)
		}
		before[i] = leasesCommitted(t, pcs[i])
	}

	// Every submission at once.
	var (
		mu      sync.Mutex
		answers []time.Duration
		refused []string
		wg      sync.WaitGroup
		gate    = make(chan struct{})
	)
	for _, env := range envs {
		wg.Go(func() {
			<-gate
			at := time.Now()
			var resp api.SubmitResponse
			err := c.Do("POST", "/v1/jobs", api.SubmitRequest{Job: env}, &resp)
			mu.Lock()
			defer mu.Unlock()
			answers = append(answers, time.Since(at))
			if err != nil {
				refused = append(refused, err.Error())
				return
			}
			cids = append(cids, resp.CID)
		})
	}
	start := time.Now()
	close(gate)
	// Kill a provider while it accepts leases: the first to commit one of
	// these jobs', which one being the requester's choice (a provider it
	// has not yet found may get none). A count of leases committed only
	// grows, so that a lease committed and ended between two reads is seen
	// all the same, as it would not be in a count of leases held; and no
	// clock decides: should none commit, the wait ends when every job has.
	answered := make(chan struct{})
	go func() { wg.Wait(); close(answered) }()
	committed := func() int {
		for i := providers - 1; i >= 0; i-- { // the bootstrap peer last
			if leasesCommitted(t, pcs[i]) > before[i] {
				return i
			}
		}
		return -1
	}
	v := committed()
	for v < 0 {
		select {
		case <-answered:
			if jobsEnded(t, c, jobs+1) {
				if v = committed(); v < 0 {
					t.Fatal("every job ended, and no provider counted a lease committed")
				}
				continue
			}
		default:
		}
		time.Sleep(100 * time.Millisecond) // the pace of the reads, not their outcome
		v = committed()
	}
	victim := provs[v]
	victim.cmd.Process.Kill()
	victim.cmd.Wait()
	killedAt := time.Now()
	wg.Wait()
	for i, r := range refused {
		if i == 5 {
			t.Errorf("... and %d more", len(refused)-5)
			break
		}
		t.Errorf("submission refused: %s", r)
	}

	// Every job ends, and succeeds.
	var failed []string
	for _, cid := range cids {
		var v requester.JobView
		until(t, "job "+cid+" to end", 10*time.Minute, func() bool {
			if c.Get("/v1/jobs/"+cid, &v) != nil {
				return false
			}
			return v.State == "succeeded" || v.State == "failed" || v.State == "cancelled"
		})
		if v.State != "succeeded" {
			failed = append(failed, fmt.Sprintf("%s %s: %s", cid, v.State, v.Reason))
		}
	}
	for i, f := range failed {
		if i == 5 {
			t.Errorf("... and %d more", len(failed)-5)
			break
		}
		t.Errorf("job %s", f)
	}

	// Audit: at no instant did a provider's leases hold more than it sells.
	var leases, worst int
	var worstCPU, capacity uint64 = 0, 2000
	for i, p := range provs {
		if p != victim {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		st, err := store.Open(filepath.Join(p.dir, "state.db"), store.Options{})
		if err != nil {
			t.Fatalf("provider %d store: %v", i, err)
		}
		ls, err := st.Leases(nil)
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		leases += len(ls)
		peak := peakCPU(ls, time.Now())
		if peak > worstCPU {
			worstCPU, worst = peak, i
		}
		if peak > capacity {
			t.Errorf("provider %d held %dm of CPU at once in its leases, more than the %dm it sells", i, peak, capacity)
		}
	}
	slices.Sort(answers)
	report := fmt.Sprintf(`over-commit (T7): %d submissions at once to one requester, onto %d providers of 2 vCPU (4 jobs at a time each); provider %d killed with SIGKILL %s after the first submission
  submissions answered: %d, refused %d; answer p50 %s, p99 %s, max %s
  jobs: %d, succeeded %d, failed %d; %d lease epochs in the providers' stores
  most CPU held at once by one provider's leases: %dm (provider %d), of %dm sold: no over-commit
`, jobs, providers, v, killedAt.Sub(start).Round(time.Millisecond),
		len(answers), len(refused), answers[len(answers)/2].Round(time.Millisecond), answers[min(len(answers)-1, len(answers)*99/100)].Round(time.Millisecond),
		answers[len(answers)-1].Round(time.Millisecond),
		len(cids), len(cids)-len(failed), len(failed), leases, worstCPU, worst, capacity)
	t.Log(report)
	writeReport(t, report)
	if full && answers[len(answers)-1] > 5*time.Second {
		t.Errorf("a submission took %s to be answered, want every one within 5 s", answers[len(answers)-1])
	}
}

// leasesCommitted reads a provider's count of leases committed, which
// only grows: cuivre_lease_events_total{event="committed"} on its API's
// /metrics (none until its first).
func leasesCommitted(t *testing.T, c *api.Client) float64 {
	t.Helper()
	var b strings.Builder
	if err := c.Stream("/metrics", &b); err != nil {
		t.Fatalf("provider metrics: %v", err)
	}
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(line, `cuivre_lease_events_total{event="committed"} `); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("provider metrics: %q: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// jobsEnded says whether the requester c holds want jobs, all of them
// ended.
func jobsEnded(t *testing.T, c *api.Client, want int) bool {
	t.Helper()
	var vs []requester.JobView
	if err := c.Get("/v1/jobs", &vs); err != nil {
		t.Fatalf("jobs: %v", err)
	}
	for _, v := range vs {
		if v.State != "succeeded" && v.State != "failed" && v.State != "cancelled" {
			return false
		}
	}
	return len(vs) >= want
}

// peakCPU is the most CPU a provider's leases held at one instant: each
// holds its reservation from its commit to its end (or now, if it has
// none).
func peakCPU(ls []store.Lease, now time.Time) uint64 {
	type step struct {
		at  time.Time
		cpu int64
	}
	var steps []step
	for _, l := range ls {
		end := l.Ended
		if end.IsZero() {
			end = now
		}
		steps = append(steps, step{l.Committed, int64(l.Reserved.CPUMillis)}, step{end, -int64(l.Reserved.CPUMillis)})
	}
	// At one instant, ends before commits: a lease ended frees its CPU
	// for the one committed at the same millisecond.
	slices.SortFunc(steps, func(a, b step) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return int(a.cpu - b.cpu)
	})
	var held, peak int64
	for _, s := range steps {
		held += s.cpu
		peak = max(peak, held)
	}
	return uint64(peak)
}

// TestPeakCPU: the audit sums the leases held at each instant, a lease
// ended at the instant another is committed counting once.
func TestPeakCPU(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	lease := func(cpu uint64, from, to int) store.Lease {
		l := store.Lease{Committed: at(from), Reserved: scheduler.Resources{CPUMillis: cpu}}
		if to > 0 {
			l.Ended = at(to)
		}
		return l
	}
	ls := []store.Lease{lease(500, 0, 10), lease(500, 5, 20), lease(1000, 10, 15), lease(300, 12, 0)}
	if got := peakCPU(ls, at(30)); got != 1800 {
		t.Errorf("peak %dm, want 1800m (500 + 1000 + 300 from 12 s to 15 s)", got)
	}
}
