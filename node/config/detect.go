package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/cuivre/cuivre/scheduler"
)

// Detect returns the machine the node runs on, for Market: its CPUs in
// millicores, its memory, and the free disk of the filesystem that holds
// dataDir (or, before `cuivre init` created it, its nearest existing parent)
// as scratch.
//
// CPUs are those the process may run on (runtime.NumCPU, which follows the
// CPU affinity mask), not every CPU of the host; memory is the host's total
// (gopsutil). Both are then lowered to the limits of the process's cgroups
// (v2 cpu.max and memory.max, or v1 CFS quota and memory.limit_in_bytes, up
// the hierarchy), so a daemon in a container sells the container, not the
// host, and is not OOM-killed for believing otherwise. The free disk is a
// snapshot: what other programs write later is not seen.
func Detect(dataDir string) (scheduler.Resources, error) {
	vm, err := mem.VirtualMemory()
	if err != nil {
		return scheduler.Resources{}, fmt.Errorf("detect memory: %w (set capacity.auto to false and give capacity.cpu and capacity.memory)", err)
	}
	free, err := FreeDisk(dataDir)
	if err != nil {
		return scheduler.Resources{}, fmt.Errorf("%w (set capacity.scratch)", err)
	}
	r := scheduler.Resources{
		CPUMillis:    uint64(runtime.NumCPU()) * 1000,
		MemoryBytes:  vm.Total,
		ScratchBytes: free,
	}
	if runtime.GOOS == "linux" {
		cpu, memory := cgroupLimits(os.DirFS("/"))
		r.CPUMillis = tighter(r.CPUMillis, cpu)
		r.MemoryBytes = tighter(r.MemoryBytes, memory)
	}
	return r, nil
}

// FreeDisk returns the free disk of the filesystem that holds dataDir (or,
// before it exists, its nearest existing parent): what Detect counts as
// scratch, and what a requester's data store may take when data.max_size is
// 0. It is a snapshot.
func FreeDisk(dataDir string) (uint64, error) {
	dir, err := existingAncestor(dataDir)
	if err != nil {
		return 0, fmt.Errorf("detect free disk: %w", err)
	}
	du, err := disk.Usage(dir)
	if err != nil {
		return 0, fmt.Errorf("detect free disk of %s: %w", dir, err)
	}
	return du.Free, nil
}

// existingAncestor returns dir, or its nearest parent that exists.
func existingAncestor(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(d); err == nil {
			return d, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no part of %s exists", dir)
		}
		d = parent
	}
}

// cgroupLimits returns the CPU (millicores) and memory (bytes) limits the
// process's cgroups put on it, read under root (the file system root, "/"),
// the tightest along each hierarchy; 0 where there is none or nothing could
// be read. It assumes cgroupfs is mounted at /sys/fs/cgroup, as systemd and
// every container runtime do.
func cgroupLimits(root fs.FS) (cpuMillis, memBytes uint64) {
	data, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0, 0
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		// id:controllers:path, with id 0 and no controllers for cgroup v2.
		f := strings.SplitN(s.Text(), ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		controllers, cgPath := strings.Split(f[1], ","), f[2]
		for dir := range ancestors(cgPath) {
			switch {
			case f[0] == "0" && f[1] == "":
				base := path.Join("sys/fs/cgroup", dir)
				cpuMillis = tighter(cpuMillis, cpuMax(root, base))
				memBytes = tighter(memBytes, readLimit(root, path.Join(base, "memory.max")))
			case slices.Contains(controllers, "memory"):
				memBytes = tighter(memBytes, readLimit(root, path.Join("sys/fs/cgroup/memory", dir, "memory.limit_in_bytes")))
			}
			if slices.Contains(controllers, "cpu") {
				for _, mount := range []string{f[1], "cpu"} {
					base := path.Join("sys/fs/cgroup", mount, dir)
					if m := cfsQuota(root, base); m != 0 {
						cpuMillis = tighter(cpuMillis, m)
						break
					}
				}
			}
		}
	}
	return cpuMillis, memBytes
}

// tighter returns the smaller of two limits, 0 being none.
func tighter(a, b uint64) uint64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// ancestors yields p ("/a/b") and each of its parents up to "/".
func ancestors(p string) iter.Seq[string] {
	return func(yield func(string) bool) {
		p = path.Clean(p)
		for {
			if !yield(p) || p == "/" {
				return
			}
			p = path.Dir(p)
		}
	}
}

// readLimit reads a byte limit: a number, 0 for "max", a missing file, or a
// v1 "unlimited" (a number near the top of int64).
func readLimit(root fs.FS, name string) uint64 {
	b, err := fs.ReadFile(root, name)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n >= 1<<62 {
		return 0
	}
	return n
}

// cpuMax reads a cgroup v2 cpu.max, "quota period" or "max period", as
// millicores.
func cpuMax(root fs.FS, dir string) uint64 {
	b, err := fs.ReadFile(root, path.Join(dir, "cpu.max"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	return quotaMillis(f[0], f[1])
}

// cfsQuota reads the cgroup v1 CFS quota and period as millicores.
func cfsQuota(root fs.FS, dir string) uint64 {
	q, err1 := fs.ReadFile(root, path.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := fs.ReadFile(root, path.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0
	}
	return quotaMillis(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

// quotaMillis returns quota/period in millicores, rounded down but at least
// 1; 0 for no quota ("max", -1) or nonsense.
func quotaMillis(quota, period string) uint64 {
	q, err1 := strconv.ParseUint(quota, 10, 64)
	p, err2 := strconv.ParseUint(period, 10, 64)
	if err1 != nil || err2 != nil || q == 0 || p == 0 {
		return 0
	}
	hi, lo := bits.Mul64(q, 1000)
	if hi >= p {
		return 0
	}
	m, _ := bits.Div64(hi, lo, p)
	return max(m, 1)
}
