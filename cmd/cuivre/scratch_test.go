package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/protocol/pb"
)

// procKiB reads a field in kB ("VmRSS", "VmHWM") of /proc/PID/status.
func procKiB(t *testing.T, pid int, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// TestScratchOnDisk: a lease that fills 1 GiB of scratch on a daemon (a
// process of its own) leaves the daemon's peak RSS within the lease's memory
// plus a fixed overhead, 128 MiB: scratch is disk, not memory. Another lease
// on the same daemon keeps its heartbeats the while and is never lost; the
// longest gap between its statuses is logged beside its interval.
func TestScratchOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and writes 2 GiB")
	}
	d := startDaemon(t, initDir(t), "", "capacity.scratch=4Gi", "executor.max_scratch=2Gi")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := peer.AddrInfoFromString(d.id.Addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	req, key := requesterNode(t, *info)
	if err := req.Host().Connect(ctx, *info); err != nil {
		t.Fatal(err)
	}
	pid := d.cmd.Process.Pid
	idle := procKiB(t, pid, "VmRSS")

	// The other lease: a guest that loops until it is cancelled.
	running := make(chan string, 1)
	var beats []time.Time
	other := make(chan *pb.Result, 1)
	go func() {
		res, _ := leaseOf(t, ctx, req, key, info.ID, exectest.Loop(), nil, &pb.Resources{CpuMillis: 100, MemoryBytes: 16 << 20}, time.Hour, running,
			func(s *pb.Status) { beats = append(beats, time.Now()) }, nil)
		other <- res
	}()
	otherID := <-running

	const memory, overhead = 64 << 20, 128 << 20
	res, stdout := leaseOf(t, ctx, req, key, info.ID, exectest.Module(t, "fsprobe"), []string{"fill", "big", strconv.Itoa(1 << 30)},
		&pb.Resources{CpuMillis: 500, MemoryBytes: memory, ScratchBytes: 1<<30 + 1<<20}, 10*time.Minute, nil, nil, nil)
	if res == nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || res.OutputSize != 1<<30 {
		t.Fatalf("the 1 GiB lease: %v %v, output %d bytes:\n%s", res.GetState(), res.GetError(), res.GetOutputSize(), stdout)
	}
	peak := procKiB(t, pid, "VmHWM")
	t.Logf("daemon RSS: %d MiB idle, %d MiB at its peak with 1 GiB of scratch filled and kept as output (limit %d + %d MiB)",
		idle>>10, peak>>10, memory>>20, overhead>>20)
	if grown := (peak - idle) << 10; grown > memory+overhead {
		t.Errorf("the daemon grew by %d MiB, more than the lease's %d MiB of memory plus %d MiB", grown>>20, memory>>20, overhead>>20)
	}

	if err := requester.CancelLease(ctx, req.Transport(), string(info.ID), otherID, 1); err != nil {
		t.Fatal(err)
	}
	r := <-other
	if r == nil || r.State != pb.LeaseState_LEASE_STATE_CANCELLED {
		t.Fatalf("the other lease ended %v, want cancelled by us (not lost)", r.GetState())
	}
	var gap time.Duration
	for i := 1; i < len(beats); i++ {
		gap = max(gap, beats[i].Sub(beats[i-1]))
	}
	t.Logf("the other lease: %d statuses, the longest gap %s, at a 200ms interval", len(beats), gap)
}
