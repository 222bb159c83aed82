package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/libp2p/go-msgio/pbio"
	"github.com/multiformats/go-varint"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/protocol"
)

// Reader reads unsigned-varint length-prefixed protobuf messages (SPEC 2.2) and
// refuses frames over its limit. It is not safe for concurrent use.
type Reader struct {
	r   pbio.ReadCloser
	max int
}

// NewReader returns a Reader of frames of at most max bytes. It buffers, so use
// one Reader per stream for the stream's whole life.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{r: pbio.NewDelimitedReader(r, max), max: max}
}

// ReadMsg reads one frame into msg. A clean end of stream before a frame is
// io.EOF; an oversized frame is ErrTooLarge; a truncated frame, a bad length
// prefix or bytes that are not the message are ErrMalformed; other I/O errors
// are returned as they are.
func (r *Reader) ReadMsg(msg proto.Message) error {
	err := r.r.ReadMsg(msg)
	switch {
	case err == nil, err == io.EOF:
		return err
	case errors.Is(err, io.ErrShortBuffer):
		return protocol.Errorf(protocol.CodeTooLarge, "frame exceeds %d bytes", r.max)
	case errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, varint.ErrOverflow),
		errors.Is(err, varint.ErrNotMinimal),
		errors.Is(err, proto.Error):
		return &protocol.Error{Code: protocol.CodeMalformed, Msg: err.Error()}
	}
	return err
}

// Writer writes length-prefixed protobuf messages. It is not safe for concurrent use.
type Writer struct {
	w   pbio.WriteCloser
	max int
}

// NewWriter returns a Writer that refuses to send a message over max bytes,
// since the peer would refuse it anyway.
func NewWriter(w io.Writer, max int) *Writer {
	return &Writer{w: pbio.NewDelimitedWriter(w), max: max}
}

// WriteMsg writes one frame.
func (w *Writer) WriteMsg(msg proto.Message) error {
	if n := proto.Size(msg); n > w.max {
		return protocol.Errorf(protocol.CodeTooLarge, "message of %d bytes exceeds %d", n, w.max)
	}
	if err := w.w.WriteMsg(msg); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}
