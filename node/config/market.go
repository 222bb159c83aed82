package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/scheduler"
)

// Market returns the scheduler's MarketConfig for this node: provider is its
// binary peer ID (string(peer.ID)), detected what Detect found (ignored when
// capacity.auto is false).
//
// Capacity is, in each dimension, the machine (the override if set, else what
// was detected) minus the reserve, times offered_percent, rounded down;
// scratch has no reserve. With auto on, an override above what was detected
// is an error, so a typo cannot oversell the machine.
//
// Labels are region, jurisdiction (lower-cased), operator, the first of
// certifications as "certification" (the protocol carries one value per key,
// so the rest are not announced) and the extra labels; empty ones are left
// out. Executors are the default, ["wasm"]. Prices are converted from per hour
// to per second by truncation (see Pricing). The limits on what one peer's
// offers may hold come from Limits; OfferTTL and MaxReservations are left to
// the scheduler's defaults, and Seed is filled from crypto/rand so offer
// nonces cannot be guessed.
//
// The returned config is valid (MarketConfig.Validate) and shares nothing with
// c; the caller owns it.
func (c Config) Market(provider string, detected scheduler.Resources) (scheduler.MarketConfig, error) {
	if err := c.Validate(); err != nil {
		return scheduler.MarketConfig{}, err
	}
	capacity, err := c.Capacity.offered(detected)
	if err != nil {
		return scheduler.MarketConfig{}, err
	}
	mc := scheduler.MarketConfig{
		Provider:  provider,
		Capacity:  capacity,
		Labels:    c.Labels.scheduler(),
		Executors: []string{protocol.DefaultEngine},
		Pricing:   c.Pricing.policy(),

		OfferGrace:       time.Duration(c.Limits.OfferGrace),
		MaxOffersPerPeer: int(c.Limits.OffersPerPeer),
		MaxHeldPermille:  int(c.Limits.OfferSharePercent) * 10,
		StandingExpired:  int(c.Limits.StandingExpired),
	}
	if c.Limits.StandingExpired == 0 {
		mc.StandingExpired = -1 // never refuse
	}
	rand.Read(mc.Seed[:]) // never fails (crypto/rand, Go 1.24+)
	if err := mc.Validate(); err != nil {
		return scheduler.MarketConfig{}, err
	}
	return mc, nil
}

// offered returns what the node sells, from the machine it detected.
func (c Capacity) offered(detected scheduler.Resources) (scheduler.Resources, error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	machine := scheduler.Resources{}
	if c.Auto {
		machine = detected
	}
	if c.CPU != nil {
		if c.Auto && c.CPU.Millis() > detected.CPUMillis {
			fail("capacity.cpu", "%s is more than the %s detected: lower it, or set capacity.auto to false to declare the machine yourself", *c.CPU, CPU(detected.CPUMillis))
		}
		machine.CPUMillis = c.CPU.Millis()
	}
	if c.Memory != nil {
		if c.Auto && uint64(*c.Memory) > detected.MemoryBytes {
			fail("capacity.memory", "%s is more than the %s detected: lower it, or set capacity.auto to false to declare the machine yourself", *c.Memory, Bytes(detected.MemoryBytes))
		}
		machine.MemoryBytes = uint64(*c.Memory)
	}
	if c.Scratch != nil {
		if c.Auto && uint64(*c.Scratch) > detected.ScratchBytes {
			fail("capacity.scratch", "%s is more than the %s of free disk detected: lower it, or free some disk", *c.Scratch, Bytes(detected.ScratchBytes))
		}
		machine.ScratchBytes = uint64(*c.Scratch)
	}
	switch {
	case machine.CPUMillis == 0:
		fail("capacity.cpu", "none detected: give the machine's CPUs, such as \"4\"")
	case c.Reserve.CPU.Millis() >= machine.CPUMillis:
		fail("capacity.reserve.cpu", "%s keeps all of the machine's %s CPUs: lower it", c.Reserve.CPU, CPU(machine.CPUMillis))
	}
	switch {
	case machine.MemoryBytes == 0:
		fail("capacity.memory", "none detected: give the machine's memory, such as \"8Gi\"")
	case uint64(c.Reserve.Memory) >= machine.MemoryBytes:
		fail("capacity.reserve.memory", "%s keeps all of the machine's %s of memory: lower it", c.Reserve.Memory, Bytes(machine.MemoryBytes))
	}
	if len(errs) > 0 {
		return scheduler.Resources{}, errors.Join(errs...)
	}
	left := machine.Sub(scheduler.Resources{CPUMillis: c.Reserve.CPU.Millis(), MemoryBytes: uint64(c.Reserve.Memory)})
	out := scheduler.Resources{
		CPUMillis:    percent(left.CPUMillis, c.OfferedPercent),
		MemoryBytes:  percent(left.MemoryBytes, c.OfferedPercent),
		ScratchBytes: percent(left.ScratchBytes, c.OfferedPercent),
	}
	if out.CPUMillis == 0 || out.MemoryBytes == 0 {
		return scheduler.Resources{}, &FieldError{Path: "capacity.offered_percent", Msg: fmt.Sprintf("%d%% of what the reserve leaves (%s CPUs, %s) rounds down to nothing: raise it or lower the reserve",
			c.OfferedPercent, CPU(left.CPUMillis), Bytes(left.MemoryBytes))}
	}
	return out, nil
}

// percent returns floor(x * p / 100) without overflow, for p <= 100.
func percent(x uint64, p uint32) uint64 {
	hi, lo := bits.Mul64(x, uint64(p))
	q, _ := bits.Div64(hi, lo, 100)
	return q
}

// policy returns the scheduler's price policy: per-hour prices truncated to
// nano-units per second (protocol.PerSecond), the load factor from percent to
// permille.
func (p Pricing) policy() scheduler.PricePolicy {
	return scheduler.PricePolicy{
		Base: scheduler.Price{
			Currency:                p.Currency,
			CPUNanosPerSecond:       protocol.PerSecond(uint64(p.CPUPerHour)),
			MemoryNanosPerGiBSecond: protocol.PerSecond(uint64(p.MemoryGiBPerHour)),
			EgressNanosPerGiB:       uint64(p.EgressPerGiB),
		},
		LoadFactorPermille: min(p.LoadFactorPercent, MaxLoadFactorPercent) * 10,
	}
}

// scheduler returns the labels as the scheduler's sorted label set.
func (l Labels) scheduler() scheduler.Labels {
	var kv []scheduler.Label
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, scheduler.Label{Key: k, Value: v})
		}
	}
	add("region", l.Region)
	add("jurisdiction", strings.ToLower(l.Jurisdiction))
	add("operator", l.Operator)
	if len(l.Certifications) > 0 {
		add("certification", l.Certifications[0])
	}
	for k, v := range l.Extra {
		add(k, v)
	}
	return scheduler.NewLabels(kv...)
}

// TariffTerms are the terms of a site's wholesale tariff (SPEC 4.5), as
// the node publishes them.
type TariffTerms struct {
	Price scheduler.Price // per resource-second, in pricing.currency
	// RetailCost is the site's own cost of selling retail, beyond the
	// slice, which its own prices cover (SPEC 6.7, audit).
	RetailCost scheduler.Price
	MinSlice   scheduler.Resources // the least a slice may hold
	MinPeriod  time.Duration       // the shortest slice
	Notice     time.Duration       // before a withdrawal takes effect
	Capacity   scheduler.Resources // the most granted at once: share_percent of sold
	// Labels are the site's attributes a retailer inherits on its slices:
	// its labels but the operator, which is the retailer's own.
	Labels scheduler.Labels
	// RetailerJurisdictions is the rule: the jurisdictions, lower case,
	// sorted, that retailers may declare; none: any.
	RetailerJurisdictions []string
}

// Tariff returns the terms of the node's wholesale tariff, sold being the
// capacity its market sells. The config must be valid (Validate).
func (c Config) Tariff(sold scheduler.Resources) TariffTerms {
	w := c.Wholesale
	share := func(x uint64) uint64 { // x * share / 100, rounded down, without overflow
		hi, lo := bits.Mul64(x, uint64(w.SharePercent))
		q, _ := bits.Div64(hi, lo, 100)
		return q
	}
	var labels []scheduler.Label
	for _, l := range c.Labels.scheduler() {
		if l.Key != scheduler.LabelOperator {
			labels = append(labels, l)
		}
	}
	return TariffTerms{
		Price: scheduler.Price{Currency: c.Pricing.Currency, CPUNanosPerSecond: protocol.PerSecond(uint64(w.CPUPerHour)),
			MemoryNanosPerGiBSecond: protocol.PerSecond(uint64(w.MemoryGiBPerHour)), EgressNanosPerGiB: uint64(w.EgressPerGiB)},
		RetailCost: scheduler.Price{Currency: c.Pricing.Currency, CPUNanosPerSecond: protocol.PerSecond(uint64(w.RetailCostCPUPerHour)),
			MemoryNanosPerGiBSecond: protocol.PerSecond(uint64(w.RetailCostMemoryGiBPerHour))},
		MinSlice:              scheduler.Resources{CPUMillis: w.MinCPU.Millis(), MemoryBytes: uint64(w.MinMemory)},
		MinPeriod:             time.Duration(w.MinPeriod),
		Notice:                time.Duration(w.Notice),
		Capacity:              scheduler.Resources{CPUMillis: share(sold.CPUMillis), MemoryBytes: share(sold.MemoryBytes), ScratchBytes: share(sold.ScratchBytes)},
		Labels:                scheduler.NewLabels(labels...),
		RetailerJurisdictions: jurisdictions(w.RetailerJurisdictions),
	}
}

// jurisdictions are codes lower-cased, sorted and unique.
func jurisdictions(codes []string) []string {
	out := make([]string, 0, len(codes))
	for _, c := range codes {
		out = append(out, strings.ToLower(c))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
