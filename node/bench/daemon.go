package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/clock"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/node/devnet"
)

// settle is how long the daemon runs, once in the DHT, before the idle
// windows: its first announcements are start-up, not idling.
const settle = 2 * time.Second

// daemon runs `cuivre daemon` from o.Executable in its own process, on a
// data dir made by config.Init, bootstrapped to three providers of the
// devnet. Once it has DHT peers and has settled, it measures its resident
// memory and CPU over o.Repeat windows splitting o.Idle, then stops it with
// SIGTERM.
func (b *bench) daemon(ctx context.Context, d *devnet.Devnet, dir string) (err error) {
	if _, err := config.Init(dir, false); err != nil {
		return err
	}
	var boot []string
	for _, p := range d.Providers[:min(3, len(d.Providers))] {
		addrs := p.Identify().Addrs
		boot = append(boot, addrs[0])
		for _, a := range addrs {
			if strings.Contains(a, "/quic-v1/") {
				boot[len(boot)-1] = a
				break
			}
		}
	}
	args := []string{"daemon", "--data-dir", dir}
	for _, kv := range []string{
		"listen=/ip4/127.0.0.1/udp/0/quic-v1", "api.listen=127.0.0.1:0", "bootstrap=" + strings.Join(boot, ","),
		"capacity.auto=false", "capacity.cpu=2", "capacity.memory=2Gi", "capacity.scratch=1Gi",
		"labels.jurisdiction=fr", "labels.region=fr-par", "log.level=warn",
	} {
		args = append(args, "--set", kv)
	}
	logPath := filepath.Join(dir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(b.o.Executable, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", b.o.Executable, err)
	}
	exited := make(chan struct{}) // closed when the process has exited
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	defer func() {
		if e := stop(cmd, exited); err == nil {
			err = e
		}
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, tail(logPath))
		}
	}()

	t0 := time.Now()
	if err := ready(ctx, dir, exited); err != nil {
		if errors.Is(err, errExited) {
			err = fmt.Errorf("%w: %v", err, exitErr)
		}
		return err
	}
	b.logf("idle daemon (pid %d) in the DHT after %s", cmd.Process.Pid, time.Since(t0).Round(time.Millisecond))
	if err := clock.Sleep(ctx, settle); err != nil {
		return err
	}
	proc, err := process.NewProcessWithContext(ctx, int32(cmd.Process.Pid))
	if err != nil {
		return err
	}
	window := b.o.Idle / time.Duration(b.o.Repeat)
	for range b.o.Repeat {
		c0, err := proc.TimesWithContext(ctx)
		if err != nil {
			return err
		}
		w0 := time.Now()
		if err := clock.Sleep(ctx, window); err != nil {
			return err
		}
		c1, err := proc.TimesWithContext(ctx)
		if err != nil {
			return err
		}
		wall := time.Since(w0).Seconds()
		mem, err := proc.MemoryInfoWithContext(ctx)
		if err != nil {
			return err
		}
		cpu := max(0, (c1.User-c0.User)+(c1.System-c0.System)) / wall * 100 // no -0.000 from rounding
		anon, err := anonymous(proc.Pid)
		if err != nil {
			return err
		}
		b.add("daemon_rss_mib", float64(mem.RSS)/(1<<20))
		b.add("daemon_anon_mib", float64(anon)/(1<<20))
		b.add("daemon_cpu_percent", cpu)
		b.logf("idle daemon: %.1f MiB resident, of which %.1f MiB its own (anonymous), %.2f%% of a core over %s",
			float64(mem.RSS)/(1<<20), float64(anon)/(1<<20), cpu, window)
	}
	return nil
}

var errExited = errors.New("the daemon exited")

// anonymous returns the bytes of a process's anonymous memory (heap, stacks,
// runtime), from /proc/PID/smaps_rollup: what RSS holds besides the pages of
// the binary and libraries it maps, which grow with the binary's size, are
// shared and can be reclaimed.
func anonymous(pid int32) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, fmt.Errorf("anonymous memory: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Anonymous:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("anonymous memory: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("anonymous memory: no Anonymous line in smaps_rollup")
}

// ready waits until the daemon in dir answers on its API with a DHT peer.
func ready(ctx context.Context, dir string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := api.Dial(dir); err == nil {
			var st api.NodeStatus
			if c.Get("/v1/status", &st) == nil && st.DHTPeers > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the daemon had no DHT peer after 30 s")
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, unless the process has exited already, and waits for
// the exit, killing the process after 10 s.
func stop(cmd *exec.Cmd, exited <-chan struct{}) error {
	select {
	case <-exited:
		return nil
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if !cmd.ProcessState.Success() {
			return fmt.Errorf("the daemon stopped badly: %s", cmd.ProcessState)
		}
		return nil
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		return errors.New("the daemon did not stop within 10 s of SIGTERM: killed")
	}
}

// tail returns the end of a log file, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "daemon log " + path + ":\n" + string(bytes.TrimSpace(b))
}
