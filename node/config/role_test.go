package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRole: the role is provider by default, requester when the file, the
// environment (CUIVRE_ROLE) or a flag says so, and anything else is refused
// with the setting, where it came from, and the values allowed.
func TestRole(t *testing.T) {
	if got := Default().Role; got != RoleProvider {
		t.Errorf("default role %q, want %q", got, RoleProvider)
	}
	requester := func() Config { c := Default(); c.Role = RoleRequester; return c }()
	file := writeFile(t, ConfigFile, "role: requester\n")
	for _, tc := range []struct {
		name  string
		path  string
		env   []string
		flags map[string]string
	}{
		{"file", file, nil, nil},
		{"environment", "", []string{"CUIVRE_ROLE=requester"}, nil},
		{"flag", "", nil, map[string]string{"role": "requester"}},
	} {
		got, err := Load(tc.path, tc.env, tc.flags)
		if err != nil {
			t.Fatalf("%s: Load() = %v", tc.name, err)
		}
		if diff := cmp.Diff(requester, got); diff != "" {
			t.Errorf("%s: Load() (-want +got):\n%s", tc.name, diff)
		}
	}
	for _, tc := range []struct {
		name string
		path string
		env  []string
		want string
	}{
		{"file", writeFile(t, ConfigFile, "# a node\nrole: buyer\n"), nil,
			`config.yaml:2:7: role: "buyer": use provider (sells capacity, and buys), requester (only buys) or retailer (sells on slices rented from a site)`},
		{"environment", "", []string{"CUIVRE_ROLE=Requester"},
			`CUIVRE_ROLE: role: "Requester": use provider (sells capacity, and buys), requester (only buys) or retailer (sells on slices rented from a site)`},
	} {
		_, err := Load(tc.path, tc.env, nil)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%s: Load() = %v, want an error ending %q", tc.name, err, tc.want)
		}
	}
}

// TestTemplateFor: the template of a requester differs from the provider's
// in its role line only, and reads back as the defaults with that role.
func TestTemplateFor(t *testing.T) {
	for _, role := range Roles() {
		b, err := TemplateFor(role)
		if err != nil {
			t.Fatalf("TemplateFor(%q) = %v", role, err)
		}
		got, err := Load(writeFile(t, ConfigFile, string(b)), nil, nil)
		if err != nil {
			t.Fatalf("Load(TemplateFor(%q)) = %v", role, err)
		}
		want := Default()
		want.Role = role
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Load(TemplateFor(%q)) (-want +got):\n%s", role, diff)
		}
		old, now := strings.Split(string(Template()), "\n"), strings.Split(string(b), "\n")
		if len(old) != len(now) {
			t.Fatalf("TemplateFor(%q) has %d lines, the template %d", role, len(now), len(old))
		}
		for i := range old {
			if old[i] != now[i] && (old[i] != "role: provider" || now[i] != "role: "+role) {
				t.Errorf("TemplateFor(%q) line %d: %q, the template's %q", role, i+1, now[i], old[i])
			}
		}
	}
	if b, err := TemplateFor(RoleProvider); err != nil || !bytes.Equal(b, Template()) {
		t.Errorf("TemplateFor(provider) is not the template (%v)", err)
	}
	if _, err := TemplateFor("seller"); err == nil || err.Error() != `role "seller": use provider, requester or retailer` {
		t.Errorf("TemplateFor(seller) = %v", err)
	}
}

// TestInitRole: init of a requester writes the requester's template, which
// Load reads back as a requester; an unknown role writes nothing.
func TestInitRole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	res, err := InitRole(dir, false, RoleRequester)
	if err != nil || !res.ConfigWritten {
		t.Fatalf("InitRole(requester) = %+v, %v", res, err)
	}
	c, err := Load(res.ConfigPath, nil, nil)
	if err != nil || c.Role != RoleRequester {
		t.Fatalf("Load(config.yaml) = role %q, %v; want requester", c.Role, err)
	}
	if _, err := LoadIdentity(dir); err != nil {
		t.Fatalf("LoadIdentity() = %v", err)
	}

	other := filepath.Join(t.TempDir(), "other")
	_, err = InitRole(other, false, "seller")
	if err == nil || err.Error() != `init: role "seller": use provider, requester or retailer` {
		t.Errorf("InitRole(seller) = %v", err)
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("InitRole(seller) left %s behind (%v)", other, err)
	}
}
