package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/cuivre/cuivre/protocol/pb"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, MaxOfferMsg)
	msgs := vectorMessages(t)
	for _, m := range msgs {
		if err := w.WriteMsg(m.msg); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	r := NewReader(&buf, MaxOfferMsg)
	for _, m := range msgs {
		got := m.msg.ProtoReflect().New().Interface()
		if err := r.ReadMsg(got); err != nil {
			t.Fatalf("%s: %v", m.name, err)
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
		{"oversized length", binary.AppendUvarint(nil, MaxOfferMsg+1), ErrTooLarge},
		{"huge length", binary.AppendUvarint(nil, 1<<62), ErrTooLarge},
		{"truncated payload", frame(bytes.Repeat([]byte{0x0a}, 10))[:5], ErrMalformed},
		{"varint overflow", bytes.Repeat([]byte{0xff}, 11), ErrMalformed},
		{"non-minimal varint", []byte{0x81, 0x00}, ErrMalformed},
		{"not protobuf", frame([]byte{0xff, 0xff, 0xff}), ErrMalformed},
		{"field number 0", frame([]byte{0x00, 0x01}), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewReader(bytes.NewReader(tt.in), MaxOfferMsg).ReadMsg(new(pb.OfferRequest))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriterRefusesOversized(t *testing.T) {
	var buf bytes.Buffer
	err := NewWriter(&buf, 16).WriteMsg(&pb.LogChunk{Data: make([]byte, 64)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want too large", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %d bytes of a refused message", buf.Len())
	}
}
