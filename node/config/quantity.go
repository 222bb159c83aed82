package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cuivre/cuivre/protocol"
)

// The human quantities of a config file. Each reads and writes itself as text
// (encoding.TextMarshaler), so YAML, environment variables and flags all take
// the same spelling, and a value written out reads back to itself.

// CPU is an amount of CPU in millicores, written as vCPUs ("2", "0.5") or
// millicores ("500m"), as protocol.ParseCPU reads it.
type CPU uint64

// Millis returns c in millicores.
func (c CPU) Millis() uint64 { return uint64(c) }

// String writes whole vCPUs as a plain number ("2") and anything else in
// millicores ("1500m").
func (c CPU) String() string {
	if c%1000 == 0 {
		return strconv.FormatUint(uint64(c/1000), 10)
	}
	return strconv.FormatUint(uint64(c), 10) + "m"
}

// MarshalText implements encoding.TextMarshaler.
func (c CPU) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *CPU) UnmarshalText(b []byte) error {
	n, err := protocol.ParseCPU(string(b))
	if err != nil {
		return err
	}
	*c = CPU(n)
	return nil
}

// Bytes is an amount of memory or disk in bytes, written as
// protocol.ParseQuantity reads it: "8Gi", "512Mi", "1.5G", "4096".
type Bytes uint64

// String writes the largest binary suffix that divides b exactly ("8Gi"), or
// plain bytes ("1000").
func (b Bytes) String() string {
	if b != 0 && b%1024 == 0 {
		return protocol.FormatBytes(uint64(b))
	}
	return strconv.FormatUint(uint64(b), 10)
}

// MarshalText implements encoding.TextMarshaler.
func (b Bytes) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *Bytes) UnmarshalText(text []byte) error {
	n, err := protocol.ParseQuantity(string(text))
	if err != nil {
		return err
	}
	*b = Bytes(n)
	return nil
}

// Duration is a time.Duration written as time.ParseDuration reads it: "1h",
// "90m", "1h30m".
type Duration time.Duration

// String writes d in its largest whole unit ("1h", "90m", "45s"), or as
// time.Duration does when it has none.
func (d Duration) String() string {
	for _, u := range []struct {
		unit time.Duration
		s    string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d != 0 && time.Duration(d)%u.unit == 0 {
			return strconv.FormatInt(int64(time.Duration(d)/u.unit), 10) + u.s
		}
	}
	return time.Duration(d).String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf(`bad duration %q: write it like "1h", "90m" or "1h30m"`, b)
	}
	*d = Duration(v)
	return nil
}

// Money is a sum of money in nano-units of a currency (SPEC 5.5), written as
// a plain decimal amount with at most 9 decimals: "0.04", "12", "0.000005".
// The currency is given apart, in Pricing.Currency.
type Money uint64

// String writes m with the trailing zeros of its decimals dropped.
func (m Money) String() string {
	s := strconv.FormatUint(uint64(m)/1e9, 10)
	if frac := uint64(m) % 1e9; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%09d", frac), "0")
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (m Money) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, with
// protocol.ParseAmount.
func (m *Money) UnmarshalText(b []byte) error {
	s := string(b)
	if strings.ContainsAny(s, " \t") {
		return fmt.Errorf(`bad amount %q: write the amount alone, such as "0.04": the currency is pricing.currency`, s)
	}
	n, err := protocol.ParseAmount(s)
	if err != nil {
		return err
	}
	*m = Money(n)
	return nil
}

// digits reports whether s is only ASCII digits (true for "").
func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
