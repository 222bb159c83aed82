package protocol

import "time"

// Lifetime limits of signed records (SPEC 3.3). An expiry further ahead than the
// limit plus ClockSkew is refused with ErrTooFarAhead, which bounds the replay
// cache.
const (
	MaxOfferTTL    = 2 * time.Minute
	MaxLeaseTTL    = 5 * time.Minute
	MaxCapacityTTL = time.Hour
	MaxTariffTTL   = 24 * time.Hour
	// MaxSlicePeriod bounds how far ahead a slice grant may end (SPEC 6.7).
	MaxSlicePeriod = 366 * 24 * time.Hour
	ClockSkew      = 30 * time.Second
)

// UnixMs converts a time to the wire's Unix milliseconds.
func UnixMs(t time.Time) uint64 { return uint64(t.UnixMilli()) }

// FromUnixMs converts wire Unix milliseconds to a time.
func FromUnixMs(ms uint64) time.Time { return time.UnixMilli(int64(ms)).UTC() }

// CheckExpiry checks that a record expiring at expiresAtMs is live at now and
// expires within maxTTL of it.
func CheckExpiry(now time.Time, expiresAtMs uint64, maxTTL time.Duration) error {
	exp := FromUnixMs(expiresAtMs)
	if !now.Before(exp) {
		return Errorf(CodeExpired, "expired at %s, now %s", exp.Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))
	}
	if exp.Sub(now) > maxTTL+ClockSkew {
		return Errorf(CodeTooFarAhead, "expires at %s, more than %s ahead", exp.Format(time.RFC3339Nano), maxTTL)
	}
	return nil
}

// CheckEpoch fences a message of epoch got against the current epoch of its
// lease (SPEC 6.2): anything from an older epoch is refused.
func CheckEpoch(current, got uint64) error {
	if got < current {
		return Errorf(CodeStaleEpoch, "epoch %d is older than %d", got, current)
	}
	return nil
}
