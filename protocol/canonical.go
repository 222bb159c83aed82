package protocol

import "google.golang.org/protobuf/proto"

// Canonical returns the canonical encoding of a message: protobuf's
// deterministic encoding, which for these messages (no maps) is fields in number
// order, defaults omitted, repeated scalars packed (SPEC 2.3).
func Canonical(msg proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(msg)
}
