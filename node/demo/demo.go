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
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// Options of a demo run.
type Options struct {
	Examples string    // the examples directory (jobs/ and wasm/)
	Out      io.Writer // where the demo tells what it does
	Log      *slog.Logger
	CacheDir string // the executor's compilation cache; default one of the devnet's own
}

// Run starts the federation, runs the demonstration and stops everything.
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	w := o.Out
	fmt.Fprintf(w, "Starting a federation of %d providers and one requester on loopback (QUIC, private DHT, wazero, bbolt)...\n", len(devnet.Profiles))
	// A round waits up to 5 s for its lookups and offers: on a loaded machine
	// the DHT lookups that widen a search past the first shards take more
	// than the devnet's default 2 s, and a job with two certified replicas
	// would give up before it found its second provider.
	d, err := devnet.Start(ctx, devnet.Options{Log: o.Log, CacheDir: o.CacheDir, OfferTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer d.Close()
	req, provs := d.Requester, d.Providers
	names, regions := map[string]string{}, map[string]string{}
	for i, p := range provs {
		names[p.ID().String()], regions[p.ID().String()] = d.Profiles[i].Name, d.Profiles[i].Region
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
	refusedKey, err := submit(req, key, filepath.Join(o.Examples, "jobs", "hello.yaml"), func(s *jobspec.JobSpec) {
		s.Name = "swiss-only"
		s.Constraints = append(s.Constraints, jobspec.ConstraintSpec{Key: "jurisdiction", Op: 3, Values: []string{"ch"}})
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
	for _, s := range subs {
		if s.file == "wordfreq.yaml" {
			if err := showOutput(ctx, w, req, s.key); err != nil {
				return err
			}
		}
	}
	v, err := req.Wait(ctx, refusedKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nRefused, as it should be: %s is %s\n  %s\n", v.Name, v.State, v.Reason)
	for _, a := range v.Asked {
		fmt.Fprintf(w, "    %s: %s\n", names[a.Provider], a.Reason)
	}

	fmt.Fprintf(w, "\nA longer job; its provider is killed while it runs...\n")
	longKey, err := submit(req, key, filepath.Join(o.Examples, "jobs", "primes.yaml"), func(s *jobspec.JobSpec) {
		s.Name, s.Replicas = "primes-long", 1
		s.Task.Args = []string{"--n", "4000000", "--rounds", "12"}
	})
	if err != nil {
		return err
	}
	var victim string
	if err := devnet.WaitFor(ctx, 2*time.Minute, func() bool {
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
	for i, p := range provs {
		if p.ID().String() == victim {
			d.Kill(i)
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

// submit reads a job spec, lets change alter it, signs it and submits it with
// its module.
func submit(req *node.Node, key crypto.PrivKey, path string, change func(*jobspec.JobSpec)) (string, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	spec, err := jobspec.ParseJobSpecFile(path, doc)
	if err != nil {
		return "", err
	}
	if change != nil {
		change(spec)
	}
	// Inputs are added to the requester's own store, which its providers
	// fetch them from.
	err = spec.ResolveInputs(func(src string, c cid.Cid) (cid.Cid, uint64, error) {
		ctx := context.Background()
		if !c.Defined() {
			if c, err = req.Data().AddPath(ctx, filepath.Join(filepath.Dir(path), src)); err != nil {
				return cid.Undef, 0, err
			}
		}
		st, err := req.Data().Stat(ctx, c, data.Limits{})
		return c, st.Size, err
	})
	if err != nil {
		return "", err
	}
	var module []byte
	j, err := spec.Job(func(m string) (cid.Cid, error) {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(path), m))
		module = b
		return wire.SumCID(b), err
	})
	if err != nil {
		return "", err
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	rand.Read(j.Nonce)
	sj, err := record.SealJob(key, j)
	if err != nil {
		return "", err
	}
	return req.Submit(sj.Envelope, module, filepath.Base(path))
}

// showOutput waits for a job's output to come back to the requester, by CID
// from its provider, and prints the head of each of its files.
func showOutput(ctx context.Context, w io.Writer, req *node.Node, key string) error {
	var out requester.OutputView
	err := devnet.WaitFor(ctx, time.Minute, func() bool {
		v, _ := req.Job(key)
		if len(v.Outputs) == 1 && v.Outputs[0].Held {
			out = v.Outputs[0]
			return true
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("the output of %s did not come back: %w", key, err)
	}
	root, err := cid.Decode(out.CID)
	if err != nil {
		return err
	}
	fsys, err := req.Data().FS(ctx, root)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nwordfreq read its input directory and wrote its output, fetched back by CID:\n  %s (%d bytes)\n", root, out.Size)
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		lines := strings.SplitN(string(b), "\n", 4)
		fmt.Fprintf(w, "  %s: %s ...\n", p, strings.Join(lines[:min(3, len(lines))], ", "))
		return nil
	})
}
