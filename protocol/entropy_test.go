package protocol

import (
	"bytes"
	"encoding/hex"
	"io"
	"testing"
)

// TestJobRandom: the stream of an instance is a pure function of the job CID
// and the instance, the same however it is read, and another job or another
// instance has another; the bytes are pinned, as another implementation must
// give them (SPEC 11).
func TestJobRandom(t *testing.T) {
	job := []byte{0x01, 0x71, 0x12, 0x20, 0xaa}
	read := func(r io.Reader, sizes ...int) []byte {
		var out []byte
		for _, n := range sizes {
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
		return out
	}
	whole := read(JobRandom(job, 1), 40)
	if pieces := read(JobRandom(job, 1), 3, 8, 1, 20, 8); !bytes.Equal(whole, pieces) {
		t.Fatalf("the stream depends on how it is read:\n%x\n%x", whole, pieces)
	}
	if other := read(JobRandom(job, 2), 40); bytes.Equal(whole, other) {
		t.Fatalf("instances 1 and 2 share a stream")
	}
	if other := read(JobRandom(append(job[:4:4], 0xab), 1), 40); bytes.Equal(whole, other) {
		t.Fatalf("two jobs share a stream")
	}
	seed := EntropySeed(job, 1)
	if got, want := hex.EncodeToString(seed[:]), "c24ab61a7f8be66a9913debc66cb962025709827b72a6316ec9ec7d9003317f8"; got != want {
		t.Errorf("seed %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(whole[:16]), "a04c009daafb7b5db91dbc0f38d30381"; got != want {
		t.Errorf("stream %s, want %s", got, want)
	}
}
