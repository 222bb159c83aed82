package cuivre_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multiformats/go-multiaddr"

	"github.com/cuivre/cuivre/scheduler"
)

// TestSpecDefaults: the rows of SPEC 7's reference defaults named here give
// the defaults the code runs with, so that the text cannot drift from the
// code again (it gave the lease expiry as now + 2 s while the requester
// used its one-minute start timeout).
func TestSpecDefaults(t *testing.T) {
	spec, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	cfg := scheduler.Config{}.WithDefaults()
	for _, c := range []struct {
		row  string // how the row's first cell begins
		code time.Duration
	}{
		{"requester offer wait", cfg.OfferTimeout},
		{"requester lease-answer timeout", cfg.LeaseTimeout},
		{"`Lease.expires_at_ms - now`", cfg.StartTimeout},
	} {
		cells := specRow(string(spec), c.row)
		if cells == nil {
			t.Errorf("SPEC 7 has no reference default %q", c.row)
			continue
		}
		got, err := specDuration(cells[1])
		if err != nil || got != c.code {
			t.Errorf("SPEC 7, %q: %q (%v), the code uses %v", c.row, cells[1], err, c.code)
		}
	}
}

// specRow returns the cells of the first row of a table in SPEC whose first
// cell begins with prefix, nil if none does.
func specRow(spec, prefix string) []string {
	for line := range strings.Lines(spec) {
		if rest, ok := strings.CutPrefix(line, "| "+prefix); ok && strings.Count(rest, "|") >= 2 {
			cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			return cells
		}
	}
	return nil
}

// specDuration reads a duration as SPEC writes it: a number and a unit, ms,
// s or minute(s).
func specDuration(s string) (time.Duration, error) {
	num, unit, _ := strings.Cut(s, " ")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, err
	}
	switch unit {
	case "ms":
		return time.Duration(n) * time.Millisecond, nil
	case "s":
		return time.Duration(n) * time.Second, nil
	case "minute", "minutes":
		return time.Duration(n) * time.Minute, nil
	}
	return 0, strconv.ErrSyntax
}

// TestSpecMultiaddrs: every binary multiaddr SPEC writes out, as "`hex` =
// `/text`", decodes to that text with go-multiaddr, and encodes back to
// those bytes (SPEC 4.4 once gave /quic's code for /quic-v1).
func TestSpecMultiaddrs(t *testing.T) {
	spec, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	pairs := regexp.MustCompile("`([0-9a-f ]+)` = `(/[^`]+)`").FindAllStringSubmatch(string(spec), -1)
	if len(pairs) == 0 {
		t.Fatal("SPEC.md writes out no binary multiaddr")
	}
	for _, p := range pairs {
		b, err := hex.DecodeString(strings.ReplaceAll(p[1], " ", ""))
		if err != nil {
			t.Errorf("SPEC %q: %v", p[1], err)
			continue
		}
		m, err := multiaddr.NewMultiaddrBytes(b)
		if err != nil || m.String() != p[2] {
			t.Errorf("SPEC: %q decodes to %v (%v), the text says %s", p[1], m, err, p[2])
			continue
		}
		want, err := multiaddr.NewMultiaddr(p[2])
		if err != nil {
			t.Errorf("SPEC: %s: %v", p[2], err)
		} else if !bytes.Equal(want.Bytes(), b) {
			t.Errorf("SPEC: %s encodes to %x, the text says %s", p[2], want.Bytes(), p[1])
		}
	}
}
