package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/protocol/jobspec"
	"github.com/cuivre/cuivre/protocol/jobspec/bacalhau"
)

// maxImport bounds a Bacalhau job read: one with an inline module is larger
// than any cuivre spec.
const maxImport = 16 << 20

func newJobImportCmd() *cobra.Command {
	var out, module string
	cmd := &cobra.Command{
		Use:   "import BACALHAU.yaml|-",
		Short: "Convert a Bacalhau job spec (wasm engine) into a cuivre job spec",
		Long: `import reads a Bacalhau v1 job spec, YAML or JSON, whose one task runs the wasm
engine, and writes the cuivre job spec that runs the same module: the name,
count, constraints, the module and its parameters, environment variables,
inputs (ipfs CIDs and local paths), result paths, CPU, memory, disk as scratch,
the execution timeout, and the queue timeout as the placement timeout. The spec
goes to standard output, or to the file -o names.

What it cannot carry over it says on standard error, a line each, and at the
top of the spec as comments: a publisher (the output stays with its providers
and job get fetches it), a network, GPUs, labels and metadata, an operator or a
label cuivre has not, inputs from URLs or S3. Inputs and results move into the
job's working directory, where cuivre mounts them: /inputs becomes inputs. A job
of another engine than wasm (docker) is refused: cuivre runs WebAssembly only.
A module from a URL or inline data is refused too, unless --module names it.`,
		Example: "  cuivre job import bacalhau-job.yaml > job.yaml\n" +
			"  cuivre job import -o job.yaml bacalhau-job.yaml && cuivre job run job.yaml\n" +
			"  cuivre job import --module main.wasm bacalhau-job.yaml | cuivre job run -",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readImport(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			doc, notes, err := bacalhau.Convert(data, module)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			spec, err := importedSpec(args[0], doc, notes)
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", args[0], n)
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(spec)
				return err
			}
			return os.WriteFile(out, spec, 0o644)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the cuivre spec to this file (default: standard output)")
	cmd.Flags().StringVar(&module, "module", "", "the module to run, a path or a CID, instead of the job's entry module")
	return cmd
}

// readImport reads the Bacalhau job that arg names, a file or "-".
func readImport(arg string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if arg != "-" {
		f, err := os.Open(arg)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxImport+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	if len(data) > maxImport {
		return nil, fmt.Errorf("%s: over %d bytes: is it a job spec?", arg, maxImport)
	}
	return data, nil
}

// importedSpec writes the imported spec, its notes as comments at the top,
// and checks it as job run will, so that a spec that breaks a cuivre rule
// (too many instances, say) is refused here with the rule.
func importedSpec(from string, doc jobspec.Document, notes []bacalhau.Note) ([]byte, error) {
	body, err := doc.YAML()
	if err != nil {
		return nil, err
	}
	if _, err := jobspec.ParseJobSpecFile("the spec imported from "+from, body); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Imported from the Bacalhau job %s by cuivre job import", from)
	if len(notes) > 0 {
		b.WriteString(", which did not carry over, or carried otherwise:")
	}
	b.WriteString("\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "# %s\n", n)
	}
	b.Write(body)
	return b.Bytes(), nil
}
