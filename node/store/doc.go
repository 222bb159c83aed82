// Package store is the node's embedded, transactional state: one bbolt file in
// the data dir holding the provider's leases (with their epochs), the usage
// receipts and their countersignatures, the requester's jobs, the nonces of
// the replay cache, and the index of the module cache.
//
// # Acknowledge only what is synced
//
// Every write method returns after its bbolt transaction has committed and
// been synced to disk (NoSync stays false), so a node may acknowledge a lease,
// receipt or job to a peer as soon as the method returns, and kill -9 loses
// nothing acknowledged (SPEC 11). Writes that belong together (a lease, its
// job and its nonce, SPEC 6.2; a final state and its receipt, SPEC 6.4) go in
// one Store.Update, which costs one fsync for all of them. The file is locked
// while open: a second daemon on the same data dir gets an error after
// Options.LockTimeout, never a hang. A schema version in the bucket "meta" is
// checked at Open; a file of a newer version is refused, not misread, and one
// of an older version gets the buckets added since (schema 2 added "grants",
// the slice grants of SPEC 6.7) in the same transaction.
//
// # Fencing
//
// Leases and receipts are keyed lease ID (16 bytes) || epoch (8 bytes,
// big-endian), so the epochs of a lease sort together and the newest is last.
// PutLease, PutReceipt, Countersign and PutJob refuse an epoch older than the
// newest stored with a *protocol.Error of code CODE_STALE_EPOCH, which the node
// can send to a peer as it is (SPEC 6.2: leases alone are not mutual
// exclusion, epochs are the fence). MarkLeaseState refuses moves that
// protocol.CanTransition refuses (ErrTransition), but is not fenced: an older
// epoch must still reach a final state, or it would look live after a restart
// and hold capacity.
//
// # Encoding
//
// Records are protobuf (storepb/store.proto), reusing the wire's Resources,
// Price, Amount, LeaseState and Error, with times as Unix milliseconds as on
// the wire; a Go record reads back with its times truncated to the
// millisecond, in UTC. Signed envelopes are stored byte for byte as received,
// never re-encoded, so they still verify and hash the same. Nonces are fixed
// width (expiry as 8 big-endian bytes), with an index by expiry so that
// pruning walks only what has expired. protoc regenerates storepb with go
// generate ./node/store/storepb.
//
// # Why are modules files?
//
// The module index (CID, size, when added, when last used) is in bbolt; the
// bytes are files DIR/modules/<cid>, written to a temporary file, synced,
// renamed into place and the directory synced, before the index entry
// commits. A WASM module is a few MiB (a Go-built one is about 3 MiB), up to
// Options.MaxModuleSize. Kept in bbolt, each module would be written and
// synced inside a write transaction, and bbolt has one writer at a time: every
// lease commit queued behind it would wait for megabytes to reach the disk.
// bbolt also never gives freed pages back to the file system, so an evicted
// module would leave the file as large as it ever was. As files, modules are
// content addressed and immutable, cost nothing on the lease path and give
// their space back when deleted; the bbolt file stays small, so its fsyncs
// stay short. Module checks the bytes against the CID on every read, so a file
// damaged on disk is noticed, dropped and fetched again.
//
// # Concurrency
//
// A Store is safe for concurrent use: bbolt runs one writer at a time beside
// any number of readers. A Tx is not, and dies when its function returns.
// Records returned are copies; the caller owns them and their slices.
package store
