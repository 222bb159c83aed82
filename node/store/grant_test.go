package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

func testGrant(i int, made bool) Grant {
	return Grant{ID: string(fill(fmt.Sprint("grant", i), protocol.GrantIDSize)), Envelope: fill(fmt.Sprint("envelope", i), 200),
		Made: made, Tariff: fill(fmt.Sprint("tariff", i), 150)}
}

func TestGrants(t *testing.T) {
	s, path := openTemp(t)
	a, b := testGrant(2, true), testGrant(1, false)
	for _, g := range []Grant{a, b} {
		if err := s.PutGrant(g); err != nil {
			t.Fatal(err)
		}
	}
	// The same grant again takes its withdrawal; other terms under its ID
	// are a replay.
	a.Withdrawal, a.Release = fill("withdrawal", 90), fill("release", 90)
	if err := s.PutGrant(a); err != nil {
		t.Fatal(err)
	}
	forged := a
	forged.Envelope = fill("forged", 200)
	wantCode(t, s.PutGrant(forged), pb.Code_CODE_REPLAYED)
	wantCode(t, s.PutGrant(Grant{ID: "short", Envelope: a.Envelope}), pb.Code_CODE_MALFORMED)

	s = reopen(t, s, path)
	got, err := s.Grants()
	if err != nil {
		t.Fatal(err)
	}
	want := []Grant{a, b}
	if a.ID > b.ID {
		want = []Grant{b, a}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Grants (-want +got):\n%s", diff)
	}
	if g, err := s.Grant(a.ID); err != nil || g.Withdrawal == nil {
		t.Errorf("Grant(a) = %+v, %v", g, err)
	}
	if _, err := s.Grant(testGrant(3, true).ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Grant of nothing stored: %v", err)
	}
}

// TestMigrateSchema1: a store written at schema 1, before grants, opens at
// schema 2 with its leases and a bucket for grants.
func TestMigrateSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cuivre.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if string(name) == string(bucketGrants) {
				continue
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a schema 1 store: %v", err)
	}
	defer s.Close()
	if err := s.PutLease(testLease(1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGrant(testGrant(1, true)); err != nil {
		t.Fatalf("a migrated store does not keep grants: %v", err)
	}
	s.View(func(tx *Tx) error {
		if v := binary.BigEndian.Uint32(tx.tx.Bucket(bucketMeta).Get(keySchema)); v != SchemaVersion {
			t.Errorf("schema version %d after migration, want %d", v, SchemaVersion)
		}
		return nil
	})
}
