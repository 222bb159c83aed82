package record_test

import (
	"testing"
	"time"

	"github.com/cuivre/cuivre/internal/fuzzguard"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
)

// Native fuzz targets for opening records, one per parser as quic-go keeps
// them, seeded with the test vectors sealed by their signers. `make test` runs their seed
// corpora; `make fuzz` runs each for FUZZTIME.

// sealedSeeds returns every vector record sealed by its expected signer.
func sealedSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, m := range vector.Messages(f) {
		k := record.KindOf(m.Msg)
		if k == 0 {
			continue
		}
		key, _ := vector.Signer(f, k)
		b, err := record.Seal(key, m.Msg)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func fuzzOpen(f *testing.F, open func([]byte) error) {
	for _, b := range sealedSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		defer fuzzguard.Start()()
		err := open(in)
		if err != nil && protocol.CodeOf(err) == pb.Code_CODE_INTERNAL {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

var fuzzNow = vector.Time.Add(time.Second)

func FuzzOpenOffer(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := record.OpenOffer(b, fuzzNow); return err })
}

func FuzzOpenLease(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := record.OpenLease(b, fuzzNow); return err })
}

func FuzzOpenReceipt(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := record.OpenReceipt(b); return err })
}

func FuzzOpenCountersignature(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := record.OpenCountersignature(b); return err })
}

func FuzzOpenCapacity(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := record.OpenCapacity(b, fuzzNow); return err })
}

func FuzzOpenTariff(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := record.OpenTariff(b, fuzzNow); return err })
}

func FuzzOpenGrant(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := record.OpenGrant(b, fuzzNow); return err })
}

func FuzzOpenWithdrawal(f *testing.F) {
	fuzzOpen(f, func(b []byte) error { _, err := record.OpenWithdrawal(b); return err })
}

// FuzzOpenJob also checks that an accepted job's CID is the CID of its
// canonical encoding, whatever bytes it arrived as.
func FuzzOpenJob(f *testing.F) {
	fuzzOpen(f, func(b []byte) error {
		j, err := record.OpenJob(b)
		if err != nil {
			return err
		}
		c, cerr := wire.JobCID(j.Job)
		if cerr != nil || !c.Equals(j.CID) {
			panic("accepted job's CID is not its canonical CID")
		}
		return nil
	})
}

// FuzzSealOpen signs arbitrary payload bytes as a job record with a valid
// signature, so the fuzzer reaches the checks behind the signature.
func FuzzSealOpen(f *testing.F) {
	key, _ := vector.Key(f, vector.RequesterSeed)
	for _, m := range vector.Messages(f) {
		b, _ := protocol.Canonical(m.Msg)
		sel := byte(0)
		if k := record.KindOf(m.Msg); k != 0 {
			sel = byte(k - 1) // a record is sealed as its own kind
		}
		f.Add(sel, b)
	}
	f.Fuzz(func(t *testing.T, sel byte, payload []byte) {
		defer fuzzguard.Start()()
		kinds := record.Kinds()
		k := kinds[int(sel)%len(kinds)]
		env, err := record.SealBytes(key, k, payload)
		if err != nil {
			t.Fatal(err)
		}
		now := fuzzNow
		var errs []error
		_, e := record.OpenOffer(env, now)
		errs = append(errs, e)
		_, e = record.OpenLease(env, now)
		errs = append(errs, e)
		_, e = record.OpenReceipt(env)
		errs = append(errs, e)
		_, e = record.OpenCountersignature(env)
		errs = append(errs, e)
		_, e = record.OpenCapacity(env, now)
		errs = append(errs, e)
		_, e = record.OpenJob(env)
		errs = append(errs, e)
		_, e = record.OpenTariff(env, now)
		errs = append(errs, e)
		_, e = record.OpenGrant(env, now)
		errs = append(errs, e)
		_, e = record.OpenWithdrawal(env)
		errs = append(errs, e)
		for _, e := range errs {
			if e != nil && protocol.CodeOf(e) == pb.Code_CODE_INTERNAL {
				t.Fatalf("untyped error: %v", e)
			}
		}
	})
}
