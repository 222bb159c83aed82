package exec_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

func TestValidate(t *testing.T) {
	ctx := context.Background()
	for _, ok := range [][]byte{exectest.Empty(), exectest.Write("x", "", 0), exectest.Module(t, "hello")} {
		if err := exec.Validate(ctx, ok, 0); err != nil {
			t.Errorf("a valid command refused: %v", err)
		}
	}
	noStart := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00} // an empty module: no _start
	for _, c := range []struct {
		name string
		bin  []byte
		max  uint64
		code pb.Code
	}{
		{"a private key", []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n"), 0, protocol.CodeMalformed},
		{"random bytes behind the magic", append([]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}, 0xff, 0x13, 0x37), 0, protocol.CodeMalformed},
		{"no _start", noStart, 0, pb.Code_CODE_EXECUTOR_UNSUPPORTED},
		{"too large", exectest.Empty(), 8, protocol.CodeTooLarge},
	} {
		err := exec.Validate(ctx, c.bin, c.max)
		if !errors.Is(err, &protocol.Error{Code: c.code}) {
			t.Errorf("%s: %v, want %v", c.name, err, c.code)
		}
	}
}
