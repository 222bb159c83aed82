package node

import (
	"errors"
	"fmt"

	"github.com/cuivre/cuivre/node/billing"
	"github.com/cuivre/cuivre/node/store"
)

// Billing builds the statement of the receipts in the node's store that
// ended within w: its earnings as a provider and its spend as a requester
// (billing.Build). The receipts and the jobs, whose slots keep the
// operators of the offers leased, are read in one snapshot, so a receipt
// settled meanwhile is in both or in neither.
func (n *Node) Billing(w billing.Window) (billing.Statement, error) {
	if n.opts.Store == nil {
		return billing.Statement{}, errors.New("this node keeps no store, so no receipts: run it with a data dir")
	}
	in := billing.Input{Self: string(n.ID())}
	err := n.opts.Store.View(func(tx *store.Tx) error {
		var err error
		if in.Receipts, err = tx.Receipts(); err != nil {
			return err
		}
		if in.Jobs, err = tx.Jobs(nil); err != nil {
			return err
		}
		return tx.Grants(func(g store.Grant) error { in.Grants = append(in.Grants, g); return nil })
	})
	if err != nil {
		return billing.Statement{}, fmt.Errorf("billing: read the store: %w", err)
	}
	return billing.Build(in, w), nil
}
