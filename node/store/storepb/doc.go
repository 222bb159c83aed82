// Package storepb holds the protobuf records of node/store, as they are written
// in the node's bbolt file. Only package store reads and writes them.
package storepb

// The path is relative to the repository root, so that the file registers as
// node/store/storepb/store.proto and cannot clash with another store.proto in
// the global protobuf registry.
//go:generate sh -c "cd ../../.. && protoc -I . -I protocol/pb --go_out=. --go_opt=paths=source_relative node/store/storepb/store.proto"
