package provider_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/nodetest"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// addInput adds a tree to the requester's store and grants it to prov, as
// the requester does for the leases of a job with inputs.
func addInput(t *testing.T, f *nodetest.Federation, prov *nodetest.Member, tree fstest.MapFS) (cid.Cid, uint64) {
	t.Helper()
	root, size, err := f.Requester.Data.AddFS(context.Background(), tree, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Requester.Blocks.Grant(prov.ID, root)
	return root, size
}

// TestInputsAndOutputs: a lease's input is fetched from its requester,
// mounted read-only, copied by the guest to an output directory that the
// provider keeps as a UnixFS DAG and grants the requester; the requester
// fetches it back whole, and another peer is refused it.
func TestInputsAndOutputs(t *testing.T) {
	fsprobe := exectest.Module(t, "fsprobe")
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.AddProvider(nodetest.Market("fr-par", "acme"))
		other := f.AddProvider(nodetest.Market("fr-par", "other"))
		tree := fstest.MapFS{
			"a.txt":     {Data: []byte("alpha\n")},
			"sub/b.bin": {Data: bytes.Repeat([]byte("cuivre"), 50_000)}, // 300 kB: two chunks
		}
		root, size := addInput(t, f, prov, tree)
		l := leaseTask(t, f, prov, fsprobe, &pb.Task{Args: []string{"copy", "in", "out", "tamper", "in"},
			Inputs: []*pb.Input{{Path: "in", Cid: root.Bytes(), Size: size}}, Outputs: []string{"missing", "out"}}, time.Second)
		res, stdout, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED {
			t.Fatalf("result %v %v (%v), stdout:\n%s", res.GetState(), res.GetError(), err, stdout)
		}
		tampered := 0
		for _, line := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(line, "tamper ") {
				tampered++
				if strings.Contains(line, ": ok") {
					t.Errorf("a change of the input went through: %s", line)
				}
			}
		}
		if tampered == 0 {
			t.Errorf("no change of the input was tried:\n%s", stdout)
		}
		out, err := cid.Cast(res.OutputCid)
		if err != nil || res.OutputSize != size {
			t.Fatalf("output %v (%v), size %d: want %d bytes", res.OutputCid, err, res.OutputSize, size)
		}
		ctx := context.Background()
		if err := f.Requester.Data.Fetch(ctx, f.Requester.Peer, []string{prov.ID}, out, data.FetchOptions{Clock: f.Clock}); err != nil {
			t.Fatalf("the requester fetching its output: %v", err)
		}
		fsys, err := f.Requester.Data.FS(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range tree {
			got, err := fs.ReadFile(fsys, "out/"+name)
			if err != nil || !bytes.Equal(got, want.Data) {
				t.Errorf("out/%s: %d bytes (%v), want %d", name, len(got), err, len(want.Data))
			}
		}
		if _, err := fs.Stat(fsys, "missing"); err == nil {
			t.Error("an output the guest never wrote is in the output")
		}
		err = other.Data.Fetch(ctx, other.Peer, []string{prov.ID}, out, data.FetchOptions{Clock: f.Clock})
		if protocol.CodeOf(err) != pb.Code_CODE_UNAUTHORIZED {
			t.Errorf("another peer fetching the output: %v, want CODE_UNAUTHORIZED", err)
		}
	})
}

// TestInputsRefused: inputs a provider must not run with are refused with a
// code, before the guest starts, and the provider goes on serving: one
// whose requester did not grant it, one larger or smaller than the job
// says, a directory bomb far past what the scratch could hold.
func TestInputsRefused(t *testing.T) {
	fsprobe := exectest.Module(t, "fsprobe")
	synctest.Test(t, func(t *testing.T) {
		f := nodetest.New(t, "fr-par")
		prov := f.AddProvider(nodetest.Market("fr-par", "acme"))
		small := fstest.MapFS{"a.txt": {Data: []byte("0123456789")}}
		bomb := fstest.MapFS{}
		for i := range 6000 { // 1 MiB of scratch holds at most 5461 entries
			bomb[fmt.Sprintf("d/%04d", i)] = &fstest.MapFile{}
		}
		bombRoot, _ := addInput(t, f, prov, bomb)
		root, size := addInput(t, f, prov, small)
		hidden, _, err := f.Requester.Data.AddFS(context.Background(), fstest.MapFS{"secret": {Data: []byte("s")}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			in   *pb.Input
			code pb.Code
		}{
			{"not granted", &pb.Input{Path: "in", Cid: hidden.Bytes(), Size: 1}, pb.Code_CODE_UNAUTHORIZED},
			{"larger than said", &pb.Input{Path: "in", Cid: root.Bytes(), Size: size - 1}, pb.Code_CODE_INSUFFICIENT_SCRATCH},
			{"smaller than said", &pb.Input{Path: "in", Cid: root.Bytes(), Size: size + 1}, pb.Code_CODE_MALFORMED},
			{"directory bomb", &pb.Input{Path: "in", Cid: bombRoot.Bytes(), Size: 0}, pb.Code_CODE_INSUFFICIENT_SCRATCH},
		} {
			l := leaseTask(t, f, prov, fsprobe, &pb.Task{Args: []string{"dump", "in"}, Inputs: []*pb.Input{tc.in}}, time.Second)
			res, stdout, err := watch(t, f, prov, l)
			if err != nil || res.State != pb.LeaseState_LEASE_STATE_FAILED || res.GetError().GetCode() != tc.code || stdout != "" {
				t.Errorf("%s: %v %v (%v), %d bytes of stdout: want failed with %s before the guest starts", tc.name, res.GetState(), res.GetError(), err, len(stdout), tc.code)
			}
		}
		// The provider still serves, and the input it kept is whole.
		l := leaseTask(t, f, prov, fsprobe, &pb.Task{Args: []string{"dump", "in"}, Inputs: []*pb.Input{{Path: "in", Cid: root.Bytes(), Size: size}}}, time.Second)
		res, stdout, err := watch(t, f, prov, l)
		if err != nil || res.State != pb.LeaseState_LEASE_STATE_SUCCEEDED || !strings.Contains(stdout, "0123456789") {
			t.Fatalf("a good input after the refusals: %v (%v):\n%s", res.GetState(), err, stdout)
		}
	})
}
