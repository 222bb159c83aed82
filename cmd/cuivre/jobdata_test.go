package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	carbs "github.com/ipld/go-car/v2/blockstore"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/requester"
)

// TestJobData: a job over data, daemons in processes of their own on
// loopback. A 100 MiB input directory given by local path is added to the
// customer's node, fetched from there by the provider (another daemon, which
// the job's constraint picks), copied by the guest into a 100 MiB output
// directory, brought back, and written out by `cuivre job get`. The bytes
// come back whole, the output's copy has the input's own root CID, and the
// output opens as a CAR with go-car.
func TestJobData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	a := startDaemon(t, initDir(t), "")
	b := startDaemon(t, initDir(t), a.id.Addrs[0], "labels.region=fr-lyo", "capacity.scratch=2Gi")

	dir := t.TempDir()
	in := filepath.Join(dir, "input")
	files := map[string][]byte{}
	for i, name := range []string{"a.bin", "b.bin", "sub/c.bin", "sub/deeper/d.bin"} {
		n := 25 << 20
		if i == 3 {
			n = 25<<20 + 12345 // not a whole number of chunks
		}
		files[name] = random(n)
	}
	files["sub/small.txt"] = []byte("small\n")
	for name, b := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(in, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(in, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	module, err := filepath.Abs("../../examples/wasm/fsprobe.wasm")
	if err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "copy.yaml")
	writeFile(t, spec, `version: 1
name: copy
task:
  module: `+module+`
  args: [copy, in, out]
  inputs:
    - {path: in, source: ./input}
  outputs: [out]
  resources: {cpu: 500m, memory: 64Mi, scratch: 256Mi, timeout: 5m}
constraints:
  - region = fr-lyo
`)
	run := cuivre(t, "job", "run", "--data-dir", a.dir, "--detach", spec)
	out, err := run.Output()
	if err != nil {
		t.Fatalf("job run: %v\n%s", err, exitStderr(err))
	}
	key := strings.TrimSpace(string(out))
	c, err := api.Dial(a.dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := follow(context.Background(), c, key, nil, io.Discard, 0)
	if err != nil || v.State != "succeeded" {
		t.Fatalf("job %s: %v, %+v", key, err, v)
	}
	if v.Slots[0].Provider != b.id.ID {
		t.Fatalf("ran on %s, want the provider in fr-lyo %s", v.Slots[0].Provider, b.id.ID)
	}

	dst := filepath.Join(dir, "back")
	if b, err := cuivre(t, "job", "get", "--data-dir", a.dir, key, "--output-dir", dst).CombinedOutput(); err != nil {
		t.Fatalf("job get: %v\n%s", err, b)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dst, "out", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("out/%s: %d bytes back (%v), want %d", name, len(got), err, len(want))
		}
	}

	// The root the job reports is the directory written, hashed here; the
	// daemon's CAR of it opens with go-car; and in it the output's copy of
	// the input has the input's own root CID.
	st, err := data.Open(filepath.Join(dir, "check"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	inRoot, err := st.AddPath(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	outRoot, err := st.AddPath(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	var jv requester.JobView
	if err := c.Get("/v1/jobs/"+key, &jv); err != nil {
		t.Fatal(err)
	}
	if jv.Slots[0].Output != outRoot.String() || len(jv.Outputs) != 1 || !jv.Outputs[0].Held {
		t.Errorf("the job's output is %s (%+v), the directory written hashes to %s", jv.Slots[0].Output, jv.Outputs, outRoot)
	}
	carPath := filepath.Join(dir, "out.car")
	f, err := os.Create(carPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stream("/v1/data/"+outRoot.String(), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	bs, err := carbs.OpenReadOnly(carPath)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	roots, err := bs.Roots()
	if err != nil || len(roots) != 1 || !roots[0].Equals(outRoot) {
		t.Fatalf("CAR roots %v (%v), want [%s]", roots, err, outRoot)
	}
	blk, err := bs.Get(ctx, outRoot)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := merkledag.DecodeProtobuf(blk.RawData())
	if err != nil {
		t.Fatal(err)
	}
	link, _, err := nd.ResolveLink([]string{"out"})
	if err != nil || !link.Cid.Equals(inRoot) {
		t.Errorf("the output's out is %v (%v), want the input's root %s", link, err, inRoot)
	}
}

// exitStderr is what a failed command wrote to stderr, if Output kept it.
func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
