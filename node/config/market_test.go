package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cuivre/cuivre/scheduler"
)

// machine is a 16-core, 64 GiB server with 500 GiB of free disk.
var machine = scheduler.Resources{CPUMillis: 16000, MemoryBytes: 64 << 30, ScratchBytes: 500 << 30}

func TestMarketCapacity(t *testing.T) {
	tests := []struct {
		name     string
		modify   func(*Config)
		detected scheduler.Resources
		want     scheduler.Resources
		err      []string
	}{
		{"defaults: (machine - reserve) * 80%", func(*Config) {}, machine, scheduler.Resources{
			CPUMillis:    (16000 - 500) * 80 / 100,    // 12400
			MemoryBytes:  (64<<30 - 1<<30) * 80 / 100, // 50.4 GiB
			ScratchBytes: 500 << 30 * 80 / 100,        // no reserve on disk
		}, nil},
		{"everything, nothing kept", func(c *Config) {
			c.Capacity.Reserve = Reserve{}
			c.Capacity.OfferedPercent = 100
		}, machine, machine, nil},
		{"rounding down", func(c *Config) {
			c.Capacity.Reserve = Reserve{}
			c.Capacity.OfferedPercent = 33
		}, scheduler.Resources{CPUMillis: 1001, MemoryBytes: 1<<30 + 1, ScratchBytes: 3},
			scheduler.Resources{CPUMillis: 330, MemoryBytes: (1<<30 + 1) * 33 / 100, ScratchBytes: 0}, nil},
		{"overrides below the machine replace it", func(c *Config) {
			c.Capacity.CPU, c.Capacity.Memory, c.Capacity.Scratch = ptr(CPU(4000)), ptr(Bytes(8<<30)), ptr(Bytes(0))
			c.Capacity.OfferedPercent = 50
		}, machine, scheduler.Resources{CPUMillis: 1750, MemoryBytes: 7 << 29, ScratchBytes: 0}, nil},
		{"without detection the overrides are the machine", func(c *Config) {
			c.Capacity.Auto = false
			c.Capacity.CPU, c.Capacity.Memory = ptr(CPU(64000)), ptr(Bytes(256<<30))
			c.Capacity.Reserve = Reserve{CPU: 2000, Memory: 16 << 30}
			c.Capacity.OfferedPercent = 100
		}, scheduler.Resources{}, scheduler.Resources{CPUMillis: 62000, MemoryBytes: 240 << 30}, nil},
		{"overrides above the machine", func(c *Config) {
			c.Capacity.CPU, c.Capacity.Memory, c.Capacity.Scratch = ptr(CPU(32000)), ptr(Bytes(128<<30)), ptr(Bytes(1<<40))
		}, machine, scheduler.Resources{}, []string{
			"capacity.cpu: 32 is more than the 16 detected: lower it, or set capacity.auto to false to declare the machine yourself",
			"capacity.memory: 128Gi is more than the 64Gi detected: lower it, or set capacity.auto to false to declare the machine yourself",
			"capacity.scratch: 1Ti is more than the 500Gi of free disk detected: lower it, or free some disk"}},
		{"reserve above a small machine", func(*Config) {}, scheduler.Resources{CPUMillis: 500, MemoryBytes: 512 << 20}, scheduler.Resources{}, []string{
			"capacity.reserve.cpu: 500m keeps all of the machine's 500m CPUs: lower it",
			"capacity.reserve.memory: 1Gi keeps all of the machine's 512Mi of memory: lower it"}},
		{"nothing detected", func(*Config) {}, scheduler.Resources{}, scheduler.Resources{}, []string{
			`capacity.cpu: none detected: give the machine's CPUs, such as "4"`,
			`capacity.memory: none detected: give the machine's memory, such as "8Gi"`}},
		{"percent of a sliver", func(c *Config) {
			c.Capacity.Reserve = Reserve{}
			c.Capacity.OfferedPercent = 1
		}, scheduler.Resources{CPUMillis: 99, MemoryBytes: 1 << 30}, scheduler.Resources{}, []string{
			"capacity.offered_percent: 1% of what the reserve leaves (99m CPUs, 1Gi) rounds down to nothing: raise it or lower the reserve"}},
		{"invalid config", func(c *Config) { c.Capacity.OfferedPercent = 0 }, machine, scheduler.Resources{}, []string{
			"capacity.offered_percent: 0: use 1 to 100 (default 80)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.modify(&c)
			mc, err := c.Market("provider", tt.detected)
			if diff := cmp.Diff(tt.err, lines(err)); diff != "" {
				t.Fatalf("Market() errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, mc.Capacity); diff != "" {
				t.Errorf("Market().Capacity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarketPricesAndLabels(t *testing.T) {
	c := Default()
	c.Pricing = Pricing{
		Currency:          "EUR",
		CPUPerHour:        40_000_000, // 0.04 EUR per vCPU-hour
		MemoryGiBPerHour:  5_000_000,  // 0.005 EUR per GiB-hour
		EgressPerGiB:      10_000_000, // 0.01 EUR per GiB
		LoadFactorPercent: 150,
	}
	c.Labels = Labels{
		Region:         "fr-par",
		Jurisdiction:   "FR",
		Operator:       "acme",
		Certifications: []string{"hds", "iso27001"},
		Extra:          map[string]string{"tier": "gold", "acme.org/rack": "b2"},
	}
	got, err := c.Market("peer", machine)
	if err != nil {
		t.Fatal(err)
	}
	want := scheduler.MarketConfig{
		Provider: "peer",
		Capacity: scheduler.Resources{CPUMillis: 12400, MemoryBytes: (63 << 30) * 4 / 5, ScratchBytes: (500 << 30) * 4 / 5},
		Labels: scheduler.Labels{
			{Key: "acme.org/rack", Value: "b2"},
			{Key: "certification", Value: "hds"}, // the first certification only
			{Key: "jurisdiction", Value: "fr"},   // lower-cased
			{Key: "operator", Value: "acme"},
			{Key: "region", Value: "fr-par"},
			{Key: "tier", Value: "gold"},
		},
		Executors: []string{"wasm"},
		Pricing: scheduler.PricePolicy{
			Base: scheduler.Price{
				Currency:                "EUR",
				CPUNanosPerSecond:       11_111, // 40_000_000 / 3600 = 11_111.1, truncated
				MemoryNanosPerGiBSecond: 1_388,  // 5_000_000 / 3600 = 1_388.9, truncated
				EgressNanosPerGiB:       10_000_000,
			},
			LoadFactorPermille: 1500,
		},
		// The limits section's defaults.
		OfferGrace: 2 * time.Second, MaxOffersPerPeer: 32, MaxHeldPermille: 500, StandingExpired: 64,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(scheduler.MarketConfig{}, "Seed")); diff != "" {
		t.Errorf("Market() (-want +got):\n%s", diff)
	}
	if got.Seed == ([32]byte{}) {
		t.Error("Market() left the seed zero: offer nonces would be predictable")
	}
	// Truncation never charges more than the hourly price written: an hour
	// of one vCPU and one GiB costs at most 0.045 EUR, and less by under
	// 2 * 3600 nano-units.
	cost, err := got.Pricing.Base.Cost(scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const hourly = 45_000_000
	if cost > hourly || hourly-cost >= 2*3600 {
		t.Errorf("an hour of 1 vCPU and 1 GiB costs %d nano-units, want at most %d and within %d", cost, hourly, 2*3600)
	}
}

func TestMarketWithoutLabels(t *testing.T) {
	got, err := Default().Market("peer", machine)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Labels) != 0 {
		t.Errorf("Market().Labels = %v, want none: empty labels are not announced", got.Labels)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Market() is not a valid MarketConfig: %v", err)
	}
}

func TestPerSecondConversion(t *testing.T) {
	tests := []struct {
		perHour string
		want    uint64
	}{
		{"0", 0},
		{"0.0000036", 1},
		{"0.0000071", 1},
		{"0.0000072", 2},
		{"3.6", 1_000_000},
		{"0.04", 11_111},
		{"18446744073.709551615", 18446744073709551615 / 3600},
	}
	for _, tt := range tests {
		var m Money
		if err := m.UnmarshalText([]byte(tt.perHour)); err != nil {
			t.Fatal(err)
		}
		p := Pricing{Currency: "EUR", CPUPerHour: m, MemoryGiBPerHour: m}.policy()
		if p.Base.CPUNanosPerSecond != tt.want || p.Base.MemoryNanosPerGiBSecond != tt.want {
			t.Errorf("%s an hour = %d, %d nano-units a second, want %d", tt.perHour, p.Base.CPUNanosPerSecond, p.Base.MemoryNanosPerGiBSecond, tt.want)
		}
	}
}
