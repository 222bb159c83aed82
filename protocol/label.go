package protocol

import "fmt"

// The label rule (SPEC 5): a label key (a label's name, a selector key, a
// spread attribute) is 1 to MaxLabelLen bytes of a-z, 0-9, '-', '_', '.' and
// '/'; a label value is the same without '/', so that every value a
// constraint names is also a valid DHT facet value (SPEC 4.3). Nothing is
// lower-cased: a label in upper case is refused, wherever it is written (a
// job, a node's config, a simulator scenario), so that what one reader
// accepts every other reads the same.
//
// The errors say what is wrong and how to write it instead, without a code:
// the caller names the field.

const (
	labelKeyChars   = "a-z, 0-9, '-', '_', '.' and '/'"
	labelValueChars = "a-z, 0-9, '-', '_' and '.'"
)

// CheckLabelKey checks that s is a label key.
func CheckLabelKey(s string) error { return checkLabel(s, true) }

// CheckLabelValue checks that s is a label value.
func CheckLabelValue(s string) error { return checkLabel(s, false) }

func checkLabel(s string, key bool) error {
	allowed := labelValueChars
	if key {
		allowed = labelKeyChars
	}
	if s == "" {
		return fmt.Errorf("empty: use 1 to %d characters %s", MaxLabelLen, allowed)
	}
	if len(s) > MaxLabelLen {
		return fmt.Errorf("%d characters is too long: use at most %d", len(s), MaxLabelLen)
	}
	for _, r := range s {
		if isValueRune(r) || key && r == '/' {
			continue
		}
		if r >= 'A' && r <= 'Z' {
			return fmt.Errorf("%s: use lower case", Quote(s))
		}
		return fmt.Errorf("%s: character %q not allowed: use %s", Quote(s), r, allowed)
	}
	return nil
}

// isValueRune reports whether r may be part of a label value or a facet
// value.
func isValueRune(r rune) bool {
	return isLower(r) || isDigit(r) || r == '-' || r == '_' || r == '.'
}
