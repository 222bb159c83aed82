package data

import "context"

// Settle makes everything the store wrote durable: a measure that follows
// does not pay for the writes before it.
func (s *Store) Settle(ctx context.Context) error {
	return s.flat.Sync()
}
