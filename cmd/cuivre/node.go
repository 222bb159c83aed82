package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/scheduler"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/config"
)

// dataDir is the --data-dir flag shared by the node commands.
var dataDir string

func addDataDir(cmd *cobra.Command) {
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the node's data dir (default $CUIVRE_DIR, else ~/.cuivre)")
}

func resolveDir() (string, error) {
	if dataDir != "" {
		return dataDir, nil
	}
	return config.DefaultDir()
}

func newInitCmd() *cobra.Command {
	var force bool
	var role string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node's data dir: a commented config.yaml and an identity key",
		Long: `init writes config.yaml (every setting, commented, at its default) and an
Ed25519 identity.key (mode 0600) into the data dir. It never overwrites an
identity without --force, and keeps a backup of what --force replaces.

--role requester writes the config of a node that only buys (role: requester):
it places jobs and announces nothing, answers no offer and runs no job, so it
needs no capacity, prices or labels. The default, provider, sells capacity and
buys it too.`,
		Example: "  cuivre init\n  cuivre init --role requester --data-dir ~/.cuivre-buyer",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(config.Roles(), role) {
				return fmt.Errorf("--role %q: use %s", role, strings.Join(config.Roles(), " or "))
			}
			dir, err := resolveDir()
			if err != nil {
				return err
			}
			res, err := config.InitRole(dir, force, role)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "peer ID   %s\nidentity  %s\n", res.PeerID, res.IdentityPath)
			switch {
			case !res.ConfigWritten && cmd.Flags().Changed("role"):
				fmt.Fprintf(out, "config    %s (kept: --role was not applied; set role: %s in it)\n", res.ConfigPath, role)
			case !res.ConfigWritten:
				fmt.Fprintf(out, "config    %s (kept)\n", res.ConfigPath)
			case role == config.RoleRequester:
				fmt.Fprintf(out, "config    %s (add bootstrap peers, then run `cuivre daemon --data-dir %s`)\n", res.ConfigPath, dir)
			default:
				fmt.Fprintf(out, "config    %s (edit labels and prices, then run `cuivre daemon --data-dir %s`)\n", res.ConfigPath, dir)
			}
			return nil
		},
	}
	addDataDir(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing identity (the old one is kept as a .bak)")
	cmd.Flags().StringVar(&role, "role", config.RoleProvider, "provider (sells capacity and buys it), requester (only buys) or retailer (sells on slices rented from a site)")
	cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions(config.Roles(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func newDaemonCmd() *cobra.Command {
	var cfgPath string
	var set []string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a cuivre node: join the federation, sell capacity and buy it",
		Long: `daemon runs the node of a data dir made by ` + "`cuivre init`" + `. Settings resolve
flag (--set path=value) > CUIVRE_* environment > config.yaml > default; an
invalid setting is refused at start with its source, field and reason.
SIGINT or SIGTERM drains: no new offers, running leases get a grace period.
SIGHUP reads the config again: it applies changed prices and labels at
once, and logs every other change as one that needs a restart.

A node of role requester (role: requester, CUIVRE_ROLE=requester or --set
role=requester) only buys: it detects no capacity, runs no executor, announces
nothing in the DHT (whose client it is) and answers only the module and block
requests of the providers that run its jobs.

Under systemd (Type=notify) it says when it is ready, reloading and
stopping, and with WatchdogSec= it pets the watchdog while its node answers;
examples/systemd/cuivre.service is a unit to start from. Outside systemd
(no NOTIFY_SOCKET) none of that happens.`,
		Example: "  cuivre daemon --data-dir /var/lib/cuivre\n  cuivre daemon --set api.listen=127.0.0.1:5001 --set labels.region=fr-par\n  cuivre daemon --set role=requester",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := resolveDir()
			if err != nil {
				return err
			}
			if cfgPath == "" {
				cfgPath = dir + "/" + config.ConfigFile
			}
			overrides := map[string]string{}
			for _, kv := range set {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--set %q: write path=value, e.g. api.listen=127.0.0.1:4243", kv)
				}
				overrides[k] = v
			}
			c, err := config.Load(cfgPath, os.Environ(), overrides)
			if err != nil {
				return err
			}
			pet, err := sdWatchdog()
			if err != nil {
				return err
			}
			log := newLogger(c.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Caught from the start: a SIGHUP that comes while the node
			// starts, or just after READY=1, is a reload, never the end.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			d, err := node.StartDaemon(ctx, dir, c, log, node.WithBuild(node.Build{Version: version, Commit: buildCommit()}))
			if err != nil {
				return err
			}
			sdNotify(log, sd.SdNotifyReady+"\n"+sdStatus(d))
			if pet > 0 {
				wctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go petWatchdog(wctx, log, pet, d.Node.Alive)
			}
			for {
				select {
				case <-hup:
					sdNotify(log, sdReloading())
					reload(log, d, cfgPath, overrides)
					sdNotify(log, sd.SdNotifyReady+"\n"+sdStatus(d))
				case <-ctx.Done():
					stop() // a second signal ends the process at once
					log.Info("draining", "grace", node.DrainGrace)
					sdNotify(log, sd.SdNotifyStopping+"\nSTATUS=draining: no new offers, running leases get "+node.DrainGrace.String())
					return d.Stop(node.DrainGrace)
				}
			}
		},
	}
	addDataDir(cmd)
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (default DATA_DIR/config.yaml)")
	cmd.Flags().StringArrayVar(&set, "set", nil, "override a setting: path=value (repeatable; see config.yaml for paths)")
	return cmd
}

// reload reads the config again on SIGHUP and says what changed: the
// prices and labels it applied, the settings that wait for a restart.
func reload(log *slog.Logger, d *node.Daemon, cfgPath string, overrides map[string]string) {
	nc, err := config.Load(cfgPath, os.Environ(), overrides)
	var r node.Reloaded
	if err == nil {
		r, err = d.Reload(nc)
	}
	switch {
	case err != nil:
		log.Error("reload refused; the running settings stay", "err", err)
	case len(r.Applied)+len(r.Restart) == 0:
		log.Info("reloaded: nothing changed")
	default:
		if len(r.Applied) > 0 {
			log.Info("reloaded", "applied", changeList(r.Applied))
		}
		if len(r.Restart) > 0 {
			log.Warn("changes that need a restart; the running values stay", "changes", changeList(r.Restart))
		}
	}
}

func changeList(cs []config.Change) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, "; ")
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// apiGetCmd is a command that prints one API document of type T, rendered
// for people by table.
func apiGetCmd[T any](use, short, path string, table func(tw *tabwriter.Writer, v T, wide bool)) *cobra.Command {
	var output format
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var v T
			if err := c.Get(path, &v); err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), output, v, func(tw *tabwriter.Writer, wide bool) { table(tw, v, wide) })
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

func newIDCmd() *cobra.Command {
	return apiGetCmd("id", "The local node's peer ID, addresses and reachability", "/v1/id", func(tw *tabwriter.Writer, v api.Identity, wide bool) {
		// The ID is whole even in the table: it is what this command is for.
		keyValues(tw, "peer ID", v.ID, "reachability", v.Reach.Reachability)
		addrs(tw, "address", v.Addrs)
		reach(tw, v.Reach, wide)
	})
}

func newPeersCmd() *cobra.Command {
	return apiGetCmd("peers", "The peers the local node is connected to", "/v1/peers", func(tw *tabwriter.Writer, ps []api.Peer, wide bool) {
		fmt.Fprintln(tw, "PEER\tADDRESSES")
		for _, p := range ps {
			a := strings.Join(p.Addrs, ",")
			if !wide && len(p.Addrs) > 1 {
				a = fmt.Sprintf("%s (and %d more)", p.Addrs[0], len(p.Addrs)-1)
			}
			fmt.Fprintf(tw, "%s\t%s\n", peerID(p.ID, wide), orNone(a))
		}
	})
}

func newNodeStatusCmd() *cobra.Command {
	return apiGetCmd("status", "Role, capacity, use, leases, earnings and peers of the local node", "/v1/status", func(tw *tabwriter.Writer, st api.NodeStatus, wide bool) {
		keyValues(tw, "peer ID", st.ID, "role", st.Role)
		if st.Role != config.RoleRequester {
			keyValues(tw,
				"capacity", resources(st.Capacity),
				"committed", resources(st.Committed)+fmt.Sprintf(" (%d leases)", st.Leases),
				"reserved", resources(st.Reserved)+fmt.Sprintf(" (%d live offers)", st.Reservations),
				"free", resources(st.Free),
				"load", fmt.Sprintf("%.1f%%", float64(st.LoadPermille)/10),
				"draining", strconv.FormatBool(st.Draining))
			for _, cur := range slices.Sorted(maps.Keys(st.Earnings)) {
				keyValues(tw, "earned", fmt.Sprintf("%s (%s countersigned)", money(st.Earnings[cur], cur), money(st.Countersigned[cur], cur)))
			}
		}
		if w := st.Wholesale; w != nil {
			if w.Site {
				keyValues(tw, "slices granted", resources(w.Granted)+fmt.Sprintf(" (%d grants)", w.Grants))
			}
			if w.Holds > 0 {
				keyValues(tw, "slices held", resources(w.Held)+fmt.Sprintf(" (%d grants)", w.Holds))
			}
		}
		keyValues(tw, "peers", fmt.Sprintf("%d (%d in the DHT's table)", st.Peers, st.DHTPeers), "reachability", st.Reach.Reachability)
		reach(tw, st.Reach, wide)
	})
}

// resources writes what a node has or holds for people: "1.5 vCPU, 2.0 GiB
// memory, 1.0 GiB scratch".
func resources(r scheduler.Resources) string {
	return fmt.Sprintf("%s, %s memory, %s scratch", vcpu(r.CPUMillis), humanBytes(r.MemoryBytes), humanBytes(r.ScratchBytes))
}

// reach writes the addresses a node gives and is seen at; wide adds those it
// listens on and what AutoNAT found of each.
func reach(tw *tabwriter.Writer, r api.Reach, wide bool) {
	addrs(tw, "announced", r.Announced)
	addrs(tw, "observed", r.Observed)
	addrs(tw, "relayed", r.Relayed)
	if wide {
		addrs(tw, "listen", r.Listen)
		addrs(tw, "reachable", r.Reachable)
		addrs(tw, "unreachable", r.Unreachable)
		keyValues(tw, "relay service", strconv.FormatBool(r.RelayService))
	}
}

// addrs writes one row for each address, the key on the first.
func addrs(tw *tabwriter.Writer, key string, as []string) {
	for _, a := range as {
		keyValues(tw, key, a)
		key = ""
	}
}

func newNodeCmd() *cobra.Command {
	n := &cobra.Command{Use: "node", Short: "Inspect the local node"}
	n.AddCommand(newNodeStatusCmd(), newNodeListCmd())
	return n
}
