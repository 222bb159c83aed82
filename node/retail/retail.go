// Package retail runs a retailer's leases on the site of its slices (SPEC
// 6.7): its customers lease from the retailer as from any provider, and
// the retailer's provider, instead of running the job itself, leases it on
// its slice at the site, the customer's signed job carried as it is and the
// epoch kept, serves the site the module and inputs it fetched from the
// customer, streams the site's logs back as they come, and takes the
// output into its own store for the customer. The site's receipt, which
// bills nothing (the slice is paid whole), is countersigned here.
package retail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/conv"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/provider"
	"github.com/cuivre/cuivre/node/requester"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/protocol/wire"
	"github.com/cuivre/cuivre/scheduler"
)

// Slice is the slice a lease runs on: its site and its sealed grant.
type Slice struct {
	Site   string // binary peer ID
	Grant  []byte
	Tariff []byte // the sealed tariff the grant names, as the retailer read it
}

// Config configures a Runner.
type Config struct {
	Key       crypto.PrivKey
	Transport transport.Transport
	Store     *store.Store // keeps the site's receipts, countersigned or not: the evidence of what runs on a slice cost
	Data      *data.Store  // where outputs are taken into
	Blocks    *data.Server // serves the site the job's inputs
	// Slice returns the slice a lease of these resources runs on now, or
	// an error if the retailer holds none.
	Slice func(r scheduler.Resources) (Slice, error)
	Clock clock.Clock
	Log   *slog.Logger
}

// Runner is a provider.Runner that runs leases on slices.
type Runner struct{ cfg Config }

// New returns a Runner.
func New(c Config) (*Runner, error) {
	if c.Key == nil || c.Transport == nil || c.Store == nil || c.Data == nil || c.Blocks == nil || c.Slice == nil {
		return nil, errors.New("retail: a key, a transport, a store, a data store, a block server and slices are required")
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return &Runner{cfg: c}, nil
}

// Backing is the slice a lease of r runs on (provider.Runner).
func (rn *Runner) Backing(r scheduler.Resources) (site string, grant, tariff []byte, err error) {
	sl, err := rn.cfg.Slice(r)
	return sl.Site, sl.Grant, sl.Tariff, err
}

// Run leases the job of l on the slice at its site and follows it there
// (provider.Runner).
func (rn *Runner) Run(ctx context.Context, l store.Lease, spec exec.RunSpec) (provider.RemoteResult, error) {
	out := provider.RemoteResult{Result: exec.Result{ExitCode: -1}}
	sl, err := rn.cfg.Slice(l.Reserved)
	if err != nil {
		return out, err
	}
	now := rn.cfg.Clock.Now
	nonce := func() []byte {
		b := make([]byte, protocol.NonceSize)
		rand.Read(b)
		return b
	}
	offer, _, err := requester.RequestOffer(ctx, rn.cfg.Transport, sl.Site, scheduler.Request{
		Nonce: string(nonce()), JobCID: l.JobCID, Executor: protocol.DefaultEngine, Resources: l.Reserved, Timeout: l.Timeout,
		ExpiresAt: now().Add(5 * time.Second), Grant: string(sl.Grant)}, now)
	if err != nil {
		return out, fmt.Errorf("the site of the slice: %w", err)
	}
	job, err := record.OpenJob(l.Job)
	if err != nil {
		return out, err
	}
	for _, in := range job.Job.GetTask().GetInputs() {
		if root, err := wire.ParseCID(in.Cid); err == nil {
			rn.cfg.Blocks.Grant(sl.Site, root) // the site fetches them from here
		}
	}
	id := protocol.SiteLeaseID([]byte(l.ID))
	env, err := record.Seal(rn.cfg.Key, &pb.Lease{
		LeaseId: id, Provider: []byte(sl.Site), Requester: []byte(rn.cfg.Transport.Self()), OfferNonce: []byte(offer.Nonce),
		JobCid: []byte(l.JobCID), Epoch: l.Epoch, Nonce: nonce(), ExpiresAtMs: protocol.UnixMs(now().Add(time.Minute)),
		Job: l.Job, HeartbeatMs: 500, Instance: l.Instance,
	})
	if err != nil {
		return out, err
	}
	if err := requester.SendLease(ctx, rn.cfg.Transport, sl.Site, env); err != nil {
		return out, fmt.Errorf("lease at the site of the slice: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { // cancelled here: cancel there
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		requester.CancelLease(cctx, rn.cfg.Transport, sl.Site, string(id), l.Epoch)
	})
	defer stop()
	res, err := requester.Watch(context.WithoutCancel(ctx), rn.cfg.Transport, sl.Site, &pb.WatchRequest{LeaseId: id, Epoch: l.Epoch}, func(ev *pb.WatchEvent) {
		switch {
		case ev.GetLog().GetStream() == pb.LogStream_LOG_STREAM_STDOUT:
			spec.Stdout.Write(ev.GetLog().GetData())
		case ev.GetLog().GetStream() == pb.LogStream_LOG_STREAM_STDERR:
			spec.Stderr.Write(ev.GetLog().GetData())
		case ev.GetStatus().GetState() == pb.LeaseState_LEASE_STATE_RUNNING && out.Started.IsZero():
			out.Started = now()
		}
	})
	if err != nil {
		return out, fmt.Errorf("the run at the site of the slice: %w", err)
	}
	if rn.countersign(sl.Site, string(id), l.Epoch, res.Receipt) {
		out.SiteReceipt = conv.ReceiptHash(res.Receipt)
	}
	out.ExitCode = res.ExitCode
	out.Duration = now().Sub(out.Started)
	switch {
	case res.State == pb.LeaseState_LEASE_STATE_CANCELLED:
		out.Reason = exec.ReasonCanceled
		return out, nil
	case res.Error != nil:
		return out, protocol.FromPB(res.Error)
	case res.State == pb.LeaseState_LEASE_STATE_FAILED && res.ExitCode == 0:
		out.Reason, out.Detail = exec.ReasonTrap, "the job failed at the site"
		return out, nil
	}
	out.Reason = exec.ReasonExit
	if root, err := cid.Cast(res.OutputCid); err == nil && len(res.OutputCid) > 0 {
		if err := rn.cfg.Data.Fetch(ctx, rn.cfg.Transport, []string{sl.Site}, root, data.FetchOptions{Clock: rn.cfg.Clock}); err != nil {
			return out, fmt.Errorf("the output at the site of the slice: %w", err)
		}
		out.Output, out.OutputSize = root, res.OutputSize
	}
	return out, nil
}

// countersign hands the site its receipt of the lease id, epoch back
// countersigned, and says whether it did: the run is metered there, and
// billed nothing, the slice being paid whole. A receipt that bills the run
// is not countersigned. Either is kept in the store, the evidence an
// auditor of the site reads (SPEC 6.7).
func (rn *Runner) countersign(site, id string, epoch uint64, env []byte) bool {
	if env == nil {
		return false
	}
	r, err := record.OpenReceipt(env)
	if err == nil && (string(r.Provider) != site || string(r.Requester) != rn.cfg.Transport.Self() || r.LeaseId == nil || string(r.LeaseId) != id || r.Epoch != epoch) {
		err = protocol.Errorf(pb.Code_CODE_MALFORMED, "not the site's receipt of this run")
	}
	if err != nil {
		rn.cfg.Log.Warn("the site's receipt is not kept", "err", err)
		return false
	}
	if !r.OnSlice || r.GetAmount().GetNanos() != 0 {
		rn.cfg.Log.Warn("the site billed a run on a slice paid whole: its receipt is kept, not countersigned", "lease", fmt.Sprintf("%x", id),
			"amount", protocol.FormatAmount(r.GetAmount()))
		if err := rn.cfg.Store.PutReceipt(store.Receipt{LeaseID: id, Epoch: epoch, Envelope: env}); err != nil {
			rn.cfg.Log.Warn("keep the site's receipt", "err", err)
		}
		return false
	}
	cs, err := record.Seal(rn.cfg.Key, &pb.Countersignature{ReceiptHash: conv.ReceiptHash(env), Requester: []byte(rn.cfg.Transport.Self()), SignedAtMs: protocol.UnixMs(rn.cfg.Clock.Now())})
	if err != nil {
		return false
	}
	if err := rn.cfg.Store.PutReceipt(store.Receipt{LeaseID: id, Epoch: epoch, Envelope: env, Countersignature: cs, Delivered: true}); err != nil {
		rn.cfg.Log.Warn("keep the site's receipt", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := requester.SubmitReceipt(ctx, rn.cfg.Transport, site, env, cs); err != nil {
		rn.cfg.Log.Info("the site did not take its receipt countersigned", "err", err)
	}
	return true
}
