package provider

import (
	"time"

	"github.com/cuivre/cuivre/scheduler"
)

// Grant holds a slice granted to a retailer in the market (SPEC 6.7): a
// ceiling on the grantee's use, and capacity the node's own retail keeps
// off; see scheduler.Market.Grant.
func (p *Provider) Grant(s scheduler.Slice) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.market.Grant(p.clock.Now(), s)
}

// Withdraw ends a slice sooner, no sooner than its notice from now; see
// scheduler.Market.Withdraw.
func (p *Provider) Withdraw(id string, end time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.market.Withdraw(p.clock.Now(), id, end)
}

// Slices returns the slices held now: granted and not ended.
func (p *Provider) Slices() []scheduler.Slice {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.market.Expire(p.clock.Now())
	return p.market.Slices()
}

// Revoke drops a slice whose grant was never answered; see
// scheduler.Market.Revoke.
func (p *Provider) Revoke(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.market.Revoke(id)
}

// Resize changes what the provider sells: a retailer's market follows its
// slices; see scheduler.Market.Resize.
func (p *Provider) Resize(c scheduler.Resources) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.market.Resize(c)
	p.cfg.Market.Capacity = c
}
