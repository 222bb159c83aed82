package data_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/protocol/wire"
)

// fakeClock is a clock, moved by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openWith(t *testing.T, dir string, o data.Options) *data.Store {
	t.Helper()
	s, err := data.OpenWith(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func gc(t *testing.T, s *data.Store) uint64 {
	t.Helper()
	n, err := s.GC(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// whole reports whether s holds root's DAG whole.
func whole(s *data.Store, root cid.Cid) bool {
	_, err := s.Stat(context.Background(), root, data.Limits{})
	return err == nil
}

// TestPinsSurviveReopen: pins, of many owners, and the bytes used are the
// same after a reopen.
func TestPinsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "blocks")
	s, err := data.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.AddReader(ctx, bytes.NewReader(pseudo(2*data.ChunkSize+1, 8)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.AddReader(ctx, bytes.NewReader([]byte("b")))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []data.Pin{{Root: a, Owner: "lease-1"}, {Root: a, Owner: "lease/2 odd ✓"}, {Root: b, Owner: "lease-1"}, {Root: a, Owner: "lease-1"}} {
		if err := s.Pin(ctx, p.Root, p.Owner); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Pin(ctx, a, ""); err == nil {
		t.Fatal("a pin without an owner")
	}
	if err := s.Unpin(ctx, b, "lease-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, b, "never"); err != nil {
		t.Fatal(err)
	}
	used := s.Used()
	// Two leaves of a chunk, two of a byte, a's root: each block takes a
	// whole number of 4 KiB on disk.
	if used != 2*data.ChunkSize+3*4096 {
		t.Fatalf("used %d", used)
	}
	want, err := s.Pins(ctx)
	if err != nil || len(want) != 2 {
		t.Fatalf("pins %v, %v", want, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openWith(t, dir, data.Options{})
	got, err := s.Pins(ctx)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("pins after reopen: %v (%v), want %v", got, err, want)
	}
	if s.Used() != used {
		t.Fatalf("used %d after reopen, %d before", s.Used(), used)
	}
}

// TestGCKeep: GC frees unpinned content once Keep has passed since its add
// or unpin, never pinned content nor a block another DAG still needs.
func TestGCKeep(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openWith(t, filepath.Join(t.TempDir(), "blocks"), data.Options{Keep: time.Hour, Now: clk.Now})
	shared := pseudo(2*data.ChunkSize, 9)
	a, _, err := s.AddFS(ctx, fstest.MapFS{"shared": {Data: shared}, "a": {Data: pseudo(data.ChunkSize+3, 10)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, a, "lease-a"); err != nil {
		t.Fatal(err)
	}
	b, _, err := s.AddFS(ctx, fstest.MapFS{"shared": {Data: shared}, "b": {Data: pseudo(data.ChunkSize+4, 11)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	usedBoth := s.Used()
	if n := gc(t, s); n != 0 {
		t.Fatalf("GC freed %d bytes of fresh content", n)
	}
	clk.Advance(59 * time.Minute)
	if n := gc(t, s); n != 0 {
		t.Fatalf("GC freed %d bytes within Keep", n)
	}
	clk.Advance(2 * time.Minute)
	freed := gc(t, s)
	if freed == 0 || whole(s, b) || !whole(s, a) || s.Used() != usedBoth-freed {
		t.Fatalf("after Keep: freed %d, b whole %v, a whole %v, used %d of %d", freed, whole(s, b), whole(s, a), s.Used(), usedBoth)
	}
	// b's own leaves and its directory went (each block a whole number of
	// 4 KiB on disk); the shared file stayed.
	if freed < data.ChunkSize+4 || freed > data.ChunkSize+4*4096 {
		t.Fatalf("freed %d bytes", freed)
	}

	clk.Advance(10 * time.Hour)
	if n := gc(t, s); n != 0 || !whole(s, a) {
		t.Fatalf("GC freed %d bytes of pinned content", n)
	}
	if err := s.Unpin(ctx, a, "lease-a"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Minute)
	if n := gc(t, s); n != 0 || !whole(s, a) {
		t.Fatalf("GC freed %d bytes just unpinned", n)
	}
	clk.Advance(2 * time.Minute)
	if n := gc(t, s); n == 0 || whole(s, a) || s.Used() != 0 {
		t.Fatalf("GC freed %d bytes of content unpinned long ago, %d left", n, s.Used())
	}
}

// TestGCTouch: blocks kept as a fetch keeps them stay Keep, then go unless
// their root was touched.
func TestGCTouch(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openWith(t, filepath.Join(t.TempDir(), "blocks"), data.Options{Keep: time.Hour, Now: clk.Now})
	one := blocks.NewBlock([]byte("fetched one"))
	two := blocks.NewBlock([]byte("fetched two"))
	for _, b := range []blocks.Block{one, two} {
		if err := s.Blockstore().Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(50 * time.Minute)
	if err := s.Touch(ctx, wire.SumCID([]byte("fetched one"))); err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Minute)
	if n := gc(t, s); n != 4096 { // a block's footprint: Used
		t.Fatalf("freed %d", n)
	}
	if ok, _ := s.Has(ctx, one.Cid()); !ok {
		t.Fatal("a touched root went")
	}
	clk.Advance(time.Hour)
	if n := gc(t, s); n != 4096 {
		t.Fatalf("freed %d", n)
	}
}

// TestGCSparesAddInProgress: a GC run while an add is under way, however
// long it takes, leaves its blocks alone.
func TestGCSparesAddInProgress(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openWith(t, filepath.Join(t.TempDir(), "blocks"), data.Options{Keep: time.Hour, Now: clk.Now})
	want := pseudo(5*data.ChunkSize, 12)
	pr, pw := io.Pipe()
	type result struct {
		root cid.Cid
		err  error
	}
	done := make(chan result)
	go func() {
		root, err := s.AddReader(ctx, pr)
		done <- result{root, err}
	}()
	// Once the fourth chunk is taken, the first three are kept.
	if _, err := pw.Write(want[:4*data.ChunkSize]); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Hour)
	if n := gc(t, s); n != 0 {
		t.Fatalf("GC freed %d bytes of an add under way", n)
	}
	pw.Write(want[4*data.ChunkSize:])
	pw.Close()
	r := <-done
	if r.err != nil || !whole(s, r.root) {
		t.Fatalf("add: %v, whole %v", r.err, whole(s, r.root))
	}
	if n := gc(t, s); n != 0 {
		t.Fatalf("GC freed %d bytes just added", n)
	}
}

// TestQuota: a write past the quota is refused with ErrFull, losing nothing
// held; after an unpin and Keep, the same write frees room and succeeds.
func TestQuota(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	const quota = 3 * data.ChunkSize
	s := openWith(t, filepath.Join(t.TempDir(), "blocks"), data.Options{Quota: quota, Keep: time.Hour, Now: clk.Now})
	first := pseudo(2*data.ChunkSize, 13)
	a, err := s.AddReader(ctx, bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, a, "lease-a"); err != nil {
		t.Fatal(err)
	}
	second := pseudo(2*data.ChunkSize, 14)
	clk.Advance(2 * time.Hour)
	if _, err := s.AddReader(ctx, bytes.NewReader(second)); !errors.Is(err, data.ErrFull) {
		t.Fatalf("past the quota: %v, want ErrFull", err)
	}
	if s.Used() > quota || !whole(s, a) {
		t.Fatalf("used %d of %d, a whole %v", s.Used(), quota, whole(s, a))
	}
	if err := s.Unpin(ctx, a, "lease-a"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	b, err := s.AddReader(ctx, bytes.NewReader(second)) // runs GC itself
	if err != nil {
		t.Fatal(err)
	}
	if !whole(s, b) || whole(s, a) || s.Used() > quota {
		t.Fatalf("b whole %v, a whole %v, used %d of %d", whole(s, b), whole(s, a), s.Used(), quota)
	}
	if n := gc(t, s); n != 0 {
		t.Fatalf("freed %d", n)
	}
}

// TestGCTime logs how long a GC of many blocks takes: a pinned DAG to mark
// and unpinned blocks to sweep.
func TestGCTime(t *testing.T) {
	if testing.Short() {
		t.Skip("many blocks")
	}
	ctx := context.Background()
	clk := newClock()
	s := openWith(t, filepath.Join(t.TempDir(), "blocks"), data.Options{Keep: time.Hour, Now: clk.Now})
	n := 20000
	if raceBuild() {
		n = 2000 // the race detector slows the writes tenfold
	}
	for i := range n {
		b := blocks.NewBlock(pseudo(1024, uint64(100+i)))
		if err := s.Blockstore().Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	pinned, err := s.AddReader(ctx, bytes.NewReader(pseudo(400*data.ChunkSize, 15))) // 401 blocks
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, pinned, "p"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	start := time.Now()
	freed := gc(t, s)
	took := time.Since(start)
	if freed != uint64(n)*4096 || !whole(s, pinned) { // each 1 KiB block takes 4 KiB on disk
		t.Fatalf("freed %d", freed)
	}
	t.Logf("GC of %d blocks (%d swept, a pinned DAG of 401 marked): %v", n+401, n, took)
}

// TestGCRacesAdds: GCs run while adds write again blocks GC is freeing: no
// add ends with a DAG that is not whole.
func TestGCRacesAdds(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openWith(t, filepath.Join(t.TempDir(), "blocks"), data.Options{Keep: time.Hour, Now: clk.Now})
	contents := make([][]byte, 8)
	for i := range contents {
		contents[i] = pseudo(3*data.ChunkSize+i, uint64(200+i))
		if _, err := s.AddReader(ctx, bytes.NewReader(contents[i])); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Hour) // all of it garbage now
	stop := make(chan struct{})
	gcDone := make(chan error)
	go func() {
		for {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			if _, err := s.GC(ctx); err != nil {
				gcDone <- err
				return
			}
		}
	}()
	var wg sync.WaitGroup
	roots := make([]cid.Cid, len(contents))
	errs := make([]error, len(contents))
	for i := range contents {
		wg.Go(func() {
			roots[i], errs[i] = s.AddReader(ctx, bytes.NewReader(contents[i]))
		})
	}
	wg.Wait()
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	for i, r := range roots {
		if errs[i] != nil || !whole(s, r) {
			t.Fatalf("add %d: %v, whole %v", i, errs[i], whole(s, r))
		}
	}
}
