package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/jobspec/bacalhau"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

func newJobCmd() *cobra.Command {
	job := &cobra.Command{
		Use:   "job",
		Short: "Work with job specs",
	}
	job.AddCommand(newJobInspectCmd(), newJobRunCmd(), newJobStatusCmd(), newJobLogsCmd(), newJobStopCmd(), newJobListCmd(), newJobOffersCmd(), newJobGetCmd(), newJobImportCmd())
	return job
}

func newJobInspectCmd() *cobra.Command {
	var asJSON, sign bool
	var output format
	cmd := &cobra.Command{
		Use:   "inspect JOB.yaml|-",
		Short: "Parse and validate a job spec, and print its canonical form and CID",
		Long: `inspect reads a job spec (YAML or JSON), checks it as a provider would, resolves
its module (a path relative to the spec, or a CID) and prints the job's canonical
form and its CID. Errors name the line and the field. -o json or yaml prints
the canonical job alone, in the protobuf JSON mapping.

With --sign it also signs the job with a throwaway key and opens the envelope
again, as a provider does on receipt: a check of the signing path, not a
submission.`,
		Example: "  cuivre job inspect examples/jobs/hello.yaml\n  cuivre job inspect -o json job.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := readSpec(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			j, _, err := loadJob(src, localInputs(cmd.Context(), src.dir))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				output = "json"
			}
			if output.machine() {
				// The job's protobuf JSON names, not encoding/json's.
				b, err := protojson.Marshal(j)
				if err != nil {
					return err
				}
				return render(out, output, json.RawMessage(b), nil)
			}
			canon, err := protocol.Canonical(j)
			if err != nil {
				return err
			}
			c := wire.SumCID(canon)
			r := j.GetTask().GetResources()
			fmt.Fprintf(out, "name       %s (%s, count %d, replicas %d)\n", j.Name,
				strings.ToLower(strings.TrimPrefix(j.Type.String(), "JOB_TYPE_")), j.Count, j.Replicas)
			fmt.Fprintf(out, "module     %s\n", mustCID(j.GetTask().GetModuleCid()))
			fmt.Fprintf(out, "resources  %dm cpu, %s memory, %s scratch, timeout %s\n",
				r.GetCpuMillis(), protocol.FormatBytes(r.GetMemoryBytes()), protocol.FormatBytes(r.GetScratchBytes()),
				time.Duration(j.GetTask().GetTimeoutMs())*time.Millisecond)
			fmt.Fprintf(out, "hard       %d constraints; soft: %d affinities, %d spread\n", len(j.Constraints), len(j.Affinities), len(j.Spread))
			if mp := j.GetMaxPrice(); mp != nil {
				fmt.Fprintf(out, "max price  %s for one instance's whole run\n", protocol.FormatAmount(mp))
			}
			fmt.Fprintf(out, "job cid    %s (canonical encoding, %d bytes, no nonce)\n", c, len(canon))
			if !sign {
				return nil
			}
			return signAndOpen(cmd, j)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the canonical job as JSON")
	cmd.Flags().MarkDeprecated("json", "use -o json")
	addOutput(cmd, &output)
	cmd.Flags().BoolVar(&sign, "sign", false, "also sign the job with a throwaway key and verify the envelope")
	return cmd
}

// loadJob parses a spec and resolves a module path against its directory;
// it returns the module's bytes when the spec names a file.
func loadJob(src specSource, inputs inputResolver) (*pb.Job, []byte, error) {
	spec, err := jobspec.ParseJobSpecFile(src.name, src.data)
	if err != nil && bacalhau.Looks(src.data) {
		return nil, nil, fmt.Errorf("%w\n%s looks like a Bacalhau job: convert it with `cuivre job import %s`", err, src.name, src.name)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := spec.ResolveInputs(inputs); err != nil {
		return nil, nil, err
	}
	var module []byte
	j, err := spec.Job(func(m string) (cid.Cid, error) {
		if !filepath.IsAbs(m) {
			m = filepath.Join(src.dir, m)
		}
		b, err := readModule(m)
		if err != nil {
			return cid.Undef, err
		}
		module = b
		return wire.SumCID(b), nil
	})
	return j, module, err
}

// inputResolver turns a job input's source into its root and size
// (jobspec.JobSpec.ResolveInputs).
type inputResolver = func(source string, c cid.Cid) (cid.Cid, uint64, error)

// nodeInputs resolves inputs through the daemon, which its providers fetch
// them from: a path, relative to the spec's directory, is added to its
// store; a CID must be held there already.
func nodeInputs(ctx context.Context, c *api.Client, specDir string, errOut io.Writer) inputResolver {
	return func(src string, root cid.Cid) (cid.Cid, uint64, error) {
		if !root.Defined() {
			p := src
			if !filepath.IsAbs(p) {
				p = filepath.Join(specDir, p)
			}
			var err error
			if root, err = upload(ctx, c, p, false, errOut); err != nil {
				return cid.Undef, 0, err
			}
		}
		var st api.DataStat
		if err := c.Get("/v1/data/"+root.String()+"/stat", &st); err != nil {
			return cid.Undef, 0, fmt.Errorf("%w (to use data held elsewhere: cuivre data get %s --from PEER)", err, root)
		}
		return root, st.Size, nil
	}
}

// localInputs resolves inputs on this machine, for inspect: a path is read
// into a throwaway store; a CID is sized by the local node if one answers.
func localInputs(ctx context.Context, specDir string) inputResolver {
	return func(src string, root cid.Cid) (cid.Cid, uint64, error) {
		if root.Defined() {
			c, err := apiClient()
			if err != nil {
				return cid.Undef, 0, fmt.Errorf("its size is known only to a node that holds it, and none answers here: %w", err)
			}
			return nodeInputs(ctx, c, specDir, io.Discard)(src, root)
		}
		p := src
		if !filepath.IsAbs(p) {
			p = filepath.Join(specDir, p)
		}
		st, done, err := tempStore()
		if err != nil {
			return cid.Undef, 0, err
		}
		defer done()
		if root, err = st.AddPath(ctx, p); err != nil {
			return cid.Undef, 0, err
		}
		stat, err := st.Stat(ctx, root, data.Limits{})
		if err != nil {
			return cid.Undef, 0, err
		}
		return root, stat.Size, nil
	}
}

// readModule reads a module file for upload, and refuses, before a byte
// leaves the machine, what is not a regular file (a device, a pipe), what is
// larger than providers take, and what is not a WebAssembly command: a spec's
// module path must not be a way to ship a private key to providers.
func readModule(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module: %w (build it, or give its CID)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("module: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("module %s: not a regular file", path)
	}
	const max = store.DefaultMaxModuleSize
	if fi.Size() > max {
		return nil, fmt.Errorf("module %s: %d bytes, over the %d providers take", path, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	if err := exec.Validate(context.Background(), b, max); err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	return b, nil
}

func signAndOpen(cmd *cobra.Command, j *pb.Job) error {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return err
	}
	j.Nonce = make([]byte, protocol.NonceSize)
	if _, err := rand.Read(j.Nonce); err != nil {
		return err
	}
	signed, err := record.SealJob(key, j)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "signed     by throwaway key %s: envelope %d bytes, opened and verified; with its nonce the job is %s\n",
		signed.Customer, len(signed.Envelope), signed.CID)
	return nil
}

func mustCID(b []byte) string {
	c, err := wire.ParseCID(b)
	if err != nil {
		return fmt.Sprintf("invalid (%v)", err)
	}
	return c.String()
}
