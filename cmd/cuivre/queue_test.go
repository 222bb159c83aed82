package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// queueJobs is the environment variable that sets TestQueueCLI's size as
// providers,jobs,at-once; `make queue` asks 5,300,100.
const queueJobs = "CUIVRE_QUEUE"

// TestQueueCLI: customers submit far more jobs than a small federation can
// run at once, each through `cuivre job run` (a process of its own, as a
// customer runs it), a batch at a time; every job waits for capacity and
// succeeds. Providers are daemons of 1.6 vCPUs each, jobs the hello example
// at half a vCPU: three fit on a provider at a time.
func TestQueueCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	providers, jobs, batch := 2, 24, 12
	if s := os.Getenv(queueJobs); s != "" {
		var err error
		if providers, jobs, batch, err = parseQueue(s); err != nil {
			t.Fatalf("%s=%q: %v", queueJobs, s, err)
		}
	}
	var boot string
	for i := range providers {
		d := startDaemon(t, initDir(t), boot, "capacity.cpu=1600m")
		if i == 0 {
			boot = d.id.Addrs[0]
		}
	}
	// The customer's node, which sells nothing its jobs may use (de).
	rDir := initDir(t)
	startDaemon(t, rDir, boot, "labels.jurisdiction=de")

	dir := t.TempDir()
	hello, err := filepath.Abs("../../examples/wasm/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "hello.yaml")
	writeFile(t, spec, "version: 1\nname: hello\ntask:\n  module: "+hello+"\n  args: [--name, queue]\n"+
		"  resources: {cpu: 500m, memory: 128Mi, timeout: 30s}\nconstraints:\n  - jurisdiction = fr\n")

	start := time.Now()
	var (
		mu     sync.Mutex
		failed []string
	)
	for done := 0; done < jobs; done += batch {
		var wg sync.WaitGroup
		for range min(batch, jobs-done) {
			wg.Go(func() {
				out, err := cuivre(t, "job", "run", "--data-dir", rDir, spec).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "hello, queue!") {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%v: %s", err, out))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	t.Logf("%d jobs through the CLI, %d at a time, on %d providers of 1.6 vCPU: %d failed, in %v",
		jobs, batch, providers, len(failed), time.Since(start).Round(time.Millisecond))
	for i, f := range failed {
		if i == 5 {
			t.Errorf("... and %d more", len(failed)-5)
			break
		}
		t.Errorf("job failed: %s", f)
	}
}

func parseQueue(s string) (providers, jobs, batch int, err error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return 0, 0, 0, fmt.Errorf("want providers,jobs,at-once")
	}
	var n [3]int
	for i, p := range parts {
		if n[i], err = strconv.Atoi(strings.TrimSpace(p)); err != nil || n[i] < 1 {
			return 0, 0, 0, fmt.Errorf("want positive counts")
		}
	}
	return n[0], n[1], n[2], nil
}
