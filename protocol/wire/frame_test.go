package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/internal/vector"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := wire.NewWriter(&buf, protocol.MaxOfferMsg)
	msgs := vector.Messages(t)
	for _, m := range msgs {
		if err := w.WriteMsg(m.Msg); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	r := wire.NewReader(&buf, protocol.MaxOfferMsg)
	for _, m := range msgs {
		got := m.Msg.ProtoReflect().New().Interface()
		if err := r.ReadMsg(got); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
	}
	if err := r.ReadMsg(new(pb.Error)); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

func frame(payload []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(payload))), payload...)
}

func TestFrameErrorsAreTyped(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"oversized length", binary.AppendUvarint(nil, protocol.MaxOfferMsg+1), protocol.ErrTooLarge},
		{"huge length", binary.AppendUvarint(nil, 1<<62), protocol.ErrTooLarge},
		{"truncated payload", frame(bytes.Repeat([]byte{0x0a}, 10))[:5], protocol.ErrMalformed},
		{"varint overflow", bytes.Repeat([]byte{0xff}, 11), protocol.ErrMalformed},
		{"non-minimal varint", []byte{0x81, 0x00}, protocol.ErrMalformed},
		{"not protobuf", frame([]byte{0xff, 0xff, 0xff}), protocol.ErrMalformed},
		{"field number 0", frame([]byte{0x00, 0x01}), protocol.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wire.NewReader(bytes.NewReader(tt.in), protocol.MaxOfferMsg).ReadMsg(new(pb.OfferRequest))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriterRefusesOversized(t *testing.T) {
	var buf bytes.Buffer
	err := wire.NewWriter(&buf, 16).WriteMsg(&pb.LogChunk{Data: make([]byte, 64)})
	if !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("got %v, want too large", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %d bytes of a refused message", buf.Len())
	}
}
