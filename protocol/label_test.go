package protocol

import (
	"strings"
	"testing"
)

func TestCheckLabel(t *testing.T) {
	long := strings.Repeat("a", MaxLabelLen)
	tests := []struct {
		s          string
		key, value string // "" when accepted, else the error
	}{
		{s: "fr-par"},
		{s: "iso_27001.v2"},
		{s: long},
		{s: "tier/2", value: `"tier/2": character '/' not allowed: use a-z, 0-9, '-', '_' and '.'`},
		{s: "", key: "empty: use 1 to 63 characters a-z, 0-9, '-', '_', '.' and '/'", value: "empty: use 1 to 63 characters a-z, 0-9, '-', '_' and '.'"},
		{s: long + "a", key: "64 characters is too long: use at most 63", value: "64 characters is too long: use at most 63"},
		{s: "FR", key: `"FR": use lower case`, value: `"FR": use lower case`},
		{s: "gold plated", key: `"gold plated": character ' ' not allowed: use a-z, 0-9, '-', '_', '.' and '/'`, value: `"gold plated": character ' ' not allowed: use a-z, 0-9, '-', '_' and '.'`},
		{s: "é", key: `"é": character 'é' not allowed: use a-z, 0-9, '-', '_', '.' and '/'`, value: `"é": character 'é' not allowed: use a-z, 0-9, '-', '_' and '.'`},
	}
	check := func(what, s string, err error, want string) {
		t.Helper()
		switch {
		case want == "" && err != nil:
			t.Errorf("%s %q: %v", what, s, err)
		case want != "" && (err == nil || err.Error() != want):
			t.Errorf("%s %q: got %v, want %q", what, s, err, want)
		}
	}
	for _, tt := range tests {
		check("key", tt.s, CheckLabelKey(tt.s), tt.key)
		check("value", tt.s, CheckLabelValue(tt.s), tt.value)
		// Every label value is a facet value, as SPEC 4.3 promises.
		if CheckLabelValue(tt.s) == nil {
			if _, err := NewFacetKey(FacetRegion, tt.s, 0); err != nil {
				t.Errorf("label value %q is not a facet value: %v", tt.s, err)
			}
		}
	}
}
