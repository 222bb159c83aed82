package store

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/cuivre/cuivre/protocol"
)

// benchLease returns lease n: a typical record (a 1 KiB lease envelope, a
// 500-byte job), with an ID of its own. The bytes are made once, outside the
// timed loop.
func benchLease(tmpl Lease, n uint64) Lease {
	id := binary.BigEndian.AppendUint64(make([]byte, 8, protocol.LeaseIDSize), n)
	tmpl.ID = string(id)
	return tmpl
}

func benchTemplate() Lease {
	l := testLease(1, 1)
	l.Envelope = fill("bench lease", 1024)
	l.Job = fill("bench job", 512)
	return l
}

// BenchmarkPutLease is one lease committed and synced: the floor of a
// provider's lease answer (SPEC 6.2 step 10). bbolt syncs twice per commit
// (the data pages, then the meta page), so the figure is mostly the disk's
// fsync latency.
func BenchmarkPutLease(b *testing.B) {
	s, _ := openTemp(b)
	tmpl := benchTemplate()
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		if err := s.PutLease(benchLease(tmpl, n)); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkPutLeaseParallel is PutLease from 4 x GOMAXPROCS goroutines, as
// concurrent lease handlers would call it. bbolt runs one writer at a time,
// so this shows the ceiling of commits per second, not a speed-up.
func BenchmarkPutLeaseParallel(b *testing.B) {
	s, _ := openTemp(b)
	tmpl := benchTemplate()
	b.ReportAllocs()
	b.SetParallelism(4)
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.PutLease(benchLease(tmpl, n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCommitLease is what the node does per lease: the lease and its
// nonce in one transaction, synced once.
func BenchmarkCommitLease(b *testing.B) {
	s, _ := openTemp(b)
	tmpl := benchTemplate()
	nonce := make([]byte, protocol.NonceSize)
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		binary.BigEndian.PutUint64(nonce, n)
		err := s.Update(func(tx *Tx) error {
			if err := tx.AddNonce(nonce, 1<<62); err != nil {
				return err
			}
			return tx.PutLease(benchLease(tmpl, n))
		})
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkLease reads one lease back from a store of 10,000.
func BenchmarkLease(b *testing.B) {
	s, _ := openTemp(b)
	tmpl := benchTemplate()
	const size = 10_000
	err := s.Update(func(tx *Tx) error {
		for n := range uint64(size) {
			if err := tx.PutLease(benchLease(tmpl, n)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, size)
	for n := range ids {
		ids[n] = benchLease(tmpl, uint64(n)).ID
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := s.Lease(ids[n%size], 1); err != nil {
			b.Fatal(err)
		}
		n++
	}
}
