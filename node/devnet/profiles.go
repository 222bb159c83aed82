package devnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/cuivre/cuivre/protocol"
)

// profileFile is the YAML form of a list of profiles (examples/devnet).
type profileFile struct {
	Profiles []struct {
		Name             string `yaml:"name"`
		Region           string `yaml:"region"`
		Operator         string `yaml:"operator"`
		Certification    string `yaml:"certification"`
		CPU              string `yaml:"cpu"`
		Memory           string `yaml:"memory"`
		CPUPerHour       string `yaml:"cpu_per_hour"`
		MemoryGiBPerHour string `yaml:"memory_gib_per_hour"`
	} `yaml:"profiles"`
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)*$`)

// LoadProfiles reads a profile file. Every error names the profile and the
// field.
func LoadProfiles(path string) ([]Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f profileFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.Profiles) == 0 {
		return nil, fmt.Errorf("%s: no profiles", path)
	}
	var out []Profile
	var errs []error
	for i, p := range f.Profiles {
		bad := func(field string, err error) {
			errs = append(errs, fmt.Errorf("%s: profiles[%d] (%s).%s: %w", path, i, p.Name, field, err))
		}
		pr := Profile{Name: p.Name, Region: p.Region, Operator: p.Operator, Certification: p.Certification}
		if !regionRE.MatchString(p.Region) {
			bad("region", fmt.Errorf("%q: write a lower-case region whose first two letters are its jurisdiction, e.g. fr-par", p.Region))
		}
		if p.Name == "" || p.Operator == "" {
			bad("name", errors.New("a profile needs a name and an operator"))
		}
		if pr.CPUMillis, err = protocol.ParseCPU(p.CPU); err != nil {
			bad("cpu", err)
		}
		if pr.MemoryBytes, err = protocol.ParseQuantity(p.Memory); err != nil {
			bad("memory", err)
		}
		if pr.CPUPrice, err = perSecond(p.CPUPerHour); err != nil {
			bad("cpu_per_hour", err)
		}
		if pr.MemoryPrice, err = perSecond(p.MemoryGiBPerHour); err != nil {
			bad("memory_gib_per_hour", err)
		}
		out = append(out, pr)
	}
	return out, errors.Join(errs...)
}

// perSecond turns a price per hour in euros into nano-euros per second,
// rounded down (never more than written).
func perSecond(perHour string) (uint64, error) {
	n, err := protocol.ParseAmount(perHour)
	if err != nil {
		return 0, err
	}
	return protocol.PerSecond(n), nil
}
