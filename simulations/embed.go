package simulations

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
)

// Scenarios holds the scenario files of simulations/scenarios, so that a
// binary can run them without the source tree.
//
//go:embed scenarios/*.yaml
var Scenarios embed.FS

// LoadEmbedded parses one of the embedded scenarios by name ("small" for
// scenarios/small.yaml). The caller owns the result.
func LoadEmbedded(name string) (*Scenario, error) {
	file := path.Join("scenarios", name+".yaml")
	data, err := Scenarios.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("scenario %q: %w (the embedded ones are in simulations/scenarios)", name, err)
	}
	return ParseScenario(file, data, func(p string) ([]byte, error) {
		return fs.ReadFile(Scenarios, path.Join("scenarios", p))
	})
}

// BenchScenario is the scenario of `cuivre bench`: small with ten times its
// providers (10,000) and twice its jobs (40,000), a mid-size run of about
// ten seconds.
func BenchScenario() (*Scenario, error) {
	sc, err := LoadEmbedded("small")
	if err != nil {
		return nil, err
	}
	for i := range sc.Classes {
		sc.Classes[i].Count *= 10
	}
	sc.Workload.Jobs *= 2
	sc.Name = "small-x10"
	return sc, nil
}
