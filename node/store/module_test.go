package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

func TestModules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cuivre.db")
	clock := at(0)
	opts := Options{MaxModuleSize: 1 << 20, Now: func() time.Time { return clock }}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()

	mod := fill("module", 300<<10)
	c := wire.SumCID(mod)
	if ok, err := s.HasModule(c); ok || err != nil {
		t.Fatalf("HasModule before Put: %t, %v", ok, err)
	}
	if _, err := s.Module(c); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Module before Put: %v, want ErrNotFound", err)
	}
	wantCode(t, s.PutModule(c, append(fill("module", 300<<10-1), 0)), pb.Code_CODE_MODULE_MISMATCH)
	big := fill("big", 1<<20+1)
	wantCode(t, s.PutModule(wire.SumCID(big), big), protocol.CodeTooLarge)
	if err := s.PutModule(cid.Undef, nil); err == nil {
		t.Error("stored an undefined CID")
	}

	if err := s.PutModule(c, mod); err != nil {
		t.Fatal(err)
	}
	if err := s.PutModule(c, mod); err != nil {
		t.Fatalf("the same module again: %v", err)
	}
	small := []byte("\x00asm\x01\x00\x00\x00")
	cs := wire.SumCID(small)
	if err := s.PutModule(cs, small); err != nil {
		t.Fatal(err)
	}

	// Persisted across a restart; no temporary file left; LastUsed moves at
	// most once a minute.
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "modules", tmpPrefix+"left-by-a-crash"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, opts); err != nil {
		t.Fatal(err)
	}
	clock = at(30_000)
	got, err := s.Module(c)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(got, mod) {
		t.Fatal("Module returned other bytes")
	}
	clock = at(90_000)
	if _, err := s.Module(cs); err != nil {
		t.Fatal(err)
	}
	infos, err := s.Modules()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ModuleInfo{
		c.KeyString():  {CID: c, Size: int64(len(mod)), Added: at(0), LastUsed: at(0)},
		cs.KeyString(): {CID: cs, Size: int64(len(small)), Added: at(0), LastUsed: at(90_000)},
	}
	if len(infos) != len(want) {
		t.Fatalf("%d modules, want %d", len(infos), len(want))
	}
	for _, m := range infos {
		if diff := cmp.Diff(want[m.CID.KeyString()], m, cmp.Comparer(func(a, b cid.Cid) bool { return a.Equals(b) })); diff != "" {
			t.Errorf("module %s (-want +got):\n%s", m.CID, diff)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "modules"))
	if len(entries) != 2 {
		t.Errorf("module dir holds %d files, want the 2 modules", len(entries))
	}

	// A file damaged on disk reads as not found, and is dropped so it is
	// fetched again.
	if err := os.WriteFile(s.modulePath(c), fill("rot", len(mod)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Module(c); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Module of a damaged file: %v, want ErrNotFound", err)
	}
	if ok, _ := s.HasModule(c); ok {
		t.Fatal("a damaged module is still held")
	}
	if err := s.PutModule(c, mod); err != nil {
		t.Fatal(err)
	}
	// A file gone from disk too.
	if err := os.Remove(s.modulePath(cs)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasModule(cs); ok {
		t.Fatal("HasModule true for a module whose file is gone")
	}
	if _, err := s.Module(cs); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Module of a missing file: %v, want ErrNotFound", err)
	}

	if err := s.DeleteModule(c); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasModule(c); ok {
		t.Fatal("HasModule after DeleteModule")
	}
	if _, err := os.Stat(s.modulePath(c)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file outlived DeleteModule: %v", err)
	}
	if infos, _ := s.Modules(); len(infos) != 0 {
		t.Fatalf("%d modules indexed after deleting all", len(infos))
	}
}
