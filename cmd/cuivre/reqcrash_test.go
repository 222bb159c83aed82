package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol/pb"
)

// TestRequesterKilled: the customer's daemon, a real process, is killed with
// SIGKILL while its jobs run on two providers (other processes), then
// started again on its data dir. Every job resumes or is placed again and
// succeeds; afterwards the providers' stores show no lease epoch run on two
// providers, and every run that succeeded there countersigned: no receipt
// lost.
func TestRequesterKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	p1 := startDaemon(t, initDir(t), "")
	p2 := startDaemon(t, initDir(t), p1.id.Addrs[0])
	// The customer's node sells too, but its jobs want fr, and it is de.
	rDir := initDir(t)
	r := startDaemon(t, rDir, p1.id.Addrs[0], "labels.jurisdiction=de")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sieve.wasm"), exectest.Module(t, "sieve"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "sieve.yaml")
	// A few seconds each: the kill comes while they run.
	writeFile(t, spec, "version: 1\nname: sieve\ntask:\n  module: sieve.wasm\n  args: [--n, \"2000000\", --rounds, \"4\"]\n"+
		"  resources: {cpu: 500m, memory: 64Mi, timeout: 5m}\nconstraints:\n  - jurisdiction = fr\n")
	var jobs []string
	submit := func(n int) {
		for range n {
			jobs = append(jobs, detach(t, rDir, spec))
		}
	}
	view := func(cid string) requester.JobView { return viewOf(t, rDir, cid) }
	running := func() (n int) {
		for _, cid := range jobs {
			for _, s := range view(cid).Slots {
				if s.State == "running" {
					n++
				}
			}
		}
		return n
	}
	told := func() string {
		var out string
		for _, cid := range jobs {
			v := view(cid)
			out += fmt.Sprintf("job %s: %s %s\n  %q\n", cid, v.State, v.Reason, v.History)
		}
		b, _ := os.ReadFile(filepath.Join(rDir, "daemon.log"))
		return out + string(b)
	}
	kill := func() {
		r.cmd.Process.Signal(syscall.SIGKILL)
		r.cmd.Wait()
		r = startDaemon(t, rDir, p1.id.Addrs[0], "labels.jurisdiction=de")
	}
	// Killed while its jobs run, then while it places new ones.
	submit(6)
	until(t, "jobs to run", 3*time.Minute, func() bool { return running() >= 3 }, told)
	kill()
	submit(4)
	kill()

	final := map[string]requester.JobView{}
	until(t, "every job to end", 5*time.Minute, func() bool {
		for _, cid := range jobs {
			if v := view(cid); v.State == "succeeded" || v.State == "failed" || v.State == "cancelled" {
				final[cid] = v
			}
		}
		return len(final) == len(jobs)
	}, told)
	for cid, v := range final {
		if v.State != "succeeded" {
			t.Errorf("job %s %s after the requester's restarts: %s (history %q)", cid, v.State, v.Reason, v.History)
		}
	}
	// SIGTERM lets it settle the last receipts before it exits.
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.cmd.Wait()
	for _, p := range []*daemon{p1, p2} {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}

	ran := map[string]string{} // lease ID and epoch -> the provider that ran it
	succeeded, countersigned := 0, 0
	for _, p := range []*daemon{p1, p2} {
		st, err := store.Open(filepath.Join(p.dir, node.StateFile), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		leases, err := st.Leases(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leases {
			k := fmt.Sprintf("%x/%d", l.ID, l.Epoch)
			if other, ok := ran[k]; ok {
				t.Errorf("lease %s ran on %s and on %s", k, other, p.id.ID)
			}
			ran[k] = p.id.ID
			if l.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
				continue
			}
			succeeded++
			if r, err := st.Receipt(l.ID, l.Epoch); err == nil && len(r.Countersignature) > 0 {
				countersigned++
			} else {
				t.Errorf("lease %s succeeded on %s: its receipt is not countersigned (%v)", k, peer.ID(p.id.ID), err)
			}
		}
		st.Close()
	}
	t.Logf("%d jobs, %d lease epochs, %d runs succeeded, %d countersigned", len(jobs), len(ran), succeeded, countersigned)
	if succeeded < len(jobs) {
		t.Errorf("%d runs succeeded for %d jobs", succeeded, len(jobs))
	}
}

// detach submits the job of spec through `cuivre job run --detach` on the
// daemon of dir and returns its CID.
func detach(t *testing.T, dir, spec string) string {
	t.Helper()
	out, err := cuivre(t, "job", "run", "--detach", "--data-dir", dir, spec).Output()
	if err != nil {
		t.Fatalf("job run --detach: %v\n%s", err, stderrOf(err))
	}
	return string(trimNL(out))
}

// viewOf reads a job's view from the daemon of dir.
func viewOf(t *testing.T, dir, cid string) (v requester.JobView) {
	t.Helper()
	c, err := api.Dial(dir)
	if err == nil {
		err = c.Get("/v1/jobs/"+cid, &v)
	}
	if err != nil {
		t.Fatalf("job %s: %v", cid, err)
	}
	return v
}

// until polls cond, a check of other processes, until it holds; if it
// does not within limit, the test fails with what says.
func until(t *testing.T, what string, limit time.Duration, cond func() bool, says ...func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var more string
			for _, f := range says {
				more += "\n" + f()
			}
			t.Fatalf("waited %v for %s%s", limit, what, more)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stderrOf(err error) []byte {
	if e, ok := err.(*exec.ExitError); ok {
		return e.Stderr
	}
	return nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
