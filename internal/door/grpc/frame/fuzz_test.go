package frame

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzReadMessage(f *testing.F) {
	gzMsg := gz(f, cancelMsg)
	for _, s := range []struct {
		body     []byte
		wire     Wire
		encoding string
		limit    uint16
	}{
		{frame(0, cancelMsg), WireGRPC, "", 4096},
		{frame(0, nil), WireWeb, "identity", 0},
		{frame(1, gzMsg), WireGRPC, "gzip", 4096},
		{frame(1, gzMsg), WireGRPC, "", 4096},
		{frame(1, gz(f, make([]byte, 10000))), WireGRPC, "gzip", 4096},
		{frame(1, cat(gzMsg, gzMsg)), WireWeb, "GZIP", 4096},
		{cat(frame(0, cancelMsg), []byte{0}), WireGRPC, "", 4096},
		{frame(0x80, []byte("grpc-status: 0\r\n")), WireWeb, "", 4096},
		{frame(0, cancelMsg), WireGRPC, "deflate", 4096},
		{frame(0, cancelMsg), WireGRPC, "", 8},
		{b64(frame(0, cancelMsg)), WireWebText, "", 4096},
		{b64(frame(0, cancelMsg)[:5], cancelMsg), WireWebText, "", 4096},
		{b64(frame(1, gzMsg)), WireWebText, "gzip", 4096},
		{[]byte("AAAAAAA="), WireWebText, "", 4096},
		{nil, WireGRPC, "", 4096},
	} {
		f.Add(s.body, uint8(s.wire), s.encoding, s.limit)
	}
	f.Fuzz(func(t *testing.T, data []byte, wireN uint8, encoding string, limit16 uint16) {
		wire, limit := Wire(wireN%3), int(limit16)
		// The rest of wireN picks the caller's buffer: none, one that
		// holds only a header and a byte, or a Replay's inline memory.
		var buf []byte
		switch wireN / 3 % 3 {
		case 1:
			buf = make([]byte, 0, headerLen+1)
		case 2:
			buf = make([]byte, 0, 256)
		}
		r := &countingReader{r: bytes.NewReader(data)}
		raw, msg, v := ReadMessage(r, wire, encoding, limit, buf)

		if !bytes.Equal(raw, r.read) {
			t.Fatalf("raw %q is not what was read, %q", raw, r.read)
		}
		bound := limit + headerLen + 1
		if wire == WireWebText {
			bound = base64.StdEncoding.EncodedLen(limit+headerLen) + 5
		}
		if len(r.read) > bound {
			t.Fatalf("read %d bytes, bound %d", len(r.read), bound)
		}
		if v != nil {
			if msg != nil {
				t.Fatalf("msg %q with violation %q", msg, v.Description)
			}
			if v.Description == "" || strings.IndexFunc(v.Description, func(c rune) bool { return c < 0x20 || c > 0x7e }) >= 0 {
				t.Fatalf("description %q is not short printable ASCII", v.Description)
			}
			return
		}

		// Accepted: the whole body was read, it is exactly one frame, and
		// msg is what an independent reading of that frame gives.
		if !bytes.Equal(raw, data) {
			t.Fatalf("accepted after reading %d of %d bytes", len(raw), len(data))
		}
		if len(msg) > limit {
			t.Fatalf("msg of %d bytes over limit %d", len(msg), limit)
		}
		framed := data
		if wire == WireWebText {
			framed = decodeQuanta(t, data)
		}
		if len(framed) < headerLen || int(binary.BigEndian.Uint32(framed[1:headerLen])) != len(framed)-headerLen {
			t.Fatalf("accepted %q, which is not one frame", framed)
		}
		enc := strings.ToLower(strings.Trim(encoding, " \t"))
		if enc != "" && enc != "identity" && enc != "gzip" {
			t.Fatalf("accepted grpc-encoding %q", encoding)
		}
		switch framed[0] {
		case 0:
			if !bytes.Equal(frame(0, msg), framed) {
				t.Fatalf("msg %q re-framed is not the client's frame %q", msg, framed)
			}
		case 1:
			if enc != "gzip" {
				t.Fatalf("accepted a compressed frame under grpc-encoding %q", encoding)
			}
			zr, err := gzip.NewReader(bytes.NewReader(framed[headerLen:]))
			if err != nil {
				t.Fatalf("accepted a compressed frame gzip cannot open: %v", err)
			}
			want, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(want, msg) {
				t.Fatalf("msg %q, but gzip reads %q (%v)", msg, want, err)
			}
		default:
			t.Fatalf("accepted frame flag %#x", framed[0])
		}
	})
}

// decodeQuanta decodes gRPC-Web text one quantum at a time: an independent
// reading of a run of padded chunks.
func decodeQuanta(t *testing.T, text []byte) []byte {
	t.Helper()
	if len(text)%4 != 0 {
		t.Fatalf("accepted text of %d bytes, not whole quanta", len(text))
	}
	var out []byte
	for i := 0; i < len(text); i += 4 {
		q, err := base64.StdEncoding.Strict().DecodeString(string(text[i : i+4]))
		if err != nil {
			t.Fatalf("accepted text whose quantum %q is not base64: %v", text[i:i+4], err)
		}
		out = append(out, q...)
	}
	return out
}

func FuzzWebStatusRecorder(f *testing.F) {
	msg := frame(0, []byte("\x0a\x02ok"))
	denied := trailerFrame("grpc-status: 7\r\ngrpc-message: denied\r\n")
	for _, s := range []struct {
		body   []byte
		text   bool
		splits []byte
	}{
		{cat(msg, denied), false, []byte{1, 4, 9}},
		{denied, false, []byte{0}},
		{trailerFrame("Grpc-Status: 5"), false, []byte{2, 2, 2}},
		{cat(denied, msg), false, nil},
		{frame(0x81, []byte("x")), false, []byte{6}},
		{b64(msg, denied), true, []byte{3, 1, 7}},
		{b64(cat(msg, denied)), true, []byte{5}},
		{[]byte("gAAAAA==\r\nZ3JwYy1zdGF0dXM6IDA="), true, []byte{9}},
		{[]byte("not gRPC-Web at all"), false, []byte{3}},
	} {
		f.Add(s.body, s.text, s.splits)
	}
	f.Fuzz(func(t *testing.T, data []byte, text bool, splits []byte) {
		whole := NewWebStatusRecorder(httptest.NewRecorder(), text)
		_, _ = whole.Write(data)
		wantCode, wantOK := whole.Status()

		rec := httptest.NewRecorder()
		r := NewWebStatusRecorder(rec, text)
		rest := data
		for _, s := range splits {
			n := min(int(s), len(rest))
			if _, err := r.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		_, _ = r.Write(rest)

		if !bytes.Equal(rec.Body.Bytes(), data) {
			t.Fatalf("the client got %q, the upstream sent %q", rec.Body.Bytes(), data)
		}
		if code, ok := r.Status(); code != wantCode || ok != wantOK {
			t.Fatalf("split at %v: status %d, %v; written whole: %d, %v", splits, code, ok, wantCode, wantOK)
		}
	})
}
