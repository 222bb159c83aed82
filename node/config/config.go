package config

import "time"

// Config is a provider node's configuration, written in YAML under the keys in
// the tags. Every field is documented with its default, which Default returns
// and `cuivre init` writes into config.yaml.
//
// The zero Config is not a working one and does not pretend to be: Validate
// refuses it and names each missing field. Build a Config with Default or Load.
type Config struct {
	// Role is what the node does in the federation. "provider" sells
	// capacity (it announces itself, answers offers and leases, runs jobs)
	// and buys it too; "requester" only buys: it announces nothing, answers
	// only the module and block requests of the providers that run its jobs,
	// runs no executor, and ignores capacity, pricing, labels, executor and
	// the offer limits; "retailer" sells on the slices it rents from a site
	// (cuivre wholesale request), at its prices, under its operator label and
	// the site's other labels, the site running the jobs, and ignores
	// capacity, executor and its other labels. Default "provider".
	Role string `yaml:"role"`
	// Listen are the multiaddrs the libp2p host listens on. QUIC v1 is the
	// transport peers should use; TCP is a fallback for networks that drop UDP.
	// Default: QUIC v1 and TCP on port 4242, on all IPv4 and IPv6 interfaces.
	Listen []string `yaml:"listen"`
	// Bootstrap are peers to join the federation through: multiaddrs that end
	// in /p2p/<peer ID>. Default: none, so the node starts a federation of its
	// own until it is given one.
	Bootstrap []string `yaml:"bootstrap"`
	// NAT is how the node gets reachable from behind a NAT.
	NAT NAT `yaml:"nat"`
	// API is the local HTTP API the CLI talks to.
	API API `yaml:"api"`
	// Metrics is where Prometheus may scrape the node besides the API.
	Metrics Metrics `yaml:"metrics"`
	// Capacity is how much of the machine the node sells.
	Capacity Capacity `yaml:"capacity"`
	// Pricing is what the node charges.
	Pricing Pricing `yaml:"pricing"`
	// Labels are the attributes jobs select providers on.
	Labels Labels `yaml:"labels"`
	// Executor bounds what a single lease may use.
	Executor Executor `yaml:"executor"`
	// Data bounds the store of content-addressed data: jobs' inputs and
	// outputs, modules aside.
	Data Data `yaml:"data"`
	// Limits bound what one peer, or one place, may ask of the node.
	Limits Limits `yaml:"limits"`
	// Wholesale rents slices of what the node sells to other operators.
	Wholesale Wholesale `yaml:"wholesale"`
	// Log is the daemon's structured logging.
	Log Log `yaml:"log"`
}

// Roles a node may have (Config.Role).
const (
	// RoleProvider sells capacity and may buy it.
	RoleProvider = "provider"
	// RoleRequester only buys.
	RoleRequester = "requester"
	// RoleRetailer sells on the slices it rents from a site (SPEC 6.7),
	// under its own operator label and prices and the site's other labels,
	// and runs nothing itself: the site runs its customers' jobs. It buys
	// too.
	RoleRetailer = "retailer"
)

// Roles returns the roles a node may have, the default first.
func Roles() []string { return []string{RoleProvider, RoleRequester, RoleRetailer} }

// NAT is how the node gets reachable from behind a router, and how it
// helps other nodes do so. The switches default to true: a node behind a
// home or office router is the normal case.
type NAT struct {
	// AutoNAT asks peers whether the node is reachable from outside, and
	// answers theirs, so that it knows whether to take a relay slot and
	// which addresses work. Default true.
	AutoNAT bool `yaml:"autonat"`
	// HolePunching turns a relayed connection into a direct one (DCUtR). It
	// needs RelayClient. Default true.
	HolePunching bool `yaml:"hole_punching"`
	// RelayClient lets the node dial peers through circuit relays and, when
	// it is not reachable, hold a slot on a relay and announce it. Default
	// true.
	RelayClient bool `yaml:"relay_client"`
	// PortMapping asks the router to forward a port to the node (UPnP,
	// NAT-PMP), which sends discovery traffic to the host's LAN. Never when
	// every listen address is loopback. Default true.
	PortMapping bool `yaml:"port_mapping"`
	// Reachability is what the node takes itself to be: "auto" (AutoNAT
	// decides), "public" (peers can dial it: it may relay for others) or
	// "private" (behind a NAT: it takes a relay slot at once). Set it where
	// AutoNAT cannot judge, as on a private network. Default "auto".
	Reachability string `yaml:"reachability"`
	// Relays are the relays the node takes a slot on when it is not
	// reachable, multiaddrs ending in /p2p/<peer ID>. Their addresses are
	// exempt from limits.conns_per_ip, since every connection relayed to the
	// node comes from its relay's address. Default: none, so relays are
	// found among the DHT's peers.
	Relays []string `yaml:"relays"`
	// RelayService is when the node relays for peers behind NATs: "auto"
	// (while it is reachable), "on" or "off". A relayed connection carries
	// only placement's small messages, for as long as hole punching takes.
	// Default "auto".
	RelayService string `yaml:"relay_service"`
	// RelayLimits bound the relay service.
	RelayLimits RelayLimits `yaml:"relay_limits"`
	// PrivateAddrs announces the node's addresses in private ranges (10/8,
	// 172.16/12, 192.168/16, 100.64/10, fc00::/7): for a federation on a
	// routed private network. libp2p relays and punches holes only between
	// public addresses, so there the nodes must reach each other directly,
	// and those that can are best told nat.reachability: public (with it
	// true and reachability auto, the node serves the DHT rather than wait
	// for AutoNAT, which cannot judge private addresses). Loopback
	// addresses are announced only when every listen address is loopback (a
	// devnet). Default false.
	PrivateAddrs bool `yaml:"private_addrs"`
}

// RelayLimits bound the circuit relay service.
type RelayLimits struct {
	// Reservations is how many peers may hold a slot at once. Default 128.
	Reservations uint32 `yaml:"reservations"`
	// CircuitsPerPeer is how many relayed connections one peer may have at
	// once. Default 16.
	CircuitsPerPeer uint32 `yaml:"circuits_per_peer"`
	// CircuitDuration is a relayed connection's longest life. Default "2m".
	CircuitDuration Duration `yaml:"circuit_duration"`
	// CircuitData is what one relayed connection may carry each way.
	// Default "128Ki".
	CircuitData Bytes `yaml:"circuit_data"`
}

// API is the local HTTP+JSON API (bearer token) the CLI uses.
type API struct {
	// Listen is the host:port of the API. It must be a loopback address: the
	// API is plain HTTP, so the token would cross the network in clear.
	// Port 0 picks a free port (the daemon writes the real one to DIR/api).
	// Default "127.0.0.1:4243".
	Listen string `yaml:"listen"`
}

// Metrics serves the node's Prometheus metrics on an address of their own,
// so that a Prometheus on another machine can scrape them while the API
// stays on loopback.
type Metrics struct {
	// Listen is the host:port on which the daemon serves GET /metrics, and
	// nothing else, without a token: metrics carry no secret, so any
	// address will do, such as "0.0.0.0:4244". Port 0 picks a free port
	// (the daemon writes the real address to DIR/metrics.addr). Empty
	// serves them only at the API's /metrics. Default "".
	Listen string `yaml:"listen"`
}

// Capacity is how much of the machine the node sells:
//
//	offered = (machine - reserve) * offered_percent / 100
//
// in each dimension, rounded down, where machine is what Detect finds or the
// override given here. Scratch has no reserve: it is the free disk of the data
// directory, which the host's other files already left over.
type Capacity struct {
	// Auto detects the machine's CPUs, memory and free disk at start (Detect).
	// With Auto false, CPU and Memory are required and Scratch defaults to
	// none. Default true.
	Auto bool `yaml:"auto"`
	// CPU overrides the machine's CPU, as vCPUs ("4", "0.5") or millicores
	// ("3500m"). With Auto true it must not exceed what is detected: set Auto
	// false to declare more. Default: unset (detect).
	CPU *CPU `yaml:"cpu"`
	// Memory overrides the machine's memory, such as "8Gi". Default: unset.
	Memory *Bytes `yaml:"memory"`
	// Scratch overrides the disk sold as scratch space for jobs, such as
	// "100Gi"; "0" sells none. Default: unset (the free disk of the data dir,
	// with Auto; none without).
	Scratch *Bytes `yaml:"scratch"`
	// Reserve is kept back for the host and the daemon itself.
	Reserve Reserve `yaml:"reserve"`
	// OfferedPercent is the share of what is left after Reserve that is sold,
	// 1 to 100. Default 80.
	OfferedPercent uint32 `yaml:"offered_percent"`
}

// Reserve is capacity kept for the host and the daemon, never sold.
type Reserve struct {
	// CPU kept back. Default "500m".
	CPU CPU `yaml:"cpu"`
	// Memory kept back. Default "1Gi".
	Memory Bytes `yaml:"memory"`
}

// Pricing is the node's tariff, written as humans think of it: money per
// hour. Market converts it to the protocol's nano-units per second by
// truncation (SPEC 5.5 prices are integers), with protocol.PerSecond, as the
// simulator does: a per-hour price p becomes
// floor(p * 1e9 / 3600) nano-units per second, so the node never quotes more
// than the price written here, and less by under 3600 nano-units
// (0.0000036) an hour. A price that is not zero but would truncate to zero is
// refused rather than given away.
type Pricing struct {
	// Currency is the ISO 4217 code every price is in. Default "EUR".
	Currency string `yaml:"currency"`
	// CPUPerHour is the price of one vCPU for an hour, such as "0.04".
	// Default "0.04".
	CPUPerHour Money `yaml:"cpu_per_hour"`
	// MemoryGiBPerHour is the price of one GiB of memory for an hour.
	// Default "0.005".
	MemoryGiBPerHour Money `yaml:"memory_gib_per_hour"`
	// EgressPerGiB is the price of one GiB sent out. Default "0.01".
	EgressPerGiB Money `yaml:"egress_per_gib"`
	// LoadFactorPercent is how much dearer the node gets at full load:
	// prices are multiplied by 1 + LoadFactorPercent/100 * u², u the
	// utilisation (scheduler.PricePolicy). 0 is a fixed price, 100 doubles
	// it at full load; at most 1000. Default 0.
	LoadFactorPercent uint32 `yaml:"load_factor_percent"`
}

// Labels are the provider's attributes, announced in its capacity record and
// DHT facets (SPEC 4.2) and matched by job constraints. Every one is optional;
// a provider without a label is never chosen by a job that requires it.
type Labels struct {
	// Region is where the machine is, in the federation's own names, such as
	// "fr-par": lower-case a-z, 0-9 and '-', at most 63. Default "".
	Region string `yaml:"region"`
	// Jurisdiction is the country whose law the machine is under, as an ISO
	// 3166-1 alpha-2 code, such as "fr" (upper case is accepted and
	// lower-cased). Default "".
	Jurisdiction string `yaml:"jurisdiction"`
	// Operator names who runs the node, such as "acme": a-z, 0-9, '-', '_'
	// and '.', at most 63. Jobs replicated for verification pick distinct
	// operators. Default "".
	Operator string `yaml:"operator"`
	// Certifications are the certifications the site holds, such as
	// "secnumcloud" or "hds", most important first. The protocol carries one
	// certification label per provider for now, so only the first is
	// announced, as label "certification". Default: none.
	Certifications []string `yaml:"certifications"`
	// Extra are further labels, key to value: keys are a-z, 0-9, '-', '_',
	// '.' and '/', values the same without '/', both at most 63; at most 16,
	// and none of region, jurisdiction, operator or certification. Default:
	// none.
	Extra map[string]string `yaml:"extra"`
}

// Executor bounds what one lease may use, whatever it asks for.
type Executor struct {
	// MaxMemory is the most memory one lease may reserve, at least 1Mi and at
	// most 4Gi (what a 32-bit WebAssembly memory can address). Default "1Gi".
	MaxMemory Bytes `yaml:"max_memory"`
	// MaxTimeout is the longest a lease may run, such as "1h" or "90m", at
	// most 720h (30 days). Default "1h".
	MaxTimeout Duration `yaml:"max_timeout"`
	// MaxScratch is the most scratch disk one lease may use; "0" allows none.
	// At most 64Gi. Default "1Gi".
	MaxScratch Bytes `yaml:"max_scratch"`
	// CacheDir holds compiled modules; a relative path is under the data
	// directory. Default "cache".
	CacheDir string `yaml:"cache_dir"`
}

// Data is the node's store of inputs and outputs (UnixFS blocks).
type Data struct {
	// MaxSize is the most disk the store's blocks may take; past it, unpinned
	// content older than Keep is evicted, then writes are refused. "0"
	// means the scratch the node sells, or for a requester, which sells
	// none, the free disk of the data dir at start. Default "0".
	MaxSize Bytes `yaml:"max_size"`
	// Keep is how long content no lease or job pins stays before it may be
	// evicted, such as "1h". Default "1h".
	Keep Duration `yaml:"keep"`
}

// Limits bound what one peer, or one place (an origin: an IPv4 /24 or an
// IPv6 /48), may ask of the node: the federation is open, and anyone may
// ask for offers it never leases (SPEC 7).
type Limits struct {
	// OffersPerPeer is how many live offers one requester, or one origin,
	// may hold here. Default 32.
	OffersPerPeer uint32 `yaml:"offers_per_peer"`
	// OfferSharePercent is the share of each dimension of the capacity
	// sold that one requester's live offers, or one origin's, may reserve
	// beyond their first, 1 to 100. Default 50.
	OfferSharePercent uint32 `yaml:"offer_share_percent"`
	// OfferGrace is how long an offer outlives the request it answers:
	// the requester decides by then and sends its lease at once. At most
	// 2m. Default "2s".
	OfferGrace Duration `yaml:"offer_grace"`
	// StandingExpired is how many offers a requester may leave to expire
	// unanswered (fading by half every 10 minutes, four more for each
	// lease it signed) before its requests are refused; 0: never. Default 64.
	StandingExpired uint32 `yaml:"standing_expired"`
	// RequestsPerSecond is the rate of requests one peer may make on each
	// protocol but the block exchange, in bursts of twice as many; 0: no
	// limit. Default 50.
	RequestsPerSecond uint32 `yaml:"requests_per_second"`
	// BlockRequestsPerSecond is the same for the block exchange. Default 500.
	BlockRequestsPerSecond uint32 `yaml:"block_requests_per_second"`
	// ConnsPerIP bounds the connections from one IPv4 address or IPv6 /56.
	// Default 8.
	ConnsPerIP uint32 `yaml:"conns_per_ip"`
	// Loopback applies the per-IP and per-origin limits to loopback
	// addresses too; off, they are exempt, so that the nodes of a devnet
	// on one machine are not one origin. Default false.
	Loopback bool `yaml:"loopback"`
}

// Wholesale is a site's side of wholesale unbundling (SPEC 4.5, 6.7): it
// rents slices of what the node sells to other operators, the retailers,
// who sell their own service on them, at one tariff published in the DHT
// for every retailer alike. A slice is paid for whole, used or not.
type Wholesale struct {
	// Enabled publishes the tariff, announces the node under the wholesale
	// facet of its jurisdiction, and answers retailers' requests for
	// slices. It needs labels.jurisdiction and role provider. Default false.
	Enabled bool `yaml:"enabled"`
	// CPUPerHour is what one vCPU of a slice costs for an hour, in
	// pricing.currency. Default "0.02".
	CPUPerHour Money `yaml:"cpu_per_hour"`
	// MemoryGiBPerHour is what one GiB of memory of a slice costs for an
	// hour. Default "0.0025".
	MemoryGiBPerHour Money `yaml:"memory_gib_per_hour"`
	// EgressPerGiB is what one GiB sent out from a slice costs. Default
	// "0.01".
	EgressPerGiB Money `yaml:"egress_per_gib"`
	// RetailCostCPUPerHour is what selling one vCPU-hour retail costs the
	// site beyond the slice (its own sales, support, billing), published in
	// the tariff: its own retail price must cover the wholesale price plus
	// this, which anyone can audit (SPEC 6.7). Default "0".
	RetailCostCPUPerHour Money `yaml:"retail_cost_cpu_per_hour"`
	// RetailCostMemoryGiBPerHour is the same for one GiB-hour of memory.
	// Default "0".
	RetailCostMemoryGiBPerHour Money `yaml:"retail_cost_memory_gib_per_hour"`
	// MinCPU is the fewest vCPUs a slice may hold. Default "1".
	MinCPU CPU `yaml:"min_cpu"`
	// MinMemory is the least memory a slice may hold. Default "1Gi".
	MinMemory Bytes `yaml:"min_memory"`
	// MinPeriod is the shortest slice, such as "1h". Default "1h".
	MinPeriod Duration `yaml:"min_period"`
	// Notice is how long before a withdrawal of a slice takes effect, at
	// most 720h. Default "24h".
	Notice Duration `yaml:"notice"`
	// BillEvery is how often the site bills each retailer its slices' rent
	// for the time since the last bill, and asks again for the
	// countersignatures of bills still unsigned; "0" bills only when
	// `cuivre wholesale bill` runs. At least "1m" otherwise. Default "24h".
	BillEvery Duration `yaml:"bill_every"`
	// SharePercent is the share of the capacity sold that may be granted as
	// slices at once, all retailers together, 1 to 100. Default 50.
	SharePercent uint32 `yaml:"share_percent"`
	// RetailerJurisdictions is the rule the tariff publishes, the same for
	// every retailer: slices go only to retailers that declare one of these
	// jurisdictions (ISO 3166-1 alpha-2), as a retailer declares its
	// labels.jurisdiction. Default: none, any retailer.
	RetailerJurisdictions []string `yaml:"retailer_jurisdictions"`
}

// Log is the daemon's log/slog output, on standard error.
type Log struct {
	// Level is the least severe level written: debug, info, warn or error.
	// Default "info".
	Level string `yaml:"level"`
	// Format is text (logfmt-like, for people) or json (for log shippers).
	// Default "text".
	Format string `yaml:"format"`
}

// Default ports.
const (
	// DefaultPort is the libp2p port, on UDP for QUIC and on TCP.
	DefaultPort = 4242
	// DefaultAPIListen is the address of the local API.
	DefaultAPIListen = "127.0.0.1:4243"
)

// Default returns the default configuration. Each call returns fresh slices
// and maps, which the caller owns.
func Default() Config {
	return Config{
		Role: RoleProvider,
		Listen: []string{
			"/ip4/0.0.0.0/udp/4242/quic-v1",
			"/ip6/::/udp/4242/quic-v1",
			"/ip4/0.0.0.0/tcp/4242",
			"/ip6/::/tcp/4242",
		},
		Bootstrap: []string{},
		NAT: NAT{AutoNAT: true, HolePunching: true, RelayClient: true, PortMapping: true,
			Reachability: "auto", Relays: []string{}, RelayService: "auto",
			RelayLimits: RelayLimits{Reservations: 128, CircuitsPerPeer: 16, CircuitDuration: Duration(2 * time.Minute), CircuitData: 128 << 10}},
		API: API{Listen: DefaultAPIListen},
		Capacity: Capacity{
			Auto:           true,
			Reserve:        Reserve{CPU: 500, Memory: 1 << 30},
			OfferedPercent: 80,
		},
		Pricing: Pricing{
			Currency:         "EUR",
			CPUPerHour:       40_000_000,
			MemoryGiBPerHour: 5_000_000,
			EgressPerGiB:     10_000_000,
		},
		Labels: Labels{Certifications: []string{}, Extra: map[string]string{}},
		Executor: Executor{
			MaxMemory:  1 << 30,
			MaxTimeout: Duration(time.Hour),
			MaxScratch: 1 << 30,
			CacheDir:   "cache",
		},
		Data: Data{Keep: Duration(time.Hour)},
		Limits: Limits{OffersPerPeer: 32, OfferSharePercent: 50, OfferGrace: Duration(2 * time.Second), StandingExpired: 64,
			RequestsPerSecond: 50, BlockRequestsPerSecond: 500, ConnsPerIP: 8},
		Wholesale: Wholesale{CPUPerHour: 20_000_000, MemoryGiBPerHour: 2_500_000, EgressPerGiB: 10_000_000,
			MinCPU: 1000, MinMemory: 1 << 30, MinPeriod: Duration(time.Hour), Notice: Duration(24 * time.Hour), BillEvery: Duration(24 * time.Hour), SharePercent: 50,
			RetailerJurisdictions: []string{}},
		Log: Log{Level: "info", Format: "text"},
	}
}
