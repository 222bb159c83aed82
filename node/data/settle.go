package data

import (
	"context"
	"time"
)

// Settle writes what the store keeps in memory to disk and waits until no
// flush or compaction has run for two polls 50 ms apart, or ctx ends: a
// store just filled is busy rewriting for a while, which a measure that
// follows would count.
func (s *Store) Settle(ctx context.Context) error {
	if err := s.sync(); err != nil {
		return err
	}
	for quiet := 0; quiet < 2; {
		m := s.ds.DB.Metrics()
		if m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 {
			quiet++
		} else {
			quiet = 0
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
