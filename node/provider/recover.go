package provider

import (
	"fmt"

	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// recover reloads the replay cache and ends the leases that died with the
// previous process: a run cannot be resumed, so each live lease is recorded
// FAILED (CODE_RUN_LOST, "provider restarted"), which a requester watching it
// again is told, and then places the run again under a new epoch; none of them is put back in the market, so capacity is
// counted once (SPEC 9).
func (p *Provider) recover() error {
	if p.store == nil {
		return nil
	}
	now := p.clock.Now()
	nonces, err := p.store.Nonces(now)
	if err != nil {
		return fmt.Errorf("reload nonces: %w", err)
	}
	for _, x := range nonces {
		p.replay.Add(x.Value, x.ExpiresAtMs)
	}
	live, err := p.store.LiveLeases()
	if err != nil {
		return fmt.Errorf("reload leases: %w", err)
	}
	for _, l := range live {
		// The final Status's seq is the restart's time: above every seq
		// the dead process gave out, which are its clock's times (or a
		// few more within a millisecond), as long as the clock went
		// forward (SPEC 6.3).
		out := &store.Outcome{ExitCode: -1, Error: protocol.Errorf(pb.Code_CODE_RUN_LOST, "provider restarted while the lease was %s", l.State),
			FinalSeq: protocol.UnixMs(now)}
		err := p.store.Update(func(tx *store.Tx) error {
			// A run's intermediate states are written with its final one,
			// so a lease that died running may read accepted: it had
			// started fetching at least, which may fail (SPEC 9).
			if l.State == pb.LeaseState_LEASE_STATE_ACCEPTED {
				if _, err := tx.MarkLeaseState(l.ID, l.Epoch, pb.LeaseState_LEASE_STATE_FETCHING, now, nil); err != nil {
					return err
				}
			}
			_, err := tx.MarkLeaseState(l.ID, l.Epoch, pb.LeaseState_LEASE_STATE_FAILED, now, out)
			return err
		})
		if err != nil {
			return fmt.Errorf("end lease %x: %w", l.ID, err)
		}
		p.log.Warn("lease died with the previous process", "lease", fmt.Sprintf("%x", l.ID), "epoch", l.Epoch, "was", l.State)
	}
	return nil
}
