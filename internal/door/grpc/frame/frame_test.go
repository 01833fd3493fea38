package frame

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// cancelMsg is CancelOperationRequest{name: "operations/export-123"}.
var cancelMsg = append([]byte{0x0a, 21}, "operations/export-123"...)

func frame(flag byte, payload []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(payload))
	b[0] = flag
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

func gz(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, p := range parts {
		if _, err := zw.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func b64(chunks ...[]byte) []byte {
	var out []byte
	for _, c := range chunks {
		out = base64.StdEncoding.AppendEncode(out, c)
	}
	return out
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// countingReader records what ReadMessage took from the client.
type countingReader struct {
	r    io.Reader
	read []byte
	err  error // returned once r is exhausted, instead of io.EOF
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read = append(c.read, p[:n]...)
	if err == io.EOF && c.err != nil {
		err = c.err
	}
	return n, err
}

func TestReadMessage(t *testing.T) {
	zeros := make([]byte, 1<<20)
	tests := []struct {
		name     string
		wire     Wire
		encoding string
		limit    int
		body     []byte
		readErr  error
		want     []byte // the message when accepted
		refused  string // a part of the violation's description
		maxRead  int    // when set, at most this many bytes may be read
		// nothingRead says the refusal comes before any byte is read.
		nothingRead bool
	}{
		{name: "an uncompressed message is read whole", body: frame(0, cancelMsg), want: cancelMsg},
		{name: "a message of zero bytes is the empty request", body: frame(0, nil), want: []byte{}},
		{name: "a message exactly at the limit is accepted", limit: len(cancelMsg), body: frame(0, cancelMsg), want: cancelMsg},
		{name: "identity is no compression", encoding: "identity", body: frame(0, cancelMsg), want: cancelMsg},
		{name: "a gzip message is decompressed", encoding: "gzip", body: frame(1, gz(t, cancelMsg)), want: cancelMsg},
		{name: "grpc-encoding is trimmed and case-insensitive", encoding: " GZip\t", body: frame(1, gz(t, cancelMsg)), want: cancelMsg},
		{name: "a gzip call may still send its message uncompressed", encoding: "gzip", body: frame(0, cancelMsg), want: cancelMsg},
		{name: "a gzip message decompressing to exactly the limit is accepted", encoding: "gzip", limit: 4096, body: frame(1, gz(t, zeros[:4096])), want: zeros[:4096]},
		{name: "grpc-web frames a message as grpc does", wire: WireWeb, body: frame(0, cancelMsg), want: cancelMsg},
		{name: "grpc-web-text is the frame in base64", wire: WireWebText, body: b64(frame(0, cancelMsg)), want: cancelMsg},
		{name: "grpc-web-text may be several padded chunks", wire: WireWebText, body: b64(frame(0, cancelMsg)[:5], cancelMsg[:1], cancelMsg[1:]), want: cancelMsg},
		{name: "grpc-web-text may carry a gzip message", wire: WireWebText, encoding: "gzip", body: b64(frame(1, gz(t, cancelMsg))), want: cancelMsg},

		{name: "an empty body holds no message", body: nil, refused: "no message"},
		{name: "a truncated frame header is refused", body: frame(0, cancelMsg)[:3], refused: "truncated"},
		{name: "a message shorter than its length prefix is refused", body: frame(0, cancelMsg)[:10], refused: "shorter than its length prefix"},
		{name: "a second message is refused", body: cat(frame(0, cancelMsg), frame(0, cancelMsg)), refused: "more than one message"},
		{name: "a trailing byte is refused", body: cat(frame(0, cancelMsg), []byte{0}), refused: "more than one message"},
		{name: "a client's gRPC-Web trailer flag is refused", wire: WireWeb, body: frame(0x80, []byte("grpc-status: 0\r\n")), refused: "flags 0x80"},
		{name: "an unknown flag bit is refused", body: frame(0x02, cancelMsg), refused: "flags 0x02"},
		{name: "a compressed message without grpc-encoding is refused", body: frame(1, gz(t, cancelMsg)), refused: "names no grpc-encoding"},
		{name: "a compressed message under identity is refused", encoding: "identity", body: frame(1, gz(t, cancelMsg)), refused: "names no grpc-encoding"},
		{name: "deflate is refused even for an uncompressed message", encoding: "deflate", body: frame(0, cancelMsg), refused: "grpc-encoding", nothingRead: true},
		{name: "snappy is refused", encoding: "snappy", body: frame(0, cancelMsg), refused: "grpc-encoding"},
		{name: "a list of encodings is refused", encoding: "gzip, br", body: frame(1, gz(t, cancelMsg)), refused: "grpc-encoding"},
		{name: "a length prefix above the limit is refused unread", limit: 8, body: frame(0, cancelMsg), refused: "larger than 8 bytes", maxRead: headerLen},
		{name: "a gzip bomb is refused", encoding: "gzip", limit: 4096, body: frame(1, gz(t, zeros)), refused: "Decompressed request message is larger than 4096 bytes"},
		{name: "a corrupt gzip stream is refused", encoding: "gzip", body: frame(1, []byte("\x1f\x8b\x08\x00garbage")), refused: "not a valid gzip stream"},
		{name: "a truncated gzip stream is refused", encoding: "gzip", body: frame(1, gz(t, cancelMsg)[:20]), refused: "not a valid gzip stream"},
		{name: "bytes after the gzip stream are refused", encoding: "gzip", body: frame(1, cat(gz(t, cancelMsg), []byte("x"))), refused: "after its gzip stream"},
		{name: "a second gzip member is refused", encoding: "gzip", body: frame(1, cat(gz(t, cancelMsg[:5]), gz(t, cancelMsg[5:]))), refused: "after its gzip stream"},
		{name: "grpc-web-text that is not base64 is refused", wire: WireWebText, body: []byte("AAAA!AAA"), refused: "not valid base64"},
		{name: "grpc-web-text with line breaks is refused", wire: WireWebText, body: []byte("AAAA\r\nAAAA"), refused: "not valid base64"},
		{name: "grpc-web-text without its padding is refused", wire: WireWebText, body: bytes.TrimRight(b64(frame(0, cancelMsg)), "="), refused: "not valid base64"},
		{name: "grpc-web-text with misplaced padding is refused", wire: WireWebText, body: []byte("AA=A"), refused: "not valid base64"},
		{name: "grpc-web-text over its bound is refused", wire: WireWebText, limit: 30, body: b64(frame(0, zeros[:200])), refused: "Request body is larger than", maxRead: base64.StdEncoding.EncodedLen(35) + 5},
		{name: "grpc-web-text is held to the same framing", wire: WireWebText, body: b64(frame(0, cancelMsg), frame(0, cancelMsg)), refused: "more than one message"},
		{name: "a body that cannot be read is refused", body: frame(0, cancelMsg), readErr: errors.New("connection reset"), refused: "could not be read"},
		{name: "a body that cannot be read mid-message is refused", body: frame(0, cancelMsg)[:12], readErr: errors.New("connection reset"), refused: "could not be read"},
		{name: "a text body that cannot be read is refused", wire: WireWebText, body: b64(frame(0, cancelMsg)), readErr: errors.New("connection reset"), refused: "could not be read"},
	}
	// Every case is read three ways: into memory of its own, into a
	// caller's buffer too small for most frames, and into one that holds a
	// cancel's frame (as the Replay's inline memory does).
	buffers := []struct {
		name string
		cap  int // -1: no buffer
	}{{"no buffer", -1}, {"small buffer", headerLen + 3}, {"cancel-sized buffer", 256}}
	for _, tt := range tests {
		for _, bt := range buffers {
			t.Run(tt.name+"/"+bt.name, func(t *testing.T) {
				limit := tt.limit
				if limit == 0 {
					limit = 1024
				}
				var buf []byte
				if bt.cap >= 0 {
					buf = make([]byte, 0, bt.cap)
				}
				r := &countingReader{r: bytes.NewReader(tt.body), err: tt.readErr}
				raw, msg, v := ReadMessage(r, tt.wire, tt.encoding, limit, buf)
				if !bytes.Equal(raw, r.read) {
					t.Errorf("raw = %q, but the client sent %q", raw, r.read)
				}
				if tt.wire != WireWebText && len(raw) > 0 && len(raw) <= cap(buf) && &raw[0] != &buf[:1][0] {
					t.Errorf("a %d-byte frame was not read into the caller's %d-byte buffer", len(raw), cap(buf))
				}
				maxRead := limit + headerLen + 1
				if tt.wire == WireWebText {
					maxRead = base64.StdEncoding.EncodedLen(limit+headerLen) + 5
				}
				switch {
				case tt.nothingRead:
					maxRead = 0
				case tt.maxRead > 0:
					maxRead = tt.maxRead
				}
				if len(r.read) > maxRead {
					t.Errorf("read %d bytes of the body, want at most %d", len(r.read), maxRead)
				}
				if tt.refused != "" {
					if v == nil {
						t.Fatalf("accepted %q, want a violation saying %q", msg, tt.refused)
					}
					if !strings.Contains(v.Description, tt.refused) {
						t.Errorf("violation %q, want it to say %q", v.Description, tt.refused)
					}
					if msg != nil {
						t.Errorf("msg = %q on a violation, want nil", msg)
					}
					return
				}
				if v != nil {
					t.Fatalf("refused: %s", v.Description)
				}
				if !bytes.Equal(msg, tt.want) || msg == nil {
					t.Errorf("msg = %q, want %q", msg, tt.want)
				}
				if !bytes.Equal(raw, tt.body) {
					t.Errorf("raw = %q, want the whole body %q", raw, tt.body)
				}
			})
		}
	}
}

func BenchmarkReadMessage(b *testing.B) {
	for _, bc := range []struct {
		name     string
		wire     Wire
		encoding string
		body     []byte
	}{
		{"grpc", WireGRPC, "", frame(0, cancelMsg)},
		{"grpc gzip", WireGRPC, "gzip", frame(1, gz(b, cancelMsg))},
		{"grpc-web-text", WireWebText, "", b64(frame(0, cancelMsg))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := bytes.NewReader(bc.body)
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(bc.body)
				if _, _, v := ReadMessage(r, bc.wire, bc.encoding, 4096, nil); v != nil {
					b.Fatal(v.Description)
				}
			}
		})
	}
}
