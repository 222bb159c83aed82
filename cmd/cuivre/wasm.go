package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/protocol/jobspec"
)

func newWasmCmd() *cobra.Command {
	w := &cobra.Command{
		Use:   "wasm",
		Short: "Run a WebAssembly module without writing a job spec",
	}
	w.AddCommand(newWasmRunCmd())
	return w
}

// wasmFlags are what `wasm run` builds a job spec from.
type wasmFlags struct {
	name, cpu, memory, scratch string
	timeout                    time.Duration
	env, inputs, results       []string
	constraints                []string
	count, replicas            uint32
}

func newWasmRunCmd() *cobra.Command {
	var f wasmFlags
	var dryRun bool
	// run is `job run` itself: wasm run hands it the spec it built, on its
	// standard input, so that placing and following a job is one code path.
	run := newJobRunCmd()
	cmd := &cobra.Command{
		Use:   "run MODULE.wasm|CID [-- ARGS...]",
		Short: "Build a job from flags around one module, and place and follow it as job run does",
		Long: `wasm run is bacalhau wasm run or nomad job run for one module, without a spec
file: it builds the job spec from its flags (the module, its arguments after --,
--env, --input, --cpu, --memory, --timeout, --constraint...) and hands it to job
run, which signs it with the local node's key, places it and follows it. Every
flag of job run works here too (--detach, --download, --wait, -o, --bootstrap),
with the same output and exit codes. The job is named after the module's file
unless --name says otherwise. Paths, the module's and --input's, are relative
to the current directory.

--dry-run prints the spec instead, to keep it, edit it or run it later with
cuivre job run.`,
		Example: "  cuivre wasm run examples/wasm/hello.wasm -- --name world\n" +
			"  cuivre wasm run --cpu 250m --memory 64Mi --input ./corpus --result words.txt --download words examples/wasm/wordfreq.wasm -- corpus\n" +
			"  cuivre wasm run --constraint 'jurisdiction in (fr, be)' --env GREETING=bonjour examples/wasm/hello.wasm\n" +
			"  cuivre wasm run --dry-run examples/wasm/hello.wasm > hello.yaml",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); len(args) > 1 && dash != 1 {
				return fmt.Errorf("%q: put the module's arguments after --, as in `cuivre wasm run %s -- %s`", args[1], args[0], strings.Join(args[1:], " "))
			}
			doc, err := f.spec(args[0], args[1:])
			if err != nil {
				return err
			}
			b, err := doc.YAML()
			if err != nil {
				return err
			}
			if dryRun {
				_, err := cmd.OutOrStdout().Write(b)
				return err
			}
			// Refuse a bad flag here, in its own words, rather than as a line
			// of a document the customer never saw.
			if _, err := jobspec.ParseJobSpecFile("the spec built from the flags (--dry-run prints it)", b); err != nil {
				return err
			}
			run.SetIn(bytes.NewReader(b))
			run.SetOut(cmd.OutOrStdout())
			run.SetErr(cmd.ErrOrStderr())
			run.SetContext(cmd.Context())
			return run.RunE(run, []string{"-"})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "the job's name (default: the module's file name, as a-z, 0-9 and '-')")
	fl.StringVar(&f.cpu, "cpu", "", "vCPUs to reserve: 500m, 0.5 or 2 (default 1)")
	fl.StringVar(&f.memory, "memory", "", "memory to reserve: 128Mi, 1Gi (default 256Mi)")
	fl.StringVar(&f.scratch, "scratch", "", "scratch space to reserve: 64Mi (default 64Mi)")
	fl.DurationVar(&f.timeout, "timeout", 0, "stop the run, and its billing, after this long (default 5m)")
	fl.StringArrayVar(&f.env, "env", nil, "an environment variable of the module, K=V (repeatable)")
	fl.StringArrayVar(&f.inputs, "input", nil,
		"data mounted read-only in the working directory: a local path or a CID the node holds, SOURCE or SOURCE:NAME (default NAME: the path's base name; repeatable)")
	fl.StringArrayVar(&f.results, "result", nil, "a path the module writes that comes back as the job's output (repeatable; default: its whole working directory)")
	fl.StringArrayVar(&f.constraints, "constraint", nil, "a label a provider must match: 'jurisdiction = fr', 'region in (fr-par, be-bru)', 'gpu exists' (repeatable)")
	fl.Uint32Var(&f.count, "count", 0, "instances of the module (default 1)")
	fl.Uint32Var(&f.replicas, "replicas", 0, "distinct operators to run each instance, whose outputs are compared (default 1)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the job spec and place nothing")
	fl.AddFlagSet(run.Flags())
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// spec is the job spec of the flags for module and its arguments.
func (f wasmFlags) spec(module string, args []string) (jobspec.Document, error) {
	d := jobspec.Document{Version: 1, Name: f.name, Count: f.count, Replicas: f.replicas, Constraints: f.constraints}
	if d.Name == "" {
		d.Name = jobspec.NameFrom(strings.TrimSuffix(filepath.Base(module), ".wasm"), "wasm")
	}
	if _, err := cid.Decode(module); err != nil && !filepath.IsAbs(module) && !strings.HasPrefix(module, ".") {
		module = "./" + module // a file, even one whose name reads as a CID
	}
	d.Task = jobspec.TaskDocument{Module: module, Args: args, Outputs: f.results, Resources: jobspec.ResourcesDocument{CPU: f.cpu, Memory: f.memory, Scratch: f.scratch}}
	if f.timeout > 0 {
		d.Task.Resources.Timeout = f.timeout.String()
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return d, fmt.Errorf("--env %q: write it NAME=VALUE", kv)
		}
		if d.Task.Env == nil {
			d.Task.Env = map[string]string{}
		}
		d.Task.Env[k] = v
	}
	for _, in := range f.inputs {
		i, err := inputFlag(in)
		if err != nil {
			return d, err
		}
		d.Task.Inputs = append(d.Task.Inputs, i)
	}
	return d, nil
}

// inputFlag reads --input SOURCE[:NAME]: a CID must be given a name, a
// path's defaults to its base name.
func inputFlag(s string) (jobspec.InputDocument, error) {
	src, name, named := strings.Cut(s, ":")
	_, err := cid.Decode(src)
	isCID := err == nil
	switch {
	case src == "":
		return jobspec.InputDocument{}, fmt.Errorf("--input %q: give a local path or a CID, SOURCE or SOURCE:NAME", s)
	case named && name == "":
		return jobspec.InputDocument{}, fmt.Errorf("--input %q: the name after ':' is empty", s)
	case !named && isCID:
		return jobspec.InputDocument{}, fmt.Errorf("--input %s: name where it is mounted, as in --input %s:data", s, s)
	case !named:
		name = filepath.Base(filepath.Clean(src))
		if name == "." || name == "/" || name == ".." {
			return jobspec.InputDocument{}, errors.New("--input " + s + ": name where it is mounted, as in --input " + s + ":data")
		}
	}
	if !isCID && !filepath.IsAbs(src) && !strings.HasPrefix(src, ".") {
		src = "./" + src // a path, even one whose name reads as a CID
	}
	return jobspec.InputDocument{Path: name, Source: src}, nil
}
