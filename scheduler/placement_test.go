package scheduler

import (
	"strings"
	"testing"
	"time"
)

// fourFrench is a world of four providers in France, each of its own operator.
func fourFrench(t *testing.T) *world {
	t.Helper()
	w := newWorld()
	for _, name := range []string{"p1", "p2", "p3", "p4"} {
		cfg, err := providerConfig(func(k, def string) string {
			if k == "name" {
				return name
			}
			return def
		}, func(k string) []string {
			if k == "labels" {
				return []string{"jurisdiction=fr"}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.addProvider(cfg); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

const frenchJob = "version: 1\nname: j\ntask:\n  module: m.wasm\n  resources: {cpu: 500m, memory: 128Mi, timeout: 30s}\nconstraints:\n  - jurisdiction = fr\n"

// settle delivers what is in flight and lets round deadlines pass until the
// job's first slot runs or the job ends.
func settle(t *testing.T, w *world, j *simJob) {
	t.Helper()
	for range 50 {
		w.deliverAll()
		if j.p.State().Final() || j.p.Status().Slots[0].State == SlotRunning {
			return
		}
		w.advance(200 * time.Millisecond)
	}
	t.Fatalf("the job neither runs nor ends: %s", describeStatus(j.p.Status()))
}

// TestLastLostLeaseFails: when a slot loses the last lease it may lose, the
// job fails, and its last report says so; it does not announce a reschedule
// that will never come.
func TestLastLostLeaseFails(t *testing.T) {
	w := fourFrench(t)
	job, err := testJob("j", frenchJob, "requester")
	if err != nil {
		t.Fatal(err)
	}
	j := w.submit("j", Config{MaxReschedules: 1}, job, 1)
	for lost := 0; !j.p.State().Final(); lost++ {
		if lost > 2 {
			t.Fatalf("still %s after %d lost leases", j.p.State(), lost)
		}
		settle(t, w, j)
		if j.p.State().Final() {
			break
		}
		// The provider running the slot is cut off: its heartbeats stop.
		w.provider(j.p.Status().Slots[0].Provider).cut = true
		w.advance(4 * time.Second)
	}
	if j.p.State() != JobFailed {
		t.Fatalf("state %s, want failed", j.p.State())
	}
	if last := j.last; last.State != JobFailed || strings.Contains(last.Message, "rescheduling") {
		t.Fatalf("the last report is %q with message %q, want failed without a reschedule", last.State, last.Message)
	}
	if !strings.Contains(j.last.Reason, "lost 2 leases") {
		t.Fatalf("reason %q, want the leases lost", j.last.Reason)
	}
}
