package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol/specyaml"
	"github.com/cuivre/cuivre/scheduler"
)

// lines splits a joined error into its messages; nil is none.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func ptr[T any](v T) *T { return &v }

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestZeroConfigSaysWhatIsMissing(t *testing.T) {
	got := lines(Config{}.Validate())
	want := []string{
		`role: "": use provider (sells capacity, and buys), requester (only buys) or retailer (sells on slices rented from a site)`,
		"listen: empty: give at least one address, such as /ip4/0.0.0.0/udp/4242/quic-v1",
		`nat.reachability: "": use auto, public or private`,
		`nat.relay_service: "": use auto, on or off`,
		"nat.relay_limits.reservations: 0: use at least 1, such as 128, or nat.relay_service: off",
		"nat.relay_limits.circuits_per_peer: 0: use at least 1, such as 16",
		`nat.relay_limits.circuit_duration: 0s: use a duration above 0, such as "2m"`,
		`nat.relay_limits.circuit_data: 0: use at least 1Ki, such as "128Ki"`,
		`api.listen: "" is not host:port: write it like 127.0.0.1:4243`,
		`capacity.cpu: required when capacity.auto is false: give the machine's CPUs, such as "4"`,
		`capacity.memory: required when capacity.auto is false: give the machine's memory, such as "8Gi"`,
		"capacity.offered_percent: 0: use 1 to 100 (default 80)",
		`pricing.currency: "" is not a currency: use a 3-letter upper-case ISO 4217 code, such as EUR`,
		"executor.max_memory: 0: use 1Mi to 4Gi (what a 32-bit WebAssembly memory can address)",
		`executor.max_timeout: 0s: use a duration above 0 and at most 720h, such as "1h"`,
		`executor.cache_dir: empty: name a directory, relative to the data directory or absolute (default "cache")`,
		`data.keep: 0s: use a duration above 0, such as "1h"`,
		"limits.offers_per_peer: 0: use at least 1, such as 32",
		"limits.offer_share_percent: 0: use 1 to 100, such as 50",
		`limits.offer_grace: 0s: use a duration above 0 and at most 2m, such as "2s"`,
		"limits.conns_per_ip: 0: use at least 1, such as 8",
		"wholesale: cpu_per_hour and memory_gib_per_hour are both 0: a slice would be given away",
		`wholesale.min_period: 0s: use a duration above 0, such as "1h"`,
		"wholesale.share_percent: 0: use 1 to 100",
		`log.level: "": use debug, info, warn or error`,
		`log.format: "": use text or json`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Config{}.Validate() (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"no listen address", func(c *Config) { c.Listen = nil }, []string{
			"listen: empty: give at least one address, such as /ip4/0.0.0.0/udp/4242/quic-v1"}},
		{"listen not a multiaddr", func(c *Config) { c.Listen = []string{"0.0.0.0:4242"} }, []string{
			`listen[0]: "0.0.0.0:4242" is not a multiaddr: failed to parse multiaddr "0.0.0.0:4242": must begin with / (write it like /ip4/0.0.0.0/udp/4242/quic-v1)`}},
		{"listen repeated", func(c *Config) { c.Listen = append(c.Listen, c.Listen[0]) }, []string{
			`listen[4]: "/ip4/0.0.0.0/udp/4242/quic-v1" repeats listen[0]`}},
		{"listen with a peer", func(c *Config) {
			c.Listen = []string{"/ip4/0.0.0.0/tcp/4242/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"}
		}, []string{
			`listen[0]: "/ip4/0.0.0.0/tcp/4242/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq": a listen address names no peer: drop the /p2p/ part`}},
		{"listen on QUIC draft-29", func(c *Config) { c.Listen = []string{"/ip4/0.0.0.0/udp/4242/quic"} }, []string{
			`listen[0]: "/ip4/0.0.0.0/udp/4242/quic" uses QUIC draft-29, which libp2p dropped: write /quic-v1`}},
		{"listen on bare UDP", func(c *Config) { c.Listen = []string{"/ip4/0.0.0.0/udp/4242"} }, []string{
			`listen[0]: "/ip4/0.0.0.0/udp/4242": use QUIC v1 (/udp/<port>/quic-v1) or TCP (/tcp/<port>)`}},
		{"bootstrap without a peer", func(c *Config) { c.Bootstrap = []string{"/ip4/192.0.2.1/udp/4242/quic-v1"} }, []string{
			"bootstrap[0]: \"/ip4/192.0.2.1/udp/4242/quic-v1\" names no peer: end it with /p2p/<peer ID>, which `cuivre id` prints on that node"}},
		{"bootstrap not a multiaddr", func(c *Config) { c.Bootstrap = []string{"/dns4/"} }, []string{
			`bootstrap[0]: "/dns4/" is not a multiaddr: failed to parse multiaddr "/dns4": unexpected end of multiaddr`}},
		{"good bootstrap", func(c *Config) {
			c.Bootstrap = []string{"/dns4/boot.example.org/udp/4242/quic-v1/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"}
		}, nil},
		{"hole punching without the relay client", func(c *Config) { c.NAT.RelayClient = false }, []string{
			"nat.hole_punching: true needs nat.relay_client: hole punching turns a relayed connection into a direct one"}},
		{"relays without the relay client", func(c *Config) {
			c.NAT.RelayClient, c.NAT.HolePunching = false, false
			c.NAT.Relays = []string{"/ip4/192.0.2.1/udp/4242/quic-v1/p2p/12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq"}
		}, []string{"nat.relays: set, but nat.relay_client is false: the node would never use them"}},
		{"relay without a peer", func(c *Config) { c.NAT.Relays = []string{"/ip4/192.0.2.1/tcp/4242"} }, []string{
			"nat.relays[0]: \"/ip4/192.0.2.1/tcp/4242\" names no peer: end it with /p2p/<peer ID>, which `cuivre id` prints on that node"}},
		{"bad reachability and relay service", func(c *Config) { c.NAT.Reachability, c.NAT.RelayService = "nat", "yes" }, []string{
			`nat.reachability: "nat": use auto, public or private`, `nat.relay_service: "yes": use auto, on or off`}},
		{"api not host:port", func(c *Config) { c.API.Listen = "4243" }, []string{
			`api.listen: "4243" is not host:port: write it like 127.0.0.1:4243`}},
		{"api on every interface", func(c *Config) { c.API.Listen = "0.0.0.0:4243" }, []string{
			`api.listen: "0.0.0.0:4243" is not a loopback address: the API is plain HTTP with a bearer token, so keep it on 127.0.0.1 or [::1] and reach it through SSH`}},
		{"api bad port", func(c *Config) { c.API.Listen = "127.0.0.1:http" }, []string{
			`api.listen: "127.0.0.1:http": port "http" is not a number from 0 to 65535`}},
		{"api on ::1, any port", func(c *Config) { c.API.Listen = "[::1]:0" }, nil},
		{"api on localhost", func(c *Config) { c.API.Listen = "localhost:4243" }, nil},
		{"metrics on every interface", func(c *Config) { c.Metrics.Listen = "0.0.0.0:4244" }, nil},
		{"metrics on every interface, short", func(c *Config) { c.Metrics.Listen = ":4244" }, nil},
		{"metrics on IPv6, any port", func(c *Config) { c.Metrics.Listen = "[::]:0" }, nil},
		{"metrics on localhost", func(c *Config) { c.Metrics.Listen = "localhost:4244" }, nil},
		{"metrics not host:port", func(c *Config) { c.Metrics.Listen = "4244" }, []string{
			`metrics.listen: "4244" is not host:port: write it like 0.0.0.0:4244, or leave it empty to serve metrics at the API's /metrics only`}},
		{"metrics bad port", func(c *Config) { c.Metrics.Listen = "0.0.0.0:65536" }, []string{
			`metrics.listen: "0.0.0.0:65536": port "65536" is not a number from 0 to 65535`}},
		{"metrics no port", func(c *Config) { c.Metrics.Listen = "127.0.0.1:" }, []string{
			`metrics.listen: "127.0.0.1:": port "" is not a number from 0 to 65535`}},
		{"metrics on a host name", func(c *Config) { c.Metrics.Listen = "metrics.example.org:4244" }, []string{
			`metrics.listen: "metrics.example.org:4244": host "metrics.example.org" is not an IP address: write one, such as 0.0.0.0 for every IPv4 interface or 127.0.0.1 for this machine only`}},
		{"no detection, no machine", func(c *Config) { c.Capacity.Auto = false }, []string{
			`capacity.cpu: required when capacity.auto is false: give the machine's CPUs, such as "4"`,
			`capacity.memory: required when capacity.auto is false: give the machine's memory, such as "8Gi"`}},
		{"no detection, machine given", func(c *Config) {
			c.Capacity.Auto, c.Capacity.CPU, c.Capacity.Memory = false, ptr(CPU(4000)), ptr(Bytes(8<<30))
		}, nil},
		{"zero overrides", func(c *Config) { c.Capacity.CPU, c.Capacity.Memory = ptr(CPU(0)), ptr(Bytes(0)) }, []string{
			"capacity.cpu: 0: a node sells some CPU; leave it empty to detect it",
			"capacity.memory: 0: a node sells some memory; leave it empty to detect it"}},
		{"reserve eats the overrides", func(c *Config) { c.Capacity.CPU, c.Capacity.Memory = ptr(CPU(500)), ptr(Bytes(512<<20)) }, []string{
			"capacity.reserve.cpu: 500m keeps all of the 500m of capacity.cpu: lower it",
			"capacity.reserve.memory: 1Gi keeps all of the 512Mi of capacity.memory: lower it"}},
		{"offered_percent 0", func(c *Config) { c.Capacity.OfferedPercent = 0 }, []string{
			"capacity.offered_percent: 0: use 1 to 100 (default 80)"}},
		{"offered_percent 101", func(c *Config) { c.Capacity.OfferedPercent = 101 }, []string{
			"capacity.offered_percent: 101: use 1 to 100 (default 80)"}},
		{"lower-case currency", func(c *Config) { c.Pricing.Currency = "eur" }, []string{
			`pricing.currency: "eur" is not a currency: use a 3-letter upper-case ISO 4217 code, such as EUR`}},
		{"prices that round to nothing", func(c *Config) { c.Pricing.CPUPerHour, c.Pricing.MemoryGiBPerHour = 3599, 1 }, []string{
			"pricing.cpu_per_hour: 0.000003599 is below 0.0000036, one nano-unit a second, so it would be charged as 0: write 0 or at least 0.0000036",
			"pricing.memory_gib_per_hour: 0.000000001 is below 0.0000036, one nano-unit a second, so it would be charged as 0: write 0 or at least 0.0000036"}},
		{"free", func(c *Config) { c.Pricing.CPUPerHour, c.Pricing.MemoryGiBPerHour, c.Pricing.EgressPerGiB = 0, 0, 0 }, nil},
		{"one nano-unit a second", func(c *Config) { c.Pricing.CPUPerHour = 3600 }, nil},
		{"load factor too high", func(c *Config) { c.Pricing.LoadFactorPercent = 1001 }, []string{
			"pricing.load_factor_percent: 1001: use 0 (a fixed price) to 1000"}},
		{"egress overflowing at full load", func(c *Config) { c.Pricing.LoadFactorPercent, c.Pricing.EgressPerGiB = 1000, 1<<63 }, []string{
			"pricing: base.egress_nanos_per_gib: 9223372036854775808 overflows a uint64 of nano-units at full load with load_factor_permille 10000: lower one of them"}},
		{"upper-case region", func(c *Config) { c.Labels.Region = "FR-par" }, []string{
			`labels.region: "FR-par": use lower case ("fr-par")`}},
		{"region with a dot", func(c *Config) { c.Labels.Region = "fr.par" }, []string{
			`labels.region: "fr.par": character '.' not allowed: use a-z, 0-9 and '-', such as "fr-par"`}},
		{"region ending in -", func(c *Config) { c.Labels.Region = "fr-" }, []string{
			`labels.region: "fr-": must not start or end with '-'`}},
		{"region too long", func(c *Config) { c.Labels.Region = strings.Repeat("a", 64) }, []string{
			`labels.region: "` + strings.Repeat("a", 64) + `" is 64 characters: use at most 63`}},
		{"alpha-3 jurisdiction", func(c *Config) { c.Labels.Jurisdiction = "FRA" }, []string{
			`labels.jurisdiction: "FRA" is not an ISO 3166-1 alpha-2 code: it is the alpha-3 code of France, whose alpha-2 code is "fr"`}},
		{"uk", func(c *Config) { c.Labels.Jurisdiction = "uk" }, []string{
			`labels.jurisdiction: "uk" is not an ISO 3166-1 alpha-2 code: the United Kingdom is "gb"`}},
		{"el", func(c *Config) { c.Labels.Jurisdiction = "EL" }, []string{
			`labels.jurisdiction: "EL" is not an ISO 3166-1 alpha-2 code: Greece is "gr"`}},
		{"eu", func(c *Config) { c.Labels.Jurisdiction = "eu" }, []string{
			`labels.jurisdiction: "eu" is not an ISO 3166-1 alpha-2 code: the European Union is not a country: name the member state whose law applies, such as "fr"`}},
		{"unassigned code", func(c *Config) { c.Labels.Jurisdiction = "zz" }, []string{
			`labels.jurisdiction: "zz" is not an ISO 3166-1 alpha-2 code (e.g. "fr")`}},
		{"upper-case jurisdiction is fine", func(c *Config) { c.Labels.Jurisdiction = "DE" }, nil},
		{"bad operator", func(c *Config) { c.Labels.Operator = "Acme Corp" }, []string{
			`labels.operator: "Acme Corp": use lower case`}},
		{"bad and repeated certifications", func(c *Config) { c.Labels.Certifications = []string{"hds", "iso 27001", "hds", ""} }, []string{
			`labels.certifications[1]: "iso 27001": character ' ' not allowed: use a-z, 0-9, '-', '_' and '.'`,
			`labels.certifications[2]: "hds" repeats labels.certifications[0]`,
			"labels.certifications[3]: empty: use 1 to 63 characters a-z, 0-9, '-', '_' and '.'"}},
		{"extra labels", func(c *Config) {
			c.Labels.Extra = map[string]string{"region": "x", "Tier": "gold", "rack": "b/2", "acme.org/tier": "gold", "ok": ""}
		}, []string{
			`labels.extra["Tier"]: key "Tier": use lower case`,
			`labels.extra["ok"]: value empty: use 1 to 63 characters a-z, 0-9, '-', '_' and '.'`,
			`labels.extra["rack"]: value "b/2": character '/' not allowed: use a-z, 0-9, '-', '_' and '.'`,
			`labels.extra["region"]: "region" is set by labels.region: remove it from extra`}},
		{"certification in extra", func(c *Config) { c.Labels.Extra = map[string]string{"certification": "hds"} }, []string{
			`labels.extra["certification"]: "certification" is set by labels.certifications: remove it from extra`}},
		{"too many extra labels", func(c *Config) {
			for i := range MaxExtraLabels + 1 {
				c.Labels.Extra[string(rune('a'+i))] = "x"
			}
		}, []string{"labels.extra: 17 labels: at most 16"}},
		{"executor memory too small and too large", func(c *Config) { c.Executor.MaxMemory = 1<<20 - 1 }, []string{
			"executor.max_memory: 1048575: use 1Mi to 4Gi (what a 32-bit WebAssembly memory can address)"}},
		{"executor memory above 4Gi", func(c *Config) { c.Executor.MaxMemory = 5 << 30 }, []string{
			"executor.max_memory: 5Gi: use 1Mi to 4Gi (what a 32-bit WebAssembly memory can address)"}},
		{"negative timeout", func(c *Config) { c.Executor.MaxTimeout = Duration(-time.Second) }, []string{
			`executor.max_timeout: -1s: use a duration above 0 and at most 720h, such as "1h"`}},
		{"timeout over 30 days", func(c *Config) { c.Executor.MaxTimeout = Duration(721 * time.Hour) }, []string{
			`executor.max_timeout: 721h: use a duration above 0 and at most 720h, such as "1h"`}},
		{"scratch too large", func(c *Config) { c.Executor.MaxScratch = 65 << 30 }, []string{
			"executor.max_scratch: 65Gi: use at most 64Gi, the largest scratch a job may ask for"}},
		{"no scratch is fine", func(c *Config) { c.Executor.MaxScratch = 0 }, nil},
		{"no cache dir", func(c *Config) { c.Executor.CacheDir = "" }, []string{
			`executor.cache_dir: empty: name a directory, relative to the data directory or absolute (default "cache")`}},
		{"wholesale without a jurisdiction", func(c *Config) { c.Wholesale.Enabled = true }, []string{
			"wholesale.enabled: a tariff names the jurisdiction its slices are under: set labels.jurisdiction"}},
		{"wholesale on a requester", func(c *Config) { c.Wholesale.Enabled, c.Role, c.Labels.Jurisdiction = true, RoleRequester, "fr" }, []string{
			"wholesale.enabled: a requester sells no hardware of its own, so it has no slice to rent: set role provider, or wholesale.enabled false"}},
		{"wholesale given away", func(c *Config) { c.Wholesale.CPUPerHour, c.Wholesale.MemoryGiBPerHour = 0, 0 }, []string{
			"wholesale: cpu_per_hour and memory_gib_per_hour are both 0: a slice would be given away"}},
		{"wholesale notice and share", func(c *Config) { c.Wholesale.Notice, c.Wholesale.SharePercent = Duration(721*time.Hour), 101 }, []string{
			"wholesale.notice: 721h: use 0 to 720h",
			"wholesale.share_percent: 101: use 1 to 100"}},
		{"wholesale bills every second", func(c *Config) { c.Wholesale.BillEvery = Duration(time.Second) }, []string{
			"wholesale.bill_every: 1s: use 0 (bill only by `cuivre wholesale bill`) or at least \"1m\""}},
		{"wholesale bills by hand", func(c *Config) { c.Wholesale.BillEvery = 0 }, nil},
		{"wholesale at a price below a nano-unit a second", func(c *Config) { c.Wholesale.CPUPerHour = 3599 }, []string{
			"wholesale.cpu_per_hour: 0.000003599 is below 0.0000036, one nano-unit a second, so it would be charged as 0: write 0 or at least 0.0000036"}},
		{"wholesale site", func(c *Config) { c.Wholesale.Enabled, c.Labels.Jurisdiction = true, "fr" }, nil},
		{"wholesale rule of no country", func(c *Config) { c.Wholesale.RetailerJurisdictions = []string{"fr", "xx"} }, []string{
			`wholesale.retailer_jurisdictions[1]: "xx" is not an ISO 3166-1 alpha-2 code (e.g. "fr")`}},
		{"own retail under wholesale and retail cost", func(c *Config) {
			c.Wholesale.Enabled, c.Labels.Jurisdiction, c.Wholesale.RetailCostCPUPerHour, c.Pricing.EgressPerGiB = true, "fr", 25_000_000, 0
		}, []string{
			"pricing.cpu_per_hour: 0.04 is under the wholesale price 0.02 plus the retail cost 0.025: your own retail would undercut the retailers on your slices, which an audit shows (raise it, or lower the wholesale price)",
			"pricing.egress_per_gib: 0 is under the wholesale price 0.01 plus the retail cost 0: your own retail would undercut the retailers on your slices, which an audit shows (raise it, or lower the wholesale price)"}},
		{"log level and format", func(c *Config) { c.Log.Level, c.Log.Format = "verbose", "logfmt" }, []string{
			`log.level: "verbose": use debug, info, warn or error`,
			`log.format: "logfmt": use text or json`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.modify(&c)
			if diff := cmp.Diff(tt.want, lines(c.Validate())); diff != "" {
				t.Errorf("Validate() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTemplateIsTheDefaults(t *testing.T) {
	p := writeFile(t, ConfigFile, string(Template()))
	got, err := Load(p, nil, nil)
	if err != nil {
		t.Fatalf("Load(template) = %v", err)
	}
	if diff := cmp.Diff(Default(), got); diff != "" {
		t.Errorf("Load(template) differs from Default() (-want +got):\n%s", diff)
	}
}

// TestTemplateNamesEverySetting keeps the template complete: each setting
// appears in it, with a comment on its line or on its section's.
func TestTemplateNamesEverySetting(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Template(), &doc); err != nil {
		t.Fatal(err)
	}
	var found []string
	var walk func(n *yaml.Node, path string, commented bool)
	walk = func(n *yaml.Node, path string, commented bool) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := specyaml.JoinPath(path, k.Value)
			if _, ok := settingByPath[p]; ok {
				if !commented && k.HeadComment == "" && v.LineComment == "" {
					t.Errorf("template: %s has no comment", p)
				}
				found = append(found, p)
				continue
			}
			if v.Kind == yaml.MappingNode {
				walk(v, p, k.HeadComment != "")
			}
		}
	}
	walk(doc.Content[0], "", false)
	if diff := cmp.Diff(Paths(), found); diff != "" {
		t.Errorf("template settings (-want +got):\n%s", diff)
	}
}

func TestEnvNames(t *testing.T) {
	seen := map[string]string{}
	for _, p := range Paths() {
		name := EnvName(p)
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s both read %s", other, p, name)
		}
		if name == DirEnv {
			t.Errorf("%s reads %s, the data directory", p, name)
		}
		seen[name] = p
	}
	for path, want := range map[string]string{
		"api.listen":                  "CUIVRE_API_LISTEN",
		"labels.region":               "CUIVRE_LABELS_REGION",
		"capacity.reserve.cpu":        "CUIVRE_CAPACITY_RESERVE_CPU",
		"pricing.memory_gib_per_hour": "CUIVRE_PRICING_MEMORY_GIB_PER_HOUR",
		"nat.hole_punching":           "CUIVRE_NAT_HOLE_PUNCHING",
		"listen":                      "CUIVRE_LISTEN",
		"capacity":                    "",
		"no.such":                     "",
	} {
		if got := EnvName(path); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, "config.yaml", `
api:
  listen: 127.0.0.1:5000
labels:
  region: fr-par
  operator: file-op
  certifications: [hds]
capacity:
  offered_percent: 50
`)
	env := []string{
		"HOME=/root",
		"CUIVRE_DIR=/srv/cuivre", // the data directory, not a setting
		"CUIVRE_API_TOKEN=x",     // someone else's variable: ignored
		"CUIVRE_API_LISTEN=127.0.0.1:6000",
		"CUIVRE_LABELS_REGION=fr-lyo",
		"CUIVRE_LABELS_REGION=be-bru", // the first wins, as with os.Getenv
		"CUIVRE_LISTEN=/ip4/0.0.0.0/udp/5555/quic-v1, /ip4/0.0.0.0/tcp/5555",
		"CUIVRE_LABELS_EXTRA=tier=gold, rack=b2",
		"CUIVRE_CAPACITY_CPU=3",
		"CUIVRE_NAT_RELAY_CLIENT=false",
		"CUIVRE_NAT_HOLE_PUNCHING=false", // which needs the relay client
	}
	flags := map[string]string{
		"api.listen":           "127.0.0.1:7000",
		"capacity.cpu":         "", // a flag may unset an override
		"pricing.currency":     "CHF",
		"executor.max_timeout": "2h30m",
	}
	tests := []struct {
		name  string
		path  string
		env   []string
		flags map[string]string
		want  func(*Config)
	}{
		{"default", "", nil, nil, func(*Config) {}},
		{"file over default", file, nil, nil, func(c *Config) {
			c.API.Listen = "127.0.0.1:5000"
			c.Labels.Region, c.Labels.Operator, c.Labels.Certifications = "fr-par", "file-op", []string{"hds"}
			c.Capacity.OfferedPercent = 50
		}},
		{"env over file", file, env, nil, func(c *Config) {
			c.API.Listen = "127.0.0.1:6000"
			c.Labels.Region, c.Labels.Operator, c.Labels.Certifications = "fr-lyo", "file-op", []string{"hds"}
			c.Capacity.OfferedPercent = 50
			c.Listen = []string{"/ip4/0.0.0.0/udp/5555/quic-v1", "/ip4/0.0.0.0/tcp/5555"}
			c.Labels.Extra = map[string]string{"tier": "gold", "rack": "b2"}
			c.Capacity.CPU = ptr(CPU(3000))
			c.NAT.RelayClient, c.NAT.HolePunching = false, false
		}},
		{"flag over env", file, env, flags, func(c *Config) {
			c.API.Listen = "127.0.0.1:7000"
			c.Labels.Region, c.Labels.Operator, c.Labels.Certifications = "fr-lyo", "file-op", []string{"hds"}
			c.Capacity.OfferedPercent = 50
			c.Listen = []string{"/ip4/0.0.0.0/udp/5555/quic-v1", "/ip4/0.0.0.0/tcp/5555"}
			c.Labels.Extra = map[string]string{"tier": "gold", "rack": "b2"}
			c.NAT.RelayClient, c.NAT.HolePunching = false, false
			c.Pricing.Currency = "CHF"
			c.Executor.MaxTimeout = Duration(150 * time.Minute)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.path, tt.env, tt.flags)
			if err != nil {
				t.Fatalf("Load() = %v", err)
			}
			want := Default()
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Load() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		flags map[string]string
		want  []string
	}{
		{"unknown setting, with its line", "api:\n  listen: 127.0.0.1:4243\n  lisen: 127.0.0.1:1\n", nil, nil, []string{
			`config.yaml:3:3: api.lisen: unknown setting (did you mean "listen"?)`}},
		{"unknown section", "labels:\n  region: fr-par\nlabel:\n  region: x\n", nil, nil, []string{
			`config.yaml:3:1: label: unknown setting (did you mean "labels"?)`}},
		{"unknown and unlike anything", "telemetry: true\n", nil, nil, []string{
			"config.yaml:1:1: telemetry: unknown setting"}},
		{"repeated key", "log:\n  level: info\n  level: debug\n", nil, nil, []string{
			"config.yaml:3:3: log.level: repeated: already set at line 2"}},
		{"not YAML", "api: [\n", nil, nil, []string{
			"config.yaml:1: not valid YAML: did not find expected node content"}},
		{"two documents", "log: {level: info}\n---\nlog: {level: debug}\n", nil, nil, []string{
			"config.yaml:2: a second YAML document: a config file holds one"}},
		{"a list for a section", "nat: [autonat]\n", nil, nil, []string{
			`config.yaml:1:6: nat: found a list: nat is a mapping of settings (key: value)`}},
		{"a scalar for the file", "hello\n", nil, nil, []string{
			`config.yaml:1:1: found "hello": the file is a mapping of settings (key: value)`}},
		{"a scalar for a list", "listen: /ip4/0.0.0.0/tcp/1\n", nil, nil, []string{
			`config.yaml:1:9: listen: found "/ip4/0.0.0.0/tcp/1": write a list, such as [a, b], or one item per line after "- "`}},
		{"a list for a value", "api:\n  listen: [a, b]\n", nil, nil, []string{
			"config.yaml:2:11: api.listen: found a list: write a single value"}},
		{"empty bool", "nat:\n  autonat:\n", nil, nil, []string{
			"config.yaml:2:11: nat.autonat: empty: write a value, or remove the line to keep the default"}},
		{"bad bool", "nat:\n  autonat: yes\n", nil, nil, []string{
			`config.yaml:2:12: nat.autonat: bad boolean "yes": use true or false`}},
		{"bad number", "capacity:\n  offered_percent: 80%\n", nil, nil, []string{
			`config.yaml:2:20: capacity.offered_percent: bad number "80%": use a whole number from 0 to 4294967295`}},
		{"bad quantities", "capacity:\n  cpu: 4 cores\n  memory: 8GB\nexecutor:\n  max_timeout: 1 hour\npricing:\n  cpu_per_hour: 0.04 EUR\n", nil, nil, []string{
			`config.yaml:2:8: capacity.cpu: bad cpu "4 cores": use vCPUs ("0.5", "2") or millicores ("500m")`,
			`config.yaml:3:11: capacity.memory: bad quantity "8GB": use a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T`,
			`config.yaml:5:16: executor.max_timeout: bad duration "1 hour": write it like "1h", "90m" or "1h30m"`,
			`config.yaml:7:17: pricing.cpu_per_hour: bad amount "0.04 EUR": write the amount alone, such as "0.04": the currency is pricing.currency`}},
		{"aliases", "labels:\n  region: &r fr-par\n  operator: *r\n", nil, nil, []string{
			"config.yaml:3:13: labels.operator: anchors and aliases are not supported: write the value out"}},
		{"validation errors point at the file line", "labels:\n  jurisdiction: FRA\n  certifications:\n    - hds\n    - Bad\n", nil, nil, []string{
			`config.yaml:2:17: labels.jurisdiction: "FRA" is not an ISO 3166-1 alpha-2 code: it is the alpha-3 code of France, whose alpha-2 code is "fr"`,
			`config.yaml:5:7: labels.certifications[1]: "Bad": use lower case`}},
		{"validation errors point at the variable", "labels:\n  jurisdiction: fr\n", []string{"CUIVRE_LABELS_JURISDICTION=fra", "CUIVRE_LISTEN=/ip4/0.0.0.0/udp/1"}, nil, []string{
			`CUIVRE_LISTEN: listen[0]: "/ip4/0.0.0.0/udp/1": use QUIC v1 (/udp/<port>/quic-v1) or TCP (/tcp/<port>)`,
			`CUIVRE_LABELS_JURISDICTION: labels.jurisdiction: "fra" is not an ISO 3166-1 alpha-2 code: it is the alpha-3 code of France, whose alpha-2 code is "fr"`}},
		{"bad metrics address, with its line", "metrics:\n  listen: 0.0.0.0:99999\n", nil, nil, []string{
			`config.yaml:2:11: metrics.listen: "0.0.0.0:99999": port "99999" is not a number from 0 to 65535`}},
		{"a flag replaces the file's list", "listen:\n  - /ip4/0.0.0.0/udp/1\n", nil, map[string]string{"listen": "/ip4/0.0.0.0/udp/2"}, []string{
			`flag: listen[0]: "/ip4/0.0.0.0/udp/2": use QUIC v1 (/udp/<port>/quic-v1) or TCP (/tcp/<port>)`}},
		{"bad env values", "", []string{"CUIVRE_NAT_AUTONAT=maybe", "CUIVRE_LABELS_EXTRA=tier"}, nil, []string{
			`CUIVRE_NAT_AUTONAT: nat.autonat: bad boolean "maybe": use true or false`,
			`CUIVRE_LABELS_EXTRA: labels.extra: bad entry "tier": write key=value pairs separated by commas`}},
		{"unknown flag", "", nil, map[string]string{"api.lisen": "x", "capacity": "1"}, []string{
			`flag: api.lisen: no such setting (did you mean "api.listen"?)`,
			"flag: capacity: a section, not a setting: name one of capacity.auto, capacity.cpu, capacity.memory, capacity.scratch, capacity.reserve.cpu, capacity.reserve.memory, capacity.offered_percent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(p, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p, tt.env, tt.flags)
			got := lines(err)
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], dir+string(filepath.Separator), "")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Load() errors (-want +got):\n%s", diff)
			}
			if err != nil && !cmp.Equal(c, Config{}) {
				t.Errorf("Load() failed but returned a config: %+v", c)
			}
		})
	}
}

func TestLoadEmptyFiles(t *testing.T) {
	for _, data := range []string{"", "# nothing but a comment\n", "---\n", "nat:\nlabels:\n"} {
		got, err := Load(writeFile(t, "c.yaml", data), nil, nil)
		if err != nil {
			t.Errorf("Load(%q) = %v", data, err)
			continue
		}
		if diff := cmp.Diff(Default(), got); diff != "" {
			t.Errorf("Load(%q) (-want +got):\n%s", data, diff)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "cuivre init") {
		t.Errorf("Load(missing) = %v, want a hint to run cuivre init", err)
	}
}

func TestExampleProfilesLoad(t *testing.T) {
	paths, err := filepath.Glob("../../examples/nodes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	if diff := cmp.Diff([]string{"health.yaml", "sme.yaml", "sovereign.yaml"}, names); diff != "" {
		t.Fatalf("profiles (-want +got):\n%s", diff)
	}
	certs := map[string]string{"health.yaml": "hds", "sovereign.yaml": "secnumcloud"}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			c, err := Load(p, nil, nil)
			if err != nil {
				t.Fatalf("Load(%s) = %v", p, err)
			}
			if c.Labels.Jurisdiction == "" || c.Labels.Region == "" || c.Labels.Operator == "" {
				t.Errorf("profile %s leaves a main label empty: %+v", p, c.Labels)
			}
			if want, ok := certs[filepath.Base(p)]; ok && (len(c.Labels.Certifications) == 0 || c.Labels.Certifications[0] != want) {
				t.Errorf("profile %s certifications = %v, want %s first", p, c.Labels.Certifications, want)
			}
			if _, err := c.Market("provider", machine); err != nil {
				t.Errorf("profile %s on a 16-core 64Gi machine: Market() = %v", p, err)
			}
		})
	}
}

func TestQuantitiesRoundTrip(t *testing.T) {
	type textual interface {
		MarshalText() ([]byte, error)
	}
	tests := []struct {
		in   string
		into interface {
			textual
			UnmarshalText([]byte) error
		}
		want string
	}{
		{"2", new(CPU), "2"},
		{"0.5", new(CPU), "500m"},
		{"3500m", new(CPU), "3500m"},
		{"8Gi", new(Bytes), "8Gi"},
		{"1.5Gi", new(Bytes), "1536Mi"},
		{"1000", new(Bytes), "1000"},
		{"1k", new(Bytes), "1000"},
		{"0", new(Bytes), "0"},
		{"90m", new(Duration), "90m"},
		{"1h30m", new(Duration), "90m"},
		{"2h", new(Duration), "2h"},
		{"1.5s", new(Duration), "1.5s"},
		{"0.04", new(Money), "0.04"},
		{"12", new(Money), "12"},
		{"0.000000001", new(Money), "0.000000001"},
		{"18446744073.709551615", new(Money), "18446744073.709551615"},
	}
	for _, tt := range tests {
		if err := tt.into.UnmarshalText([]byte(tt.in)); err != nil {
			t.Errorf("UnmarshalText(%q) = %v", tt.in, err)
			continue
		}
		got, _ := tt.into.MarshalText()
		if string(got) != tt.want {
			t.Errorf("%q reads back as %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", "-1", ".5", "1.", "1e3", "0.0000000001", "18446744073.709551616", "1,5", "+1"} {
		var m Money
		if err := m.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("Money.UnmarshalText(%q) = %d, want an error", bad, m)
		}
	}
}

// TestYAMLMarshalReadsBack checks that a Config marshalled with yaml.v3 (as a
// `cuivre config show` would print it) loads back to itself.
func TestYAMLMarshalReadsBack(t *testing.T) {
	c := Default()
	c.Capacity.CPU, c.Capacity.Scratch = ptr(CPU(3500)), ptr(Bytes(0))
	c.Labels.Extra = map[string]string{"tier": "gold"}
	c.Labels.Certifications = []string{"hds", "iso27001"}
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Load(writeFile(t, "c.yaml", string(data)), nil, nil)
	if err != nil {
		t.Fatalf("Load(yaml.Marshal(c)) = %v\n%s", err, data)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s\n%s", diff, data)
	}
}

// TestPaths pins the settings, and so the environment variables that name
// them: renaming one breaks operators' unit files.
func TestPaths(t *testing.T) {
	want := []string{
		"role",
		"listen", "bootstrap",
		"nat.autonat", "nat.hole_punching", "nat.relay_client", "nat.port_mapping",
		"nat.reachability", "nat.relays", "nat.relay_service",
		"nat.relay_limits.reservations", "nat.relay_limits.circuits_per_peer",
		"nat.relay_limits.circuit_duration", "nat.relay_limits.circuit_data", "nat.private_addrs",
		"api.listen",
		"metrics.listen",
		"capacity.auto", "capacity.cpu", "capacity.memory", "capacity.scratch",
		"capacity.reserve.cpu", "capacity.reserve.memory", "capacity.offered_percent",
		"pricing.currency", "pricing.cpu_per_hour", "pricing.memory_gib_per_hour",
		"pricing.egress_per_gib", "pricing.load_factor_percent",
		"labels.region", "labels.jurisdiction", "labels.operator", "labels.certifications", "labels.extra",
		"executor.max_memory", "executor.max_timeout", "executor.max_scratch", "executor.cache_dir",
		"data.max_size", "data.keep",
		"limits.offers_per_peer", "limits.offer_share_percent", "limits.offer_grace", "limits.standing_expired",
		"limits.requests_per_second", "limits.block_requests_per_second", "limits.conns_per_ip", "limits.loopback",
		"wholesale.enabled", "wholesale.cpu_per_hour", "wholesale.memory_gib_per_hour", "wholesale.egress_per_gib",
		"wholesale.retail_cost_cpu_per_hour", "wholesale.retail_cost_memory_gib_per_hour", "wholesale.min_cpu",
		"wholesale.min_memory", "wholesale.min_period", "wholesale.notice", "wholesale.bill_every", "wholesale.share_percent", "wholesale.retailer_jurisdictions",
		"log.level", "log.format",
	}
	if diff := cmp.Diff(want, Paths()); diff != "" {
		t.Errorf("Paths() (-want +got):\n%s", diff)
	}
}

func TestTariffTerms(t *testing.T) {
	c := Default()
	c.Wholesale.Enabled, c.Wholesale.RetailCostCPUPerHour, c.Wholesale.RetailerJurisdictions = true, 10_000_000, []string{"FR", "be", "fr"}
	c.Labels = Labels{Region: "fr-par", Jurisdiction: "FR", Operator: "acme", Certifications: []string{"secnumcloud", "hds"}}
	sold := scheduler.Resources{CPUMillis: 8000, MemoryBytes: 32 << 30, ScratchBytes: 100 << 30}
	got := c.Tariff(sold)
	want := TariffTerms{
		Price:      scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 5555, MemoryNanosPerGiBSecond: 694, EgressNanosPerGiB: 10_000_000},
		RetailCost: scheduler.Price{Currency: "EUR", CPUNanosPerSecond: 2777},
		MinSlice:   scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 30},
		MinPeriod:  time.Hour,
		Notice:     24 * time.Hour,
		Capacity:   scheduler.Resources{CPUMillis: 4000, MemoryBytes: 16 << 30, ScratchBytes: 50 << 30},
		// The operator is the retailer's own, not the site's.
		Labels: scheduler.NewLabels(scheduler.Label{Key: "certification", Value: "secnumcloud"},
			scheduler.Label{Key: "jurisdiction", Value: "fr"}, scheduler.Label{Key: "region", Value: "fr-par"}),
		RetailerJurisdictions: []string{"be", "fr"}, // lower case, sorted, once each
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tariff (-want +got):\n%s", diff)
	}
}
