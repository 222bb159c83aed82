package node

import (
	"fmt"

	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// recover reloads the replay cache and ends the leases that died with the
// previous process: a run cannot be resumed, so each live lease is recorded
// FAILED (CODE_INTERNAL, "provider restarted"), which a requester watching it
// again is told; none of them is put back in the market, so capacity is
// counted once (SPEC 9).
func (n *Node) recover() error {
	if n.store == nil {
		return nil
	}
	now := n.now()
	nonces, err := n.store.Nonces(now)
	if err != nil {
		return fmt.Errorf("reload nonces: %w", err)
	}
	for _, x := range nonces {
		n.replay.Add(x.Value, x.ExpiresAtMs)
	}
	live, err := n.store.LiveLeases()
	if err != nil {
		return fmt.Errorf("reload leases: %w", err)
	}
	for _, l := range live {
		out := &store.Outcome{ExitCode: -1, Error: protocol.Errorf(pb.Code_CODE_INTERNAL, "provider restarted while the lease was %s", l.State)}
		if _, err := n.store.MarkLeaseState(l.ID, l.Epoch, pb.LeaseState_LEASE_STATE_FAILED, now, out); err != nil {
			return fmt.Errorf("end lease %x: %w", l.ID, err)
		}
		n.log.Warn("lease died with the previous process", "lease", fmt.Sprintf("%x", l.ID), "epoch", l.Epoch, "was", l.State)
	}
	return nil
}
