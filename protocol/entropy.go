package protocol

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
)

// entropyDomain opens the hash of a job's random seed, so that it is never
// the hash of anything else (SPEC 11).
const entropyDomain = "cuivre/v1/entropy\x00"

// EntropySeed is the seed of the random stream the guests of one instance of
// a job read, when the job asks no host entropy (SPEC 11): sha2-256 of
// "cuivre/v1/entropy", a zero byte, the job CID's binary form and the
// instance as 4 bytes big-endian. The replicas of one instance share it; two
// instances, or two jobs, do not.
func EntropySeed(jobCID []byte, instance uint32) [32]byte {
	h := sha256.New()
	h.Write([]byte(entropyDomain))
	h.Write(jobCID)
	h.Write(binary.BigEndian.AppendUint32(nil, instance))
	var seed [32]byte
	h.Sum(seed[:0])
	return seed
}

// JobRandom returns the random stream of one instance of a job (SPEC 11):
// the successive 64-bit outputs of ChaCha8 (chacha8rand, as math/rand/v2
// implements it) keyed by EntropySeed, each written little-endian. Anyone
// who knows the job CID can compute it: it makes replicas agree, it keeps no
// secret. It is not safe for concurrent use.
func JobRandom(jobCID []byte, instance uint32) io.Reader {
	return rand.NewChaCha8(EntropySeed(jobCID, instance))
}
