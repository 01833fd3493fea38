package frame

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
)

// grpcStatusTrailer is the key Caddy's reverse_proxy uses for a grpc-status
// trailer it did not announce before the body: http.TrailerPrefix and the
// transport's canonical key, which Header.Add leaves as is (a key holding
// ':' is not canonicalised).
const grpcStatusTrailer = http.TrailerPrefix + "Grpc-Status"

// StatusFromHeader returns the grpc-status a forwarded call's client got,
// read from h, the client-facing response header map once Caddy's
// reverse_proxy has copied the upstream's answer into it. Caddy v2.11.9
// (reverseproxy.(*Handler).finalizeResponse) leaves it in one of three forms:
//
//   - a trailers-only answer: grpc-status is a header, "Grpc-Status";
//   - trailers the upstream announced in a Trailer header (and then sent
//     exactly as many of): "Grpc-Status" again, added after the response
//     header was written, with "Grpc-Status" in h["Trailer"];
//   - trailers it did not announce, gRPC's usual case:
//     "Trailer:Grpc-Status".
//
// A trailer is the last word on a stream, and clients take the last of
// repeated values, so the prefixed key wins over the plain one, and the last
// value counts. ok is false when there is no grpc-status or it is not a
// non-negative 32-bit decimal: the client then got an error of its own
// library's making, not a status from the upstream.
func StatusFromHeader(h http.Header) (code int, ok bool) {
	vv := h[grpcStatusTrailer]
	if len(vv) == 0 {
		vv = h["Grpc-Status"]
	}
	if len(vv) == 0 {
		return 0, false
	}
	return parseCode(vv[len(vv)-1])
}

// parseCode reads a grpc-status value as grpc-go does, minus the negative
// values it would turn into huge codes.
func parseCode(v string) (int, bool) {
	c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	if err != nil || c < 0 {
		return 0, false
	}
	return int(c), true
}

const (
	// maxStatusLine bounds the trailer line the recorder keeps: a
	// grpc-status line is short, and any other line (grpc-message,
	// grpc-status-details-bin) is skipped however long it is.
	maxStatusLine = 40
	statusKey     = "grpc-status:"
)

// WebStatusRecorder passes a forwarded gRPC-Web response through to the
// client unchanged, byte for byte and write for write, while it reads the
// grpc-status of the trailer frame in passing. It keeps no copy of the body:
// data frames are skipped as they stream by, and of the trailer block only
// the current line, at most maxStatusLine bytes.
type WebStatusRecorder struct {
	w    http.ResponseWriter
	text bool

	started bool // the first body byte has been seen
	broken  bool // the body is not a gRPC-Web stream the recorder reads

	// base64 state (text only): a quantum split across writes.
	quad  [4]byte
	nquad int

	// frame state
	hdr       [headerLen]byte
	nhdr      int
	remaining uint32 // payload bytes of the current frame still to come
	inTrailer bool   // the current frame is the trailer frame
	done      bool   // the trailer frame has ended

	// trailer block state
	line     [maxStatusLine]byte
	nline    int
	longLine bool // the current line is longer than maxStatusLine

	code   int
	codeOK bool // code is a well-formed grpc-status
}

// NewWebStatusRecorder wraps w for a gRPC-Web response, text for
// application/grpc-web-text.
func NewWebStatusRecorder(w http.ResponseWriter, text bool) *WebStatusRecorder {
	return &WebStatusRecorder{w: w, text: text}
}

// Header returns the wrapped writer's header map.
func (r *WebStatusRecorder) Header() http.Header { return r.w.Header() }

// WriteHeader passes the status code through.
func (r *WebStatusRecorder) WriteHeader(code int) { r.w.WriteHeader(code) }

// Write passes p through first and then reads what was written: the client
// never waits on the recorder.
func (r *WebStatusRecorder) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	r.observe(p[:n])
	return n, err
}

// Flush flushes the wrapped writer, so streamed responses stay streamed.
func (r *WebStatusRecorder) Flush() {
	_ = http.NewResponseController(r.w).Flush() // like http.Flusher, it has no way to report
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (r *WebStatusRecorder) Unwrap() http.ResponseWriter { return r.w }

// Status returns the grpc-status the client got: the trailer frame's, else
// the one StatusFromHeader finds in the response header map (a trailers-only
// answer, or HTTP trailers). ok is false when neither says, including when
// the body was not a gRPC-Web stream the recorder could read (a
// Content-Encoding, a compressed trailer frame, bytes after the trailer
// frame): a client reading such a body got no status from the recorder's
// reading of it either.
func (r *WebStatusRecorder) Status() (code int, ok bool) {
	switch {
	case r.broken:
		return 0, false
	case r.inTrailer:
		// A trailer frame is the answer, so a truncated one, or one without
		// a well-formed grpc-status, is an error of the client's library.
		return r.code, r.done && r.codeOK
	}
	return StatusFromHeader(r.w.Header())
}

func (r *WebStatusRecorder) observe(p []byte) {
	if !r.started && len(p) > 0 {
		r.started = true
		// A body compressed as a whole (PROTOCOL-WEB.md's full-body
		// compression) is opaque to the frame reader.
		if ce := strings.TrimSpace(r.w.Header().Get("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
			r.broken = true
		}
	}
	if r.broken {
		return
	}
	if !r.text {
		r.frames(p)
		return
	}
	for _, c := range p {
		if c == '\r' || c == '\n' {
			continue
		}
		r.quad[r.nquad] = c
		r.nquad++
		if r.nquad < 4 {
			continue
		}
		r.nquad = 0
		var out [3]byte
		n, ok := decodeQuad(r.quad, &out)
		if !ok {
			r.broken = true
			return
		}
		r.frames(out[:n])
		if r.broken {
			return
		}
	}
}

// frames advances the frame state machine over decoded bytes.
func (r *WebStatusRecorder) frames(p []byte) {
	for len(p) > 0 && !r.broken {
		if r.done {
			// Trailers end the stream; a client reading on would see a
			// stream the recorder cannot vouch for.
			r.broken = true
			return
		}
		if r.nhdr < headerLen {
			k := copy(r.hdr[r.nhdr:], p)
			r.nhdr += k
			p = p[k:]
			if r.nhdr < headerLen {
				return
			}
			flag := r.hdr[0]
			r.remaining = binary.BigEndian.Uint32(r.hdr[1:])
			switch {
			case flag == flagTrailer:
				r.inTrailer = true
			case flag&^flagCompressed != 0:
				// A compressed trailer frame or an unknown flag.
				r.broken = true
				return
			}
			if r.remaining == 0 {
				r.endFrame()
			}
			continue
		}
		k := min(uint64(r.remaining), uint64(len(p)))
		if r.inTrailer {
			r.trailer(p[:k])
		}
		p = p[k:]
		r.remaining -= uint32(k)
		if r.remaining == 0 {
			r.endFrame()
		}
	}
}

func (r *WebStatusRecorder) endFrame() {
	r.nhdr = 0
	if r.inTrailer {
		r.endLine() // the block's last line may lack its CRLF
		r.done = true
	}
}

// trailer reads trailer-block bytes line by line, keeping only a line short
// enough to be a grpc-status line.
func (r *WebStatusRecorder) trailer(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !r.longLine {
			if r.nline+len(chunk) > len(r.line) {
				r.longLine = true
			} else {
				r.nline += copy(r.line[r.nline:], chunk)
			}
		}
		if i < 0 {
			return
		}
		r.endLine()
		p = p[i+1:]
	}
}

func (r *WebStatusRecorder) endLine() {
	line := r.line[:r.nline]
	long := r.longLine
	r.nline, r.longLine = 0, false
	if long || len(line) < len(statusKey) || !bytes.EqualFold(line[:len(statusKey)], []byte(statusKey)) {
		return
	}
	// Repeated grpc-status lines: the last one counts, as with headers.
	r.code, r.codeOK = parseCode(string(line[len(statusKey):]))
}

// decodeQuad decodes one base64 quantum, which may carry padding: gRPC-Web
// text is a run of independently padded chunks.
func decodeQuad(q [4]byte, out *[3]byte) (int, bool) {
	var v [4]byte
	n := 4
	switch {
	case q[2] == '=' && q[3] == '=':
		n = 2
	case q[3] == '=':
		n = 3
	}
	for i := 0; i < n; i++ {
		d := b64Value(q[i])
		if d < 0 {
			return 0, false
		}
		v[i] = byte(d)
	}
	out[0] = v[0]<<2 | v[1]>>4
	out[1] = v[1]<<4 | v[2]>>2
	out[2] = v[2]<<6 | v[3]
	return n - 1, true
}

func b64Value(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}

// Interface guards
var (
	_ http.ResponseWriter = (*WebStatusRecorder)(nil)
	_ http.Flusher        = (*WebStatusRecorder)(nil)
)
