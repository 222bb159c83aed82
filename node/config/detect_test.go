package config

import (
	"path/filepath"
	"runtime"
	"testing"
	"testing/fstest"
)

func TestDetect(t *testing.T) {
	// A data dir that does not exist yet reads the disk of its parent.
	r, err := Detect(filepath.Join(t.TempDir(), "not", "yet"))
	if err != nil {
		t.Fatalf("Detect() = %v", err)
	}
	if r.CPUMillis == 0 || r.MemoryBytes == 0 || r.ScratchBytes == 0 {
		t.Errorf("Detect() = %+v, want some of everything", r)
	}
	if max := uint64(runtime.NumCPU()) * 1000; r.CPUMillis > max {
		t.Errorf("Detect() CPU %d above the %d this process may use", r.CPUMillis, max)
	}
	if _, err := Default().Market("p", r); err != nil {
		t.Logf("the defaults do not fit this machine (%+v): %v", r, err)
	}
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestCgroupLimits(t *testing.T) {
	tests := []struct {
		name     string
		fs       fstest.MapFS
		cpu, mem uint64
	}{
		{"no cgroups", fstest.MapFS{}, 0, 0},
		{"v2 unlimited", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/cpu.max":    file("max 100000\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0, 0},
		{"v2 container, limits on a parent", fstest.MapFS{
			"proc/self/cgroup":                           file("0::/kubepods/pod1/ctr\n"),
			"sys/fs/cgroup/kubepods/pod1/ctr/cpu.max":    file("max 100000\n"),
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": file("8589934592\n"),
			"sys/fs/cgroup/kubepods/pod1/cpu.max":        file("150000 100000\n"),
			"sys/fs/cgroup/kubepods/pod1/memory.max":     file("17179869184\n"),
			"sys/fs/cgroup/kubepods/cpu.max":             file("400000 100000\n"),
		}, 1500, 8 << 30},
		{"v1", fstest.MapFS{
			"proc/self/cgroup": file("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"),
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes":  file("2147483648\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":             file("9223372036854771712\n"), // unlimited
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us":  file("50000\n"),
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": file("100000\n"),
		}, 500, 2 << 30},
		{"v1 without quota", fstest.MapFS{
			"proc/self/cgroup":                    file("4:cpu:/\n"),
			"sys/fs/cgroup/cpu/cpu.cfs_quota_us":  file("-1\n"),
			"sys/fs/cgroup/cpu/cpu.cfs_period_us": file("100000\n"),
		}, 0, 0},
		{"a tiny quota is still a millicore", fstest.MapFS{
			"proc/self/cgroup":      file("0::/\n"),
			"sys/fs/cgroup/cpu.max": file("10 100000\n"),
		}, 1, 0},
		{"garbage", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\nnonsense\n3::\n"),
			"sys/fs/cgroup/cpu.max":    file("lots\n"),
			"sys/fs/cgroup/memory.max": file("-5\n"),
		}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := cgroupLimits(tt.fs)
			if cpu != tt.cpu || mem != tt.mem {
				t.Errorf("cgroupLimits() = %d millicores, %d bytes; want %d, %d", cpu, mem, tt.cpu, tt.mem)
			}
		})
	}
}
