// Package demo is the cuivre demonstration that `make run` shows: a small
// federation of real nodes in one process, on loopback, placing the example
// jobs, refusing one with its reasons, and rescheduling one whose provider
// dies.
package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/scheduler"
)

// provider is one member of the demo federation.
type provider struct {
	name, region, operator, cert string
	cpu                          uint64 // millicores
	cpuPrice                     uint64 // nano-EUR per vCPU-second
}

// federation is eight providers of five operators in four jurisdictions, two
// of them certified.
var federation = []provider{
	{"sme-paris", "fr-par", "atelier", "", 4000, 11_000},
	{"sme-lyon", "fr-lyo", "rhone-it", "", 2000, 9_000},
	{"sovereign", "fr-par", "etat", "secnumcloud", 16000, 4_000},
	{"health", "fr-mrs", "sante-plus", "hds", 8000, 15_000},
	{"berlin", "de-fra", "kiez", "", 4000, 10_000},
	{"brussels", "be-bru", "atomium", "", 4000, 12_000},
	{"amsterdam", "nl-ams", "polder", "", 4000, 10_500},
	{"lyon-2", "fr-lyo", "rhone-it", "", 4000, 9_500},
}

// Options of a demo run.
type Options struct {
	Examples string    // the examples directory (jobs/ and wasm/)
	Out      io.Writer // where the demo tells what it does
	Log      *slog.Logger
}

// Run starts the federation, runs the demonstration and stops everything.
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	w := o.Out
	dir, err := os.MkdirTemp("", "cuivre-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Scratch areas live in memory: allow what the providers sell (1 GiB).
	ex, err := exec.New(ctx, exec.Config{CacheDir: filepath.Join(dir, "cache"), MaxOutputBytes: 1 << 30})
	if err != nil {
		return err
	}
	defer ex.Close(context.Background())

	fmt.Fprintf(w, "Starting a federation of %d providers and one requester on loopback (QUIC, private DHT, wazero, bbolt)...\n", len(federation))
	var boot []peer.AddrInfo
	var provs []*node.Node
	names := map[string]string{}
	regions := map[string]string{}
	for i, p := range federation {
		labels := []scheduler.Label{{Key: "region", Value: p.region}, {Key: "jurisdiction", Value: p.region[:2]}, {Key: "operator", Value: p.operator}}
		if p.cert != "" {
			labels = append(labels, scheduler.Label{Key: "certification", Value: p.cert})
		}
		n, err := newNode(ctx, dir, fmt.Sprintf("p%d", i), ex, boot, log, scheduler.MarketConfig{
			Capacity:  scheduler.Resources{CPUMillis: p.cpu, MemoryBytes: 8 << 30, ScratchBytes: 1 << 30},
			Labels:    scheduler.NewLabels(labels...),
			Executors: []string{"wasm"},
			Pricing:   scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: p.cpuPrice, MemoryNanosPerGiBSecond: 1_400}},
		})
		if err != nil {
			return err
		}
		defer n.Close()
		if boot == nil {
			boot = []peer.AddrInfo{n.AddrInfo()}
		}
		provs = append(provs, n)
		names[n.ID().String()], regions[n.ID().String()] = p.name, p.region
	}
	req, err := newNode(ctx, dir, "requester", ex, boot, log, scheduler.MarketConfig{
		Capacity: scheduler.Resources{CPUMillis: 1, MemoryBytes: 1 << 20}, Executors: []string{"wasm"},
		Pricing: scheduler.PricePolicy{Base: scheduler.Price{Currency: "EUR"}},
	})
	if err != nil {
		return err
	}
	defer req.Close()
	for _, n := range append(provs[1:], req) {
		if err := n.Bootstrap(ctx); err != nil {
			return err
		}
	}
	if err := waitFor(ctx, 10*time.Second, func() bool {
		for _, n := range append(provs, req) {
			if n.RoutingTableSize() == 0 {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("the DHT did not form: %w", err)
	}
	for _, p := range provs {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.Advertise(actx)
		cancel()
		if err != nil {
			return fmt.Errorf("advertise: %w", err)
		}
	}
	fmt.Fprintf(w, "  up in %s; every provider announced its facet keys in the DHT.\n\n", time.Since(start).Round(time.Millisecond))

	key := req.Identity()
	jobs := []string{"hello.yaml", "primes.yaml", "wordfreq.yaml", "sovereign.yaml"}
	fmt.Fprintf(w, "Submitting the example jobs (%s) and one that no provider can take...\n", strings.Join(jobs, ", "))
	type submitted struct{ file, key string }
	var subs []submitted
	for _, f := range jobs {
		k, err := submit(req, key, filepath.Join(o.Examples, "jobs", f), nil)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		subs = append(subs, submitted{f, k})
	}
	refusedKey, err := submit(req, key, filepath.Join(o.Examples, "jobs", "hello.yaml"), func(s *protocol.JobSpec) {
		s.Name = "swiss-only"
		s.Constraints = append(s.Constraints, protocol.ConstraintSpec{Key: "jurisdiction", Op: 3, Values: []string{"ch"}})
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nJOB\tPROVIDER\tREGION\tPRICE\tPLACED IN\tEXIT\tOUTPUT")
	for _, s := range subs {
		v, err := req.Wait(ctx, s.key)
		if err != nil {
			return err
		}
		stdout, _, _, _, _ := req.Logs(s.key)
		first, _, _ := strings.Cut(string(stdout), "\n")
		if v.State != "succeeded" {
			first = v.State + ": " + v.Reason
		}
		for i, sl := range v.Slots {
			job := v.Name
			if i > 0 {
				job = "  replica"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f ms\t%d\t%s\n", job, names[sl.Provider], regions[sl.Provider], sl.Price, v.PlacedMs, sl.ExitCode, first)
		}
	}
	tw.Flush()
	v, err := req.Wait(ctx, refusedKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nRefused, as it should be: %s is %s\n  %s\n", v.Name, v.State, v.Reason)
	for _, a := range v.Asked {
		fmt.Fprintf(w, "    %s: %s\n", names[a.Provider], a.Reason)
	}

	fmt.Fprintf(w, "\nA longer job; its provider is killed while it runs...\n")
	longKey, err := submit(req, key, filepath.Join(o.Examples, "jobs", "primes.yaml"), func(s *protocol.JobSpec) {
		s.Name, s.Replicas = "primes-long", 1
		s.Task.Args = []string{"--n", "4000000", "--rounds", "12"}
	})
	if err != nil {
		return err
	}
	var victim string
	if err := waitFor(ctx, 30*time.Second, func() bool {
		v, _ := req.Job(longKey)
		if len(v.Slots) > 0 && v.Slots[0].State == "running" {
			victim = v.Slots[0].Provider
			return true
		}
		return false
	}); err != nil {
		return fmt.Errorf("the long job did not start: %w", err)
	}
	time.Sleep(500 * time.Millisecond) // let it fetch its module and run a little
	for _, p := range provs {
		if p.ID().String() == victim {
			p.Close()
		}
	}
	fmt.Fprintf(w, "  killed %s (%s)\n", names[victim], regions[victim])
	v, err = req.Wait(ctx, longKey)
	if err != nil {
		return err
	}
	stdout, _, _, _, _ := req.Logs(longKey)
	first, _, _ := strings.Cut(string(stdout), "\n")
	fmt.Fprintf(w, "  %s: %s on %s (%s) under epoch %d: %s\n", v.Name, v.State, names[v.Slots[0].Provider], regions[v.Slots[0].Provider], v.Slots[0].Epoch, first)
	for _, h := range v.History {
		fmt.Fprintf(w, "    %s\n", h)
	}
	if v.State != "succeeded" || v.Slots[0].Provider == victim {
		return fmt.Errorf("the job was not rescheduled: %s", v.Reason)
	}
	fmt.Fprintf(w, "\nDone in %s: every job placed, run, billed and countersigned; the refusal explained; the lost lease rescheduled.\n",
		time.Since(start).Round(time.Millisecond))
	return nil
}

func newNode(ctx context.Context, dir, name string, ex *exec.Executor, boot []peer.AddrInfo, log *slog.Logger, m scheduler.MarketConfig) (*node.Node, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(dir, name+".db"), store.Options{ModuleDir: filepath.Join(dir, name+"-modules")})
	if err != nil {
		return nil, err
	}
	rand.Read(m.Seed[:])
	n, err := node.New(ctx, node.Options{Identity: k, Market: m, Store: st, Exec: ex, Bootstrap: boot, Log: log,
		Placement: scheduler.Config{OfferTimeout: time.Second}})
	if err != nil {
		st.Close()
		return nil, err
	}
	return n, nil
}

// submit reads a job spec, lets change alter it, signs it and submits it with
// its module.
func submit(req *node.Node, key crypto.PrivKey, path string, change func(*protocol.JobSpec)) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	spec, err := protocol.ParseJobSpecFile(path, data)
	if err != nil {
		return "", err
	}
	if change != nil {
		change(spec)
	}
	var module []byte
	j, err := spec.Job(func(m string) (cid.Cid, error) {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(path), m))
		module = b
		return protocol.SumCID(b), err
	})
	if err != nil {
		return "", err
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(j.Nonce)
	sj, err := protocol.SealJob(key, j)
	if err != nil {
		return "", err
	}
	return req.Submit(sj.Envelope, module, filepath.Base(path))
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
