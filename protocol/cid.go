package protocol

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// cidPrefix is how every binary CID of cuivre begins (SPEC 2.4): version 1
// (01), codec raw (55), multihash sha2-256 (12) of 32 bytes (20).
const cidPrefix = "\x01\x55\x12\x20"

// CIDSize is the length of a binary CID: the prefix and the sha2-256 digest.
const CIDSize = len(cidPrefix) + sha256.Size

// CheckCID checks that b is a binary CID of the one form cuivre accepts
// (SPEC 2.4): CIDv1, codec raw, multihash sha2-256, nothing after it. Its
// error says what is wrong, for the caller to wrap: package wire's ParseCID
// and ValidateJob make it CODE_MALFORMED.
func CheckCID(b []byte) error {
	n := min(len(b), len(cidPrefix))
	switch {
	case string(b[:n]) != cidPrefix[:n] || len(b) == 0:
		return errors.New("want CIDv1, raw codec, sha2-256")
	case len(b) < CIDSize:
		return fmt.Errorf("truncated at %d of %d bytes", len(b), CIDSize)
	case len(b) > CIDSize:
		return fmt.Errorf("%d trailing bytes", len(b)-CIDSize)
	}
	return nil
}

// dataPrefixes are how the binary root CID of a job's input begins (SPEC
// 2.4): CIDv1, codec dag-pb (70) for a UnixFS file of many chunks or a
// directory, or raw (55) for a file of one chunk; multihash sha2-256 of 32
// bytes.
var dataPrefixes = [...]string{"\x01\x70\x12\x20", cidPrefix}

// CheckDataCID checks that b is the binary root CID of a UnixFS DAG in the
// form cuivre accepts (SPEC 2.4): CIDv1, codec dag-pb or raw, multihash
// sha2-256, nothing after it.
func CheckDataCID(b []byte) error {
	for _, p := range dataPrefixes {
		if len(b) >= len(p) && string(b[:len(p)]) == p {
			if len(b) > CIDSize {
				return fmt.Errorf("%d trailing bytes", len(b)-CIDSize)
			}
			if len(b) < CIDSize {
				return fmt.Errorf("truncated at %d of %d bytes", len(b), CIDSize)
			}
			return nil
		}
	}
	return errors.New("want CIDv1, dag-pb or raw codec, sha2-256")
}
