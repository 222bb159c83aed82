package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/cuivre/cuivre/node"
)

// The daemon speaks systemd's notify protocol (sd_notify) through go-systemd:
// READY=1 once the node runs, RELOADING=1 then READY=1 around a SIGHUP,
// STOPPING=1 when the drain begins, and WATCHDOG=1 while the node answers.
// Each message is sent only when systemd set NOTIFY_SOCKET; elsewhere they
// cost nothing. examples/systemd/cuivre.service is a unit that uses them.

// sdNotify sends state to the service manager, if there is one listening.
func sdNotify(log *slog.Logger, state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		log.Warn("sd_notify", "err", err)
	}
}

// sdStatus is the STATUS= line of a running daemon: what `systemctl status`
// shows under the unit.
func sdStatus(d *node.Daemon) string {
	return fmt.Sprintf("STATUS=peer %s, addresses: %d", d.Node.ID(), len(d.Node.Host().Addrs()))
}

// sdReloading is the message that opens a reload: RELOADING=1 and the time
// of the monotonic clock, which Type=notify-reload requires and plain
// Type=notify ignores.
func sdReloading() string {
	return sd.SdNotifyReloading + "\n" + sd.SdNotifyMonotonicUsec()
}

// sdWatchdog returns how often the service manager wants WATCHDOG=1 (half
// of WATCHDOG_USEC), or 0 when it wants none, or the watchdog is another
// process's (WATCHDOG_PID).
func sdWatchdog() (time.Duration, error) {
	d, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("systemd watchdog (WATCHDOG_USEC, WATCHDOG_PID): %w", err)
	}
	return d / 2, nil
}

// petWatchdog sends WATCHDOG=1 every interval, each time after alive has
// returned nil, until ctx ends or alive fails (the node closed). alive is
// the node's own check (Node.Alive): it does not return while the node is
// stuck, so neither does the next pet, and the service manager, seeing none
// within WatchdogSec, kills the daemon (SIGABRT by default: Go prints every
// goroutine's stack to the journal) and, with Restart=, starts it again.
func petWatchdog(ctx context.Context, log *slog.Logger, interval time.Duration, alive func() error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := alive(); err != nil {
			log.Debug("watchdog: no more pets", "err", err)
			return
		}
		sdNotify(log, sd.SdNotifyWatchdog)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
