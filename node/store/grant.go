package store

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/store/storepb"
	"github.com/cuivre/cuivre/protocol"
)

// Grant is a slice grant (SPEC 6.7), as the site that made it or the
// retailer that holds it keeps it: the signed terms a slice rests on, and
// what ended it sooner.
type Grant struct {
	ID       string // grant_id, 16 bytes
	Envelope []byte // the sealed SliceGrant, as signed
	// Made says this node is the grant's site; else it is its grantee.
	Made bool
	// Tariff is the sealed tariff envelope the grant was asked at, as the
	// retailer read it (a site keeps its own tariffs).
	Tariff []byte
	// Withdrawal is the sealed SliceWithdrawal ending the slice sooner, if
	// any.
	Withdrawal []byte
	// WithdrawalRefused says, on the grantee's side, that Withdrawal gave
	// less notice than the grant's: refused, and kept as proof.
	WithdrawalRefused bool
	// OffTerms says, on the grantee's side, that the grant failed the terms
	// check: refused, and kept as proof of a grant off the published terms.
	OffTerms bool
	// Release is the sealed SliceRelease its grantee gave the slice back
	// with, ending it sooner, if any.
	Release []byte
}

// PutGrant stores a grant, synced when the transaction commits (a site
// answers a grant only once it is stored, SPEC 6.7). Storing the same
// envelope again updates what may change of it, its withdrawal and release; another
// envelope under a stored ID is CODE_REPLAYED.
func (tx *Tx) PutGrant(g Grant) error {
	if len(g.ID) != protocol.GrantIDSize {
		return fmt.Errorf("put grant: %w", protocol.Errorf(protocol.CodeMalformed, "grant ID is %d bytes, want %d", len(g.ID), protocol.GrantIDSize))
	}
	if len(g.Envelope) == 0 {
		return fmt.Errorf("put grant %x: no grant envelope", g.ID)
	}
	b := tx.bucket(bucketGrants)
	if v := b.Get([]byte(g.ID)); v != nil {
		old, err := decodeGrant([]byte(g.ID), v)
		if err != nil {
			return err
		}
		if !bytes.Equal(old.Envelope, g.Envelope) || old.Made != g.Made {
			return fmt.Errorf("put grant: %w", protocol.Errorf(protocol.CodeReplayed, "grant %x is stored with other terms", g.ID))
		}
	}
	v, err := proto.Marshal(&storepb.Grant{Grant: g.Envelope, Made: g.Made, Tariff: g.Tariff, Withdrawal: g.Withdrawal,
		WithdrawalRefused: g.WithdrawalRefused, OffTerms: g.OffTerms, Release: g.Release})
	if err != nil {
		return fmt.Errorf("put grant %x: encode: %w", g.ID, err)
	}
	if err := b.Put([]byte(g.ID), v); err != nil {
		return fmt.Errorf("put grant %x: %w", g.ID, err)
	}
	return nil
}

// Grant returns the grant with this ID, or ErrNotFound.
func (tx *Tx) Grant(id string) (Grant, error) {
	v := tx.bucket(bucketGrants).Get([]byte(id))
	if v == nil {
		return Grant{}, fmt.Errorf("grant %x: %w", id, ErrNotFound)
	}
	return decodeGrant([]byte(id), v)
}

// Grants calls fn with every grant, in ID order, until fn fails.
func (tx *Tx) Grants(fn func(Grant) error) error {
	return tx.bucket(bucketGrants).ForEach(func(k, v []byte) error {
		g, err := decodeGrant(k, v)
		if err != nil {
			return err
		}
		return fn(g)
	})
}

func decodeGrant(k, v []byte) (Grant, error) {
	var m storepb.Grant
	if err := proto.Unmarshal(v, &m); err != nil {
		return Grant{}, fmt.Errorf("grant %x: decode: %w", k, err)
	}
	return Grant{ID: string(k), Envelope: orNil(m.Grant), Made: m.Made, Tariff: orNil(m.Tariff), Withdrawal: orNil(m.Withdrawal),
		WithdrawalRefused: m.WithdrawalRefused, OffTerms: m.OffTerms, Release: orNil(m.Release)}, nil
}

// PutGrant is Tx.PutGrant in a transaction of its own, synced before it
// returns.
func (s *Store) PutGrant(g Grant) error {
	return s.Update(func(tx *Tx) error { return tx.PutGrant(g) })
}

// Grant is Tx.Grant in a transaction of its own.
func (s *Store) Grant(id string) (g Grant, err error) {
	err = s.View(func(tx *Tx) error { g, err = tx.Grant(id); return err })
	return g, err
}

// Grants lists every grant, in ID order.
func (s *Store) Grants() (out []Grant, err error) {
	err = s.View(func(tx *Tx) error {
		return tx.Grants(func(g Grant) error { out = append(out, g); return nil })
	})
	return out, err
}
