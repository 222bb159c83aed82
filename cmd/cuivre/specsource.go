package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cuivre/cuivre/protocol/jobspec"
)

// specSource is a job spec document as its command's argument names it: a
// file, or standard input for "-".
type specSource struct {
	name string // the file's path, or "stdin": errors begin with it
	dir  string // where the spec's relative module and input paths resolve
	data []byte
}

// readSpec reads the spec that arg names. A spec read from standard input
// has no directory of its own, so its relative paths resolve against the
// current directory, as a shell's would.
func readSpec(arg string, stdin io.Reader) (specSource, error) {
	if arg != "-" {
		data, err := os.ReadFile(arg)
		if err != nil {
			return specSource{}, err
		}
		return fileSpec(arg, data), nil
	}
	data, err := io.ReadAll(io.LimitReader(stdin, jobspec.MaxJobSpecSize+1))
	if err != nil {
		return specSource{}, fmt.Errorf("reading the job spec from standard input: %w", err)
	}
	if len(data) > jobspec.MaxJobSpecSize {
		return specSource{}, fmt.Errorf("the job spec on standard input is over %d bytes: is it a job spec?", jobspec.MaxJobSpecSize)
	}
	if len(data) == 0 {
		return specSource{}, fmt.Errorf("standard input is empty: pipe a job spec into it, e.g. `cuivre job import bacalhau.yaml | cuivre job run -`")
	}
	return specSource{name: "stdin", dir: ".", data: data}, nil
}

// fileSpec is the spec data read from the file at path.
func fileSpec(path string, data []byte) specSource {
	return specSource{name: path, dir: filepath.Dir(path), data: data}
}
