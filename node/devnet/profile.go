package devnet

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/scheduler"
)

// Profile is a kind of provider in a devnet: where it is and who runs it
// (labels), what it sells (capacity) and at what price. Labels and Pricing
// are node/config's own types, spelt in YAML as in a node's config.yaml, so a
// section can be copied from one to the other; their fields are promoted, so
// p.Region and p.CPUPerHour read as one would expect.
type Profile struct {
	// Name names the profile in listings, such as "sme". Required; unique
	// within a file.
	Name string `yaml:"name"`
	// Weight is the profile's share of the nodes after the first
	// len(profiles), which take one profile each. Default (0) 1.
	Weight int `yaml:"weight"`
	// Labels: region, jurisdiction, operator, certifications (the first is
	// announced), extra.
	config.Labels `yaml:"labels"`
	// Capacity is what the node sells.
	Capacity `yaml:"capacity"`
	// Pricing is per hour; the currency defaults to EUR.
	config.Pricing `yaml:"pricing"`
}

// Capacity is what a devnet node sells, declared rather than detected: the
// devnet's nodes share one machine whatever they claim.
type Capacity struct {
	// CPU as vCPUs ("8", "0.5") or millicores ("500m"). Required.
	CPU config.CPU `yaml:"cpu"`
	// Memory such as "32Gi". Required.
	Memory config.Bytes `yaml:"memory"`
	// Scratch, the disk sold for job outputs, such as "50Gi". Default none.
	Scratch config.Bytes `yaml:"scratch"`
}

// Listen is the one address every devnet node listens on: QUIC v1 on
// loopback, a port of its own.
const Listen = "/ip4/127.0.0.1/udp/0/quic-v1"

// Config returns the node configuration the profile stands for: its labels,
// capacity (auto off, no reserve, all of it offered) and prices, listening on
// Listen, without NAT traversal, its API on 127.0.0.1:0, and the other
// settings at their defaults. The caller owns the result.
func (p Profile) Config() config.Config {
	c := config.Default()
	c.Listen = []string{Listen}
	c.NAT = config.NAT{}
	c.API.Listen = "127.0.0.1:0"
	cpu, mem, scratch := p.CPU, p.Memory, p.Scratch
	c.Capacity = config.Capacity{CPU: &cpu, Memory: &mem, Scratch: &scratch, OfferedPercent: 100}
	c.Labels = p.Labels
	c.Pricing = p.Pricing
	if c.Pricing.Currency == "" {
		c.Pricing.Currency = "EUR"
	}
	return c
}

// Market returns the scheduler's market configuration of a node of this
// profile, through config.Config.Market: labels sorted, prices converted to
// nano-units per second, a fresh random Seed. provider is the node's binary
// peer ID.
func (p Profile) Market(provider string) (scheduler.MarketConfig, error) {
	if err := p.check(); err != nil {
		return scheduler.MarketConfig{}, err
	}
	m, err := p.Config().Market(provider, scheduler.Resources{})
	if err != nil {
		return scheduler.MarketConfig{}, fmt.Errorf("profile %s: %w", p.Name, err)
	}
	return m, nil
}

// Validate reports what is wrong with the profile, naming each field.
func (p Profile) Validate() error {
	_, err := p.Market("validate")
	return err
}

// check reports what config.Config.Validate would word for a daemon that
// detects its machine.
func (p Profile) check() error {
	var errs []error
	if p.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if p.Weight < 0 {
		errs = append(errs, fmt.Errorf("weight %d: use a positive weight, or leave it out for 1", p.Weight))
	}
	if p.CPU == 0 {
		errs = append(errs, errors.New(`capacity.cpu: required, such as "8"`))
	}
	if p.Memory == 0 {
		errs = append(errs, errors.New(`capacity.memory: required, such as "32Gi"`))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("profile %q: %w", p.Name, err)
	}
	return nil
}

// profileFile is the layout of a profile file.
type profileFile struct {
	Profiles []Profile `yaml:"profiles"`
}

// ParseProfiles reads a profile file (see examples/devnet/profiles.yaml):
// a list under the key "profiles". Unknown keys are errors, so a typo does
// not pass for a default. Every profile is validated. The caller owns the
// result.
func ParseProfiles(data []byte) ([]Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f profileFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no profiles: list them under the key profiles")
		}
		return nil, err
	}
	if len(f.Profiles) == 0 {
		return nil, errors.New("no profiles: list them under the key profiles")
	}
	seen := map[string]bool{}
	var errs []error
	for i, p := range f.Profiles {
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("profiles[%d]: %w", i, err))
		} else if seen[p.Name] {
			errs = append(errs, fmt.Errorf("profiles[%d]: name %q repeats an earlier profile", i, p.Name))
		}
		seen[p.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f.Profiles, nil
}

// LoadProfiles reads the profile file at path (ParseProfiles).
func LoadProfiles(path string) ([]Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ps, err := ParseProfiles(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}

// profilesYAML is a copy of examples/devnet/profiles.yaml (a test keeps the
// two equal): the room rules keep node from importing examples, and go:embed
// does not reach outside the package directory.
//
//go:embed profiles.yaml
var profilesYAML []byte

// DefaultProfiles returns the profiles of examples/devnet/profiles.yaml,
// embedded in the binary: a sovereign subsidised site, a health-data host,
// an SME, a regional host and a cheap small one, in five regions and four
// jurisdictions. Each call returns a fresh slice, which the caller owns.
func DefaultProfiles() []Profile {
	ps, err := ParseProfiles(profilesYAML)
	if err != nil {
		panic(fmt.Sprintf("devnet: the embedded profiles.yaml is invalid: %v", err)) // a test proves it is not
	}
	return ps
}

// Profiles are the default profiles (DefaultProfiles), for callers that only
// read them.
var Profiles = DefaultProfiles()

// Assign returns the profile index of each of n nodes: node i takes profile i
// while i < len(profiles), so a devnet at least as large as the file has one
// of each; later nodes are dealt by smooth weighted round-robin (nginx's),
// which interleaves profiles in proportion to their weights. With equal
// weights, node i takes profile i mod len(profiles). Deterministic.
func Assign(profiles []Profile, n int) []int {
	out := make([]int, 0, n)
	for i := 0; i < n && i < len(profiles); i++ {
		out = append(out, i)
	}
	if len(profiles) == 0 {
		return out
	}
	weight := func(p Profile) int { return max(p.Weight, 1) }
	total := 0
	for _, p := range profiles {
		total += weight(p)
	}
	current := make([]int, len(profiles))
	for len(out) < n {
		best := 0
		for j, p := range profiles {
			current[j] += weight(p)
			if current[j] > current[best] {
				best = j
			}
		}
		current[best] -= total
		out = append(out, best)
	}
	return out
}
