package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/cuivre/cuivre/protocol"
)

// Limits of a config, beyond those of the protocol.
const (
	// MaxExtraLabels bounds Labels.Extra, so the labels copied into every
	// offer stay small.
	MaxExtraLabels = 16
	// MaxLoadFactorPercent bounds Pricing.LoadFactorPercent: at most 11 times
	// the base price at full load.
	MaxLoadFactorPercent = 1000
	// MaxWasmMemory is the most a 32-bit WebAssembly memory can address, and
	// so the ceiling of Executor.MaxMemory.
	MaxWasmMemory = 4 << 30
)

// reservedLabels are the label keys the named fields of Labels produce.
var reservedLabels = []string{"certification", "jurisdiction", "operator", "region"}

// Validate reports everything wrong with c, as errors.Join of one *FieldError
// per problem, each naming the setting's path and the reason, such as
//
//	labels.jurisdiction: "FRA" is not an ISO 3166-1 alpha-2 code: it is the alpha-3 code of France, whose alpha-2 code is "fr"
//
// It checks each setting on its own and the few rules between them that need
// no knowledge of the machine; Market checks the rest once resources are
// detected.
func (c Config) Validate() error {
	v := validator{}
	if !slices.Contains(Roles(), c.Role) {
		v.add("role", "%q: use provider (sells capacity, and buys), requester (only buys) or retailer (sells on slices rented from a site)", c.Role)
	}
	v.listen(c.Listen)
	v.bootstrap(c.Bootstrap)
	v.nat(c.NAT)
	v.api(c.API)
	v.metrics(c.Metrics)
	v.capacity(c.Capacity)
	v.pricing(c.Pricing)
	v.labels(c.Labels)
	v.executor(c.Executor)
	if c.Data.Keep <= 0 {
		v.add("data.keep", "%s: use a duration above 0, such as \"1h\"", c.Data.Keep)
	}
	v.limits(c.Limits)
	v.wholesale(c)
	v.log(c.Log)
	return errors.Join(v.errs...)
}

// MaxNotice bounds Wholesale.Notice.
const MaxNotice = 720 * time.Hour

func (v *validator) wholesale(c Config) {
	w := c.Wholesale
	v.hourly("wholesale", w.CPUPerHour, w.MemoryGiBPerHour)
	for i, j := range w.RetailerJurisdictions {
		if msg := badJurisdiction(j); msg != "" {
			v.add(indexPath("wholesale.retailer_jurisdictions", i), "%s", msg)
		}
	}
	if w.CPUPerHour == 0 && w.MemoryGiBPerHour == 0 {
		v.add("wholesale", "cpu_per_hour and memory_gib_per_hour are both 0: a slice would be given away")
	}
	if w.MinPeriod <= 0 {
		v.add("wholesale.min_period", "%s: use a duration above 0, such as \"1h\"", w.MinPeriod)
	}
	if w.Notice < 0 || time.Duration(w.Notice) > MaxNotice {
		v.add("wholesale.notice", "%s: use 0 to %s", w.Notice, Duration(MaxNotice))
	}
	if w.BillEvery != 0 && time.Duration(w.BillEvery) < time.Minute {
		v.add("wholesale.bill_every", "%s: use 0 (bill only by `cuivre wholesale bill`) or at least \"1m\"", w.BillEvery)
	}
	if w.SharePercent < 1 || w.SharePercent > 100 {
		v.add("wholesale.share_percent", "%d: use 1 to 100", w.SharePercent)
	}
	if !w.Enabled {
		return
	}
	if c.Role != RoleProvider {
		v.add("wholesale.enabled", "a %s sells no hardware of its own, so it has no slice to rent: set role provider, or wholesale.enabled false", c.Role)
	}
	if c.Labels.Jurisdiction == "" {
		v.add("wholesale.enabled", "a tariff names the jurisdiction its slices are under: set labels.jurisdiction")
	}
	// The margin squeeze an audit looks for (SPEC 6.7): the node's own
	// retail under its wholesale price plus its retail cost.
	for _, d := range []struct {
		path                string
		retail, whole, cost Money
	}{{"pricing.cpu_per_hour", c.Pricing.CPUPerHour, w.CPUPerHour, w.RetailCostCPUPerHour},
		{"pricing.memory_gib_per_hour", c.Pricing.MemoryGiBPerHour, w.MemoryGiBPerHour, w.RetailCostMemoryGiBPerHour},
		{"pricing.egress_per_gib", c.Pricing.EgressPerGiB, w.EgressPerGiB, 0}} {
		if d.retail < d.whole+d.cost {
			v.add(d.path, "%s is under the wholesale price %s plus the retail cost %s: your own retail would undercut the retailers on your slices, which an audit shows (raise it, or lower the wholesale price)",
				d.retail, d.whole, d.cost)
		}
	}
}

func (v *validator) limits(l Limits) {
	if l.OffersPerPeer == 0 {
		v.add("limits.offers_per_peer", "0: use at least 1, such as 32")
	}
	if l.OfferSharePercent == 0 || l.OfferSharePercent > 100 {
		v.add("limits.offer_share_percent", "%d: use 1 to 100, such as 50", l.OfferSharePercent)
	}
	if l.OfferGrace <= 0 || time.Duration(l.OfferGrace) > protocol.MaxOfferTTL {
		v.add("limits.offer_grace", "%s: use a duration above 0 and at most %s, such as \"2s\"", l.OfferGrace, Duration(protocol.MaxOfferTTL))
	}
	if l.ConnsPerIP == 0 {
		v.add("limits.conns_per_ip", "0: use at least 1, such as 8")
	}
}

type validator struct{ errs []error }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) listen(addrs []string) {
	if len(addrs) == 0 {
		v.add("listen", "empty: give at least one address, such as /ip4/0.0.0.0/udp/%d/quic-v1", DefaultPort)
	}
	seen := map[string]int{}
	for i, s := range addrs {
		p := indexPath("listen", i)
		if j, dup := seen[s]; dup {
			v.add(p, "%q repeats listen[%d]", s, j)
			continue
		}
		seen[s] = i
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			v.add(p, "%q is not a multiaddr: %v (write it like /ip4/0.0.0.0/udp/%d/quic-v1)", s, err, DefaultPort)
			continue
		}
		if _, err := a.ValueForProtocol(multiaddr.P_P2P); err == nil {
			v.add(p, "%q: a listen address names no peer: drop the /p2p/ part", s)
			continue
		}
		_, errQUIC := a.ValueForProtocol(multiaddr.P_QUIC_V1)
		_, errTCP := a.ValueForProtocol(multiaddr.P_TCP)
		if errQUIC != nil && errTCP != nil {
			if _, err := a.ValueForProtocol(multiaddr.P_QUIC); err == nil {
				v.add(p, "%q uses QUIC draft-29, which libp2p dropped: write /quic-v1", s)
			} else {
				v.add(p, "%q: use QUIC v1 (/udp/<port>/quic-v1) or TCP (/tcp/<port>)", s)
			}
		}
	}
}

func (v *validator) nat(n NAT) {
	if n.HolePunching && !n.RelayClient {
		v.add("nat.hole_punching", "true needs nat.relay_client: hole punching turns a relayed connection into a direct one")
	}
	if !slices.Contains([]string{"auto", "public", "private"}, n.Reachability) {
		v.add("nat.reachability", "%q: use auto, public or private", n.Reachability)
	}
	if !slices.Contains([]string{"auto", "on", "off"}, n.RelayService) {
		v.add("nat.relay_service", "%q: use auto, on or off", n.RelayService)
	}
	v.peerAddrs("nat.relays", n.Relays)
	if len(n.Relays) > 0 && !n.RelayClient {
		v.add("nat.relays", "set, but nat.relay_client is false: the node would never use them")
	}
	l := n.RelayLimits
	if l.Reservations == 0 {
		v.add("nat.relay_limits.reservations", "0: use at least 1, such as 128, or nat.relay_service: off")
	}
	if l.CircuitsPerPeer == 0 {
		v.add("nat.relay_limits.circuits_per_peer", "0: use at least 1, such as 16")
	}
	if l.CircuitDuration <= 0 {
		v.add("nat.relay_limits.circuit_duration", "%s: use a duration above 0, such as \"2m\"", l.CircuitDuration)
	}
	if l.CircuitData == 0 {
		v.add("nat.relay_limits.circuit_data", "0: use at least 1Ki, such as \"128Ki\"")
	}
}

func (v *validator) bootstrap(addrs []string) { v.peerAddrs("bootstrap", addrs) }

// peerAddrs checks a list of peers' multiaddrs, each ending in /p2p/<ID>.
func (v *validator) peerAddrs(path string, addrs []string) {
	for i, s := range addrs {
		p := indexPath(path, i)
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			v.add(p, "%q is not a multiaddr: %v", s, err)
			continue
		}
		if _, err := a.ValueForProtocol(multiaddr.P_P2P); err != nil {
			v.add(p, "%q names no peer: end it with /p2p/<peer ID>, which `cuivre id` prints on that node", s)
			continue
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			v.add(p, "%q: %v", s, err)
		}
	}
}

func (v *validator) api(a API) {
	host, port, err := net.SplitHostPort(a.Listen)
	if err != nil {
		v.add("api.listen", "%q is not host:port: write it like %s", a.Listen, DefaultAPIListen)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add("api.listen", "%q: port %q is not a number from 0 to 65535", a.Listen, port)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		v.add("api.listen", "%q is not a loopback address: the API is plain HTTP with a bearer token, so keep it on 127.0.0.1 or [::1] and reach it through SSH", a.Listen)
	}
}

func (v *validator) metrics(m Metrics) {
	if m.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		v.add("metrics.listen", "%q is not host:port: write it like 0.0.0.0:4244, or leave it empty to serve metrics at the API's /metrics only", m.Listen)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add("metrics.listen", "%q: port %q is not a number from 0 to 65535", m.Listen, port)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		v.add("metrics.listen", "%q: host %q is not an IP address: write one, such as 0.0.0.0 for every IPv4 interface or 127.0.0.1 for this machine only", m.Listen, host)
	}
}

func (v *validator) capacity(c Capacity) {
	if !c.Auto {
		if c.CPU == nil {
			v.add("capacity.cpu", "required when capacity.auto is false: give the machine's CPUs, such as \"4\"")
		}
		if c.Memory == nil {
			v.add("capacity.memory", "required when capacity.auto is false: give the machine's memory, such as \"8Gi\"")
		}
	}
	if c.CPU != nil {
		if *c.CPU == 0 {
			v.add("capacity.cpu", "0: a node sells some CPU; leave it empty to detect it")
		} else if c.Reserve.CPU >= *c.CPU {
			v.add("capacity.reserve.cpu", "%s keeps all of the %s of capacity.cpu: lower it", c.Reserve.CPU, *c.CPU)
		}
	}
	if c.Memory != nil {
		if *c.Memory == 0 {
			v.add("capacity.memory", "0: a node sells some memory; leave it empty to detect it")
		} else if c.Reserve.Memory >= *c.Memory {
			v.add("capacity.reserve.memory", "%s keeps all of the %s of capacity.memory: lower it", c.Reserve.Memory, *c.Memory)
		}
	}
	if c.OfferedPercent < 1 || c.OfferedPercent > 100 {
		v.add("capacity.offered_percent", "%d: use 1 to 100 (default 80)", c.OfferedPercent)
	}
}

// minHourly is the least non-zero price per hour that is not zero per second:
// one nano-unit a second.
const minHourly = Money(3600)

// hourly refuses prices per hour, at section.cpu_per_hour and
// section.memory_gib_per_hour, that are not zero but would be charged as
// zero a second.
func (v *validator) hourly(section string, cpu, memory Money) {
	for _, h := range []struct {
		path  string
		price Money
	}{{section + ".cpu_per_hour", cpu}, {section + ".memory_gib_per_hour", memory}} {
		if h.price != 0 && h.price < minHourly {
			v.add(h.path, "%s is below %s, one nano-unit a second, so it would be charged as 0: write 0 or at least %s", h.price, minHourly, minHourly)
		}
	}
}

func (v *validator) pricing(p Pricing) {
	if !protocol.IsCurrencyCode(p.Currency) {
		v.add("pricing.currency", "%q is not a currency: use a 3-letter upper-case ISO 4217 code, such as EUR", p.Currency)
	}
	v.hourly("pricing", p.CPUPerHour, p.MemoryGiBPerHour)
	if p.LoadFactorPercent > MaxLoadFactorPercent {
		v.add("pricing.load_factor_percent", "%d: use 0 (a fixed price) to %d", p.LoadFactorPercent, MaxLoadFactorPercent)
		return
	}
	if err := p.policy().Validate(); err != nil && protocol.IsCurrencyCode(p.Currency) {
		for _, e := range unjoin(err) {
			v.add("pricing", "%v", e)
		}
	}
}

func (v *validator) labels(l Labels) {
	if l.Region != "" {
		if msg := badRegion(l.Region); msg != "" {
			v.add("labels.region", "%s", msg)
		}
	}
	if l.Jurisdiction != "" {
		if msg := badJurisdiction(l.Jurisdiction); msg != "" {
			v.add("labels.jurisdiction", "%s", msg)
		}
	}
	if l.Operator != "" {
		if msg := badLabel(l.Operator, false); msg != "" {
			v.add("labels.operator", "%s", msg)
		}
	}
	for i, c := range l.Certifications {
		p := indexPath("labels.certifications", i)
		if msg := badLabel(c, false); msg != "" {
			v.add(p, "%s", msg)
		} else if j := slices.Index(l.Certifications, c); j < i {
			v.add(p, "%q repeats labels.certifications[%d]", c, j)
		}
	}
	if len(l.Extra) > MaxExtraLabels {
		v.add("labels.extra", "%d labels: at most %d", len(l.Extra), MaxExtraLabels)
	}
	keys := make([]string, 0, len(l.Extra))
	for k := range l.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := keyPath("labels.extra", k)
		switch {
		case slices.Contains(reservedLabels, k):
			v.add(p, "%q is set by labels.%s: remove it from extra", k, strings.Replace(k, "certification", "certifications", 1))
		case badLabel(k, true) != "":
			v.add(p, "key %s", badLabel(k, true))
		case badLabel(l.Extra[k], false) != "":
			v.add(p, "value %s", badLabel(l.Extra[k], false))
		}
	}
}

// badRegion returns why s is not a region name, or "".
func badRegion(s string) string {
	if lower := strings.ToLower(s); lower != s && badRegion(lower) == "" {
		return fmt.Sprintf("%q: use lower case (%q)", s, lower)
	}
	if len(s) > protocol.MaxLabelLen {
		return fmt.Sprintf("%q is %d characters: use at most %d", s, len(s), protocol.MaxLabelLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return fmt.Sprintf("%q: character %q not allowed: use a-z, 0-9 and '-', such as \"fr-par\"", s, r)
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return fmt.Sprintf("%q: must not start or end with '-'", s)
	}
	return ""
}

// badLabel returns why s is not a label value (or, with key, a label key), or
// "": the protocol's label rule, which keeps every value a valid DHT facet
// value.
func badLabel(s string, key bool) string {
	check := protocol.CheckLabelValue
	if key {
		check = protocol.CheckLabelKey
	}
	if err := check(s); err != nil {
		return err.Error()
	}
	return ""
}

// badJurisdiction returns why s is not an ISO 3166-1 alpha-2 code, or "". Case
// does not matter: ISO writes the codes in upper case, labels in lower.
func badJurisdiction(s string) string {
	lower := strings.ToLower(s)
	if _, ok := countryByAlpha2(lower); ok {
		return ""
	}
	prefix := fmt.Sprintf("%q is not an ISO 3166-1 alpha-2 code", s)
	if c, ok := countryByAlpha3(lower); ok {
		return fmt.Sprintf("%s: it is the alpha-3 code of %s, whose alpha-2 code is %q", prefix, c.name, c.alpha2)
	}
	switch lower {
	case "uk":
		return prefix + `: the United Kingdom is "gb"`
	case "el":
		return prefix + `: Greece is "gr"`
	case "eu":
		return prefix + `: the European Union is not a country: name the member state whose law applies, such as "fr"`
	}
	return prefix + ` (e.g. "fr")`
}

type country struct{ alpha2, alpha3, name string }

func countryByAlpha2(code string) (country, bool) {
	i, ok := slices.BinarySearchFunc(countries[:], code, func(c country, code string) int {
		return strings.Compare(c.alpha2, code)
	})
	if !ok {
		return country{}, false
	}
	return countries[i], true
}

func countryByAlpha3(code string) (country, bool) {
	for _, c := range countries {
		if c.alpha3 == code {
			return c, true
		}
	}
	return country{}, false
}

func (v *validator) executor(e Executor) {
	if e.MaxMemory < protocol.MinJobMemory || e.MaxMemory > MaxWasmMemory {
		v.add("executor.max_memory", "%s: use %s to %s (what a 32-bit WebAssembly memory can address)", e.MaxMemory, Bytes(protocol.MinJobMemory), Bytes(MaxWasmMemory))
	}
	if e.MaxTimeout <= 0 || time.Duration(e.MaxTimeout) > protocol.MaxJobTimeout {
		v.add("executor.max_timeout", "%s: use a duration above 0 and at most %s, such as \"1h\"", e.MaxTimeout, Duration(protocol.MaxJobTimeout))
	}
	if e.MaxScratch > protocol.MaxJobScratch {
		v.add("executor.max_scratch", "%s: use at most %s, the largest scratch a job may ask for", e.MaxScratch, Bytes(protocol.MaxJobScratch))
	}
	if e.CacheDir == "" {
		v.add("executor.cache_dir", "empty: name a directory, relative to the data directory or absolute (default \"cache\")")
	}
}

func (v *validator) log(l Log) {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		v.add("log.level", "%q: use debug, info, warn or error", l.Level)
	}
	if !slices.Contains([]string{"text", "json"}, l.Format) {
		v.add("log.format", "%q: use text or json", l.Format)
	}
}
