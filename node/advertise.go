package node

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// loadRepublish is how often at most a node republishes its capacity record
// because leases came or went. The record's free resources are a hint for
// auditors (SPEC 4.4), never a reason to place a job, so they may lag; the
// node's DHT traffic must not grow with the leases it takes.
const loadRepublish = 30 * time.Second

// advertise keeps the node's announcements fresh (SPEC 4.1): its facet keys as
// provider records and its capacity record, at start, then every third of the
// provider-record validity, and soon after what it sells changes (at most once
// per second). Leases coming and going only republish the capacity record, at
// most every loadRepublish. A draining node stops, so its records expire.
func (n *Node) advertise() {
	defer n.wg.Done()
	every := n.opts.ProvideValidity / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last time.Time
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	announce := func() {
		if n.draining.Load() {
			return
		}
		if n.RoutingTableSize() == 0 {
			// Alone so far: nobody to store records with. Look again soon.
			retry.Reset(time.Second)
			return
		}
		last = time.Now()
		ctx, cancel := context.WithTimeout(n.ctx, every)
		defer cancel()
		if err := n.Advertise(ctx); err != nil {
			n.log.Warn("advertise", "err", err)
		}
		if err := n.PublishCapacity(ctx); err != nil {
			n.log.Warn("publish capacity", "err", err)
		}
	}
	// Each wait is drawn between 3/4 and 5/4 of loadRepublish, so that nodes
	// that started, or got busy, together do not republish together.
	jittered := func() time.Duration { return loadRepublish*3/4 + rand.N(loadRepublish/2) }
	load := time.NewTimer(jittered())
	defer load.Stop()
	announce()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
			announce()
		case <-load.C:
			load.Reset(jittered())
			if n.loaded.Swap(false) && !n.draining.Load() && n.RoutingTableSize() > 0 {
				ctx, cancel := context.WithTimeout(n.ctx, loadRepublish)
				if err := n.PublishCapacity(ctx); err != nil {
					n.log.Warn("publish capacity", "err", err)
				}
				cancel()
			}
		case <-retry.C:
			announce()
		case <-n.changed:
			if wait := time.Second - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-n.ctx.Done():
					return
				}
			}
			announce()
		}
	}
}

// loadChanged marks the capacity record's free resources stale.
func (n *Node) loadChanged() { n.loaded.Store(true) }

// marketChanged wakes the advertiser without blocking: what the node sells
// (prices, labels, draining) changed.
func (n *Node) marketChanged() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// SetDraining stops or resumes offering: a draining node refuses offer
// requests with CODE_DRAINING and stops re-announcing itself, so requesters
// stop finding it once its records expire; running leases go on.
func (n *Node) SetDraining(on bool) {
	n.draining.Store(on)
	n.mu.Lock()
	n.market.SetDraining(on)
	n.mu.Unlock()
	if !on {
		n.marketChanged()
	}
}

// Start begins the node's background work: bootstrapping and advertising.
func (n *Node) Start(ctx context.Context) error {
	if err := n.Bootstrap(ctx); err != nil {
		return err
	}
	n.wg.Add(1)
	go n.advertise()
	return nil
}

// Reprice applies new prices and labels (an operator's reload): new offers use
// them, and the node re-announces itself under its new facet keys (the old
// ones expire).
func (n *Node) Reprice(p scheduler.PricePolicy, labels scheduler.Labels) error {
	n.mu.Lock()
	err := n.market.Reprice(p, labels)
	if err == nil {
		n.opts.Market.Pricing, n.opts.Market.Labels = p, labels
	}
	n.mu.Unlock()
	if err == nil {
		n.marketChanged()
	}
	return err
}
