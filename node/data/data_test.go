package data_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"

	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/protocol/wire"
)

func open(t *testing.T) *data.Store {
	t.Helper()
	s, err := data.Open(filepath.Join(t.TempDir(), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pseudo returns n bytes from a seeded source: large test data that does
// not compress into a handful of distinct blocks.
func pseudo(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestFileCID: a file of one chunk is named by the raw CID of its bytes,
// as everywhere in cuivre, and "hello\n" by the CID `ipfs add
// --cid-version=1` gives it.
func TestFileCID(t *testing.T) {
	s := open(t)
	c, err := s.AddReader(context.Background(), bytes.NewReader([]byte("hello\n")))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equals(wire.SumCID([]byte("hello\n"))) || c.String() != "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am" {
		t.Fatalf("hello: %s", c)
	}
}

// TestRoundTrip: a directory tree (nested, with a file of many chunks and an
// empty one) added and got back is byte for byte the same; adding it again
// gives the same root; its CAR export opens with go-car and holds every
// block, each hashing to its CID.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	src := filepath.Join(t.TempDir(), "in")
	files := map[string][]byte{
		"a.txt":         []byte("alpha\n"),
		"empty":         {},
		"sub/big.bin":   pseudo(3*data.ChunkSize+123, 1),
		"sub/deep/z.md": []byte("# z\n"),
	}
	for name, b := range files {
		write(t, filepath.Join(src, name), b)
	}
	root, err := s.AddPath(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AddPath(ctx, src)
	if err != nil || !again.Equals(root) {
		t.Fatalf("added twice: %s then %s (%v)", root, again, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s.Get(ctx, root, out); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes back (%v), want %d", name, len(got), err, len(want))
		}
	}
	if err := s.Get(ctx, root, out); err == nil {
		t.Error("Get wrote over an existing path")
	}

	car := filepath.Join(t.TempDir(), "out.car")
	if err := s.WriteCAR(ctx, root, car); err != nil {
		t.Fatal(err)
	}
	r, err := carv2.OpenReader(car)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	roots, err := r.Roots()
	if err != nil || len(roots) != 1 || !roots[0].Equals(root) {
		t.Fatalf("CAR roots %v, %v; want %s", roots, err, root)
	}
	dr, err := r.DataReader()
	if err != nil {
		t.Fatal(err)
	}
	br, err := carv2.NewBlockReader(dr)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		blk, err := br.Next()
		if err != nil {
			break
		}
		sum, err := blk.Cid().Prefix().Sum(blk.RawData())
		if err != nil || !sum.Equals(blk.Cid()) {
			t.Fatalf("block %s does not hash to its CID", blk.Cid())
		}
		n++
	}
	// root, sub, deep, a.txt, empty, z.md, big.bin's node and its 4 leaves
	if n != 11 {
		t.Fatalf("%d blocks in the CAR, want 11", n)
	}
}

// TestDamagedBlock: a block whose bytes do not hash to its CID (a damaged
// disk) is an error when read, never wrong bytes handed on.
func TestDamagedBlock(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	c := wire.SumCID([]byte("the real bytes"))
	bad, err := blocks.NewBlockWithCid([]byte("other bytes"), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Blockstore().Put(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if err := s.Get(ctx, c, filepath.Join(t.TempDir(), "x")); err == nil {
		t.Fatal("a damaged block was read")
	}
}

// TestRefusesOddFiles: a symbolic link or a device is not added, and a root
// the store does not hold is an error, not an empty result.
func TestRefusesOddFiles(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "in", "ok.txt"), []byte("ok"))
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "in", "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddPath(ctx, filepath.Join(dir, "in")); !errors.Is(err, data.ErrNotRegular) {
		t.Fatalf("a tree with a link: %v, want ErrNotRegular", err)
	}
	if _, err := s.AddPath(ctx, "/dev/null"); !errors.Is(err, data.ErrNotRegular) {
		t.Fatalf("a device: %v, want ErrNotRegular", err)
	}
	missing, _ := cid.Decode("bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am")
	if err := s.Get(ctx, missing, filepath.Join(dir, "x")); err == nil {
		t.Fatal("a root the store does not hold was got")
	}
}

// TestCARBetweenStores: a DAG exported as a CARv1 stream imports into another
// store whole; a CAR that lies about a block, breaks off, misses a block or
// exceeds the limit is refused, and what was kept before stays usable.
func TestCARBetweenStores(t *testing.T) {
	ctx := context.Background()
	a, b := open(t), open(t)
	src := filepath.Join(t.TempDir(), "in")
	write(t, filepath.Join(src, "x.bin"), pseudo(2*data.ChunkSize+7, 2))
	write(t, filepath.Join(src, "y.txt"), []byte("why\n"))
	root, err := a.AddPath(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if err := a.ExportCAR(ctx, root, &car); err != nil {
		t.Fatal(err)
	}
	whole := car.Bytes()

	if _, err := b.ImportCAR(ctx, bytes.NewReader(whole), int64(len(whole)-1)); !errors.Is(err, data.ErrTooLarge) {
		t.Fatalf("over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := b.ImportCAR(ctx, bytes.NewReader(whole[:len(whole)/2]), 1<<30); err == nil {
		t.Fatal("a CAR cut in half was taken")
	}
	lie := bytes.Clone(whole)
	lie[len(lie)-2] ^= 0xff // a byte of the last block
	if _, err := b.ImportCAR(ctx, bytes.NewReader(lie), 1<<30); err == nil {
		t.Fatal("a block that does not hash to its CID was taken")
	}
	got, err := b.ImportCAR(ctx, bytes.NewReader(whole), 1<<30)
	if err != nil || !got.Equals(root) {
		t.Fatalf("import: %s, %v; want %s", got, err, root)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := b.Get(ctx, root, out); err != nil {
		t.Fatal(err)
	}
	if x, _ := os.ReadFile(filepath.Join(out, "x.bin")); !bytes.Equal(x, pseudo(2*data.ChunkSize+7, 2)) {
		t.Fatal("x.bin differs after the trip")
	}
	var missing bytes.Buffer
	if err := a.ExportCAR(ctx, wire.SumCID([]byte("never added")), &missing); !errors.Is(err, data.ErrNotFound) {
		t.Fatalf("export of a root not held: %v", err)
	}
}
