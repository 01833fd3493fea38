package body

import (
	"fmt"
	"io"
	"net/http"
)

// replayInline is how many bytes a Replay holds without a second
// allocation: every cancel body a Google client sends ("{}", a name) fits,
// and with its slice and offset the Replay fills a 256-byte size class.
const replayInline = 224

// Replay is a request body the gateway has read, to be put back for the
// upstream unchanged: it reads out the bytes read, then io.EOF. A body of
// up to replayInline bytes costs one allocation, bytes and reader
// together.
type Replay struct {
	inline [replayInline]byte
	data   []byte
	off    int
}

// Read reads at most MaxBytes+1 bytes of r into a Replay. tooLarge reports
// that r holds more than MaxBytes; the rest is left unread. The Replay
// holds every byte taken from r, also when err is set. A nil r or
// http.NoBody gives an empty Replay.
func Read(r io.Reader) (b *Replay, tooLarge bool, err error) {
	b = new(Replay)
	b.data = b.inline[:0]
	if r == nil || r == http.NoBody {
		return b, false, nil
	}
	// Not http.MaxBytesReader: it swallows the byte past the limit, and the
	// Replay must hold every byte taken from r.
	const limit = MaxBytes + 1
	for len(b.data) < limit {
		if len(b.data) == cap(b.data) {
			grown := make([]byte, len(b.data), min(2*cap(b.data), limit))
			copy(grown, b.data)
			b.data = grown
		}
		n, rerr := r.Read(b.data[len(b.data):cap(b.data)])
		b.data = b.data[:len(b.data)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return b, false, fmt.Errorf("reading request body: %w", rerr)
		}
	}
	return b, len(b.data) > MaxBytes, nil
}

// Take reads a request's body (at most MaxBytes) for a door to judge and
// puts the bytes read back for the upstream, unchanged. v, when not nil,
// is why the body cannot be judged at all (it could not be read, or it is
// larger than MaxBytes); the request must then be refused.
func Take(r *http.Request) (data []byte, v *Violation) {
	read, tooLarge, err := Read(r.Body)
	switch {
	case err != nil:
		return nil, &Violation{Description: "The request body could not be read."}
	case tooLarge:
		return nil, TooLarge()
	}
	if read.Len() > 0 {
		r.Body = read
	}
	return read.Bytes(), nil
}

// NewReplay is an empty Replay, for a reader that reads the body itself
// (a gRPC frame): into Spare, the Replay's own memory, when it fits, so
// that bytes and reader cost one allocation; Hold then names the bytes
// read.
func NewReplay() *Replay { return new(Replay) }

// Spare is the Replay's inline memory, empty, with its capacity to fill.
func (b *Replay) Spare() []byte { return b.inline[:0] }

// Hold makes data (Spare's memory or other) the bytes the Replay reads
// out, from the first.
func (b *Replay) Hold(data []byte) { b.data, b.off = data, 0 }

// Bytes are the bytes read; they share the Replay's memory.
func (b *Replay) Bytes() []byte { return b.data }

// Len is how many bytes were read.
func (b *Replay) Len() int { return len(b.data) }

// Read implements io.Reader over the bytes read.
func (b *Replay) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

// WriteTo implements io.WriterTo, which io.Copy (and so the reverse
// proxy's transport) prefers.
func (b *Replay) WriteTo(w io.Writer) (int64, error) {
	if b.off >= len(b.data) {
		return 0, nil
	}
	n, err := w.Write(b.data[b.off:])
	b.off += n
	return int64(n), err
}

// Close implements io.Closer; there is nothing to release.
func (*Replay) Close() error { return nil }

var _ interface {
	io.ReadCloser
	io.WriterTo
} = (*Replay)(nil)
