package protocol

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cuivre/cuivre/protocol/pb"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  string
	}{
		{in: "0", want: 0},
		{in: "4096", want: 4096},
		{in: "128Mi", want: 128 << 20},
		{in: "1.5Gi", want: 3 << 29},
		{in: "1Ki", want: 1024},
		{in: "2Ti", want: 2 << 40},
		{in: "1k", want: 1000},
		{in: "1.5M", want: 1_500_000},
		{in: "3G", want: 3e9},
		{in: "1T", want: 1e12},
		{in: "16777215Ti", want: 16777215 << 40},
		{in: "18446744073709551615", want: 1<<64 - 1},
		{in: "18446744073709551616", err: "too large"},
		{in: "16777216Ti", err: "too large"},
		{in: "0.1Ki", err: "not a whole number of bytes"},
		{in: "12Q", err: `bad quantity "12Q": use a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T`},
		{in: "", err: "bad quantity"},
		{in: "Mi", err: "bad quantity"},
		{in: "-1Mi", err: "bad quantity"},
		{in: "1e3", err: "bad quantity"},
		{in: "1 Mi", err: "bad quantity"},
		{in: "1MiB", err: "bad quantity"},
		{in: "1K", err: "bad quantity"},
		{in: ".5Gi", err: "bad quantity"},
		{in: "1.Gi", err: "bad quantity"},
		{in: "0x10", err: "bad quantity"},
		{in: strings.Repeat("9", 41), err: "bad quantity"},
	}
	for _, tt := range tests {
		got, err := ParseQuantity(tt.in)
		checkParse(t, "ParseQuantity", tt.in, got, tt.want, err, tt.err)
	}
}

func TestParseQuantityCPU(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  string
	}{
		{in: "500m", want: 500},
		{in: "0.5", want: 500},
		{in: "2", want: 2000},
		{in: "1.25", want: 1250},
		{in: "0.001", want: 1},
		{in: "0", want: 0},
		{in: "18446744073709551615m", want: 1<<64 - 1},
		{in: "18446744073709551616m", err: "too large"},
		{in: "18446744073709552", err: "too large"},
		{in: "0.0005", err: "finer than a millicore"},
		{in: "1.5m", err: "finer than a millicore"},
		{in: "two", err: `bad cpu "two": use vCPUs ("0.5", "2") or millicores ("500m")`},
		{in: "-1", err: "bad cpu"},
		{in: "m", err: "bad cpu"},
		{in: "1 m", err: "bad cpu"},
	}
	for _, tt := range tests {
		got, err := ParseCPU(tt.in)
		checkParse(t, "ParseCPU", tt.in, got, tt.want, err, tt.err)
	}
}

func checkParse(t *testing.T, fn, in string, got, want uint64, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("%s(%q): %v", fn, in, err)
	case wantErr == "" && got != want:
		t.Errorf("%s(%q) = %d, want %d", fn, in, got, want)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
		t.Errorf("%s(%q) = %d, %v; want an error containing %q", fn, in, got, err, wantErr)
	}
}

func TestParsePrice(t *testing.T) {
	tests := []struct {
		in   string
		want *pb.Amount
		err  string
	}{
		{in: "0.05 EUR", want: &pb.Amount{Currency: "EUR", Nanos: 50_000_000}},
		{in: "1 USD", want: &pb.Amount{Currency: "USD", Nanos: 1_000_000_000}},
		{in: "0 CHF", want: &pb.Amount{Currency: "CHF"}},
		{in: "  2.5   EUR ", want: &pb.Amount{Currency: "EUR", Nanos: 2_500_000_000}},
		{in: "0.000000001 EUR", want: &pb.Amount{Currency: "EUR", Nanos: 1}},
		{in: "18446744073.709551615 EUR", want: &pb.Amount{Currency: "EUR", Nanos: 1<<64 - 1}},
		{in: "18446744073.709551616 EUR", err: "too large"},
		{in: "99999999999999999999 EUR", err: "too large"},
		{in: "0.0000000001 EUR", err: "at most 9 decimals"},
		{in: "-1 EUR", err: "must not be negative"},
		{in: "0.05", err: `write an amount and a currency code, such as "0.05 EUR"`},
		{in: "EUR 0.05", err: `"EUR" is not a decimal amount`},
		{in: "0,05 EUR", err: "not a decimal amount"},
		{in: "0.05 eur", err: `currency "eur" is not a 3-letter upper-case ISO 4217 code`},
		{in: "0.05 EURO", err: "3-letter"},
		{in: "0.05 EUR extra", err: "write an amount and a currency code"},
		{in: "", err: "bad price"},
		{in: "1e3 EUR", err: "not a decimal amount"},
	}
	for _, tt := range tests {
		got, err := ParsePrice(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePrice(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePrice(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmpProto); diff != "" {
			t.Errorf("ParsePrice(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  string
	}{
		{in: "0", want: 0},
		{in: "0.05", want: 50_000_000},
		{in: "12", want: 12_000_000_000},
		{in: "0.000000001", want: 1},
		{in: "007.50", want: 7_500_000_000},
		{in: "18446744073.709551615", want: 1<<64 - 1},
		{in: "18446744073.709551616", err: `bad amount "18446744073.709551616": too large: at most 18446744073.709551615`},
		{in: "0.0000000001", err: `bad amount "0.0000000001": use at most 9 decimals`},
		{in: "-1", err: `bad amount "-1": the amount must not be negative`},
		{in: "0.05 EUR", err: `bad amount "0.05 EUR": "0.05 EUR" is not a decimal amount: write it like "0.05"`},
		{in: " 1", err: "is not a decimal amount"},
		{in: "", err: "is not a decimal amount"},
		{in: ".5", err: "is not a decimal amount"},
		{in: "1.", err: "is not a decimal amount"},
		{in: "+1", err: "is not a decimal amount"},
		{in: "1e3", err: "is not a decimal amount"},
		{in: "1,5", err: "is not a decimal amount"},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseAmount(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if p, err := ParsePrice(tt.in + " EUR"); err != nil || p.Nanos != got {
			t.Errorf("ParsePrice(%q) = %v, %v; want the amount ParseAmount reads", tt.in+" EUR", p, err)
		}
	}
}
