// Package wire reads the HTTP batch front door's wire format: Google's
// multipart/mixed batch (POST /batch, /batch/<api>/<version>), each part
// of which carries one embedded HTTP/1.1 request. It knows nothing of
// governance, so that what reads a batch can be tested and fuzzed alone.
//
// Read is strict: a batch is forwarded byte for byte when its embedded
// cancels pass, so the gateway must read it exactly as Google's front end
// will, and a form two readers could split or parse differently is refused
// rather than guessed at. Two readers must in fact agree: Read's own
// RFC 2046 scan of the raw bytes and mime/multipart (NextRawPart, so that
// nothing is decoded behind its back) must find the same parts, else the
// batch is refused.
//
// What Read accepts, beyond RFC 2046 and RFC 9112:
//
//   - Line endings: every boundary line has the line break of the first
//     one, CRLF (Java, .NET) or LF (Python's email generator writes LF
//     only), and so has the line break before it. Embedded requests may use
//     either.
//   - Preamble and epilogue: whitespace only. A line that starts with
//     "--" and the boundary anywhere in the batch must be a delimiter, and
//     the boundary never follows a bare CR (a line break to some readers).
//   - Part headers: Content-Type application/http, with no parameter but
//     msgtype=request and version=1.0 or 1.1; Content-Transfer-Encoding
//     binary, 8bit or 7bit (read as binary) or none; no Content-Encoding
//     but identity; a Content-Length, if any, equal to the part's body;
//     Content-ID printable ASCII of at most 256 bytes. Folded header lines
//     are read as RFC 5322 unfolds them (Python folds long Content-IDs).
//     Other part headers are ignored, as RFC 2045 says.
//   - Embedded requests: "METHOD target HTTP/1.x", or "METHOD target" as
//     Google's .NET client writes it (read as HTTP/1.1); the method in
//     upper case; the target a path or an http(s) URL without userinfo or
//     fragment; a head that ends at a blank line, or at the end of the part
//     when nothing follows it (.NET again). A body runs to the end of the
//     part when the request has neither Content-Length nor
//     Transfer-Encoding (Java writes no Content-Length when it does not know
//     the length); with Content-Length it is that many bytes, and only one
//     CRLF or LF may follow (.NET ends every request with one); chunked
//     bodies are decoded and may carry no trailer. Refused: folded header
//     lines, Content-Length repeated or with Transfer-Encoding, a
//     Transfer-Encoding on HTTP/1.0 (which Go would ignore), a Host that
//     differs from the URL's host or is not a host name, and anything that
//     is itself a batch (a multipart Content-Type, or a path whose first
//     segment, read as a lenient server would, starts with "batch").
package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// The bounds of what is read of a batch to a governed host.
const (
	MaxBytes = 10 << 20
	MaxParts = 1000
)

const (
	maxContentID = 256 // a refusal echoes the Content-ID
	excerptLen   = 32  // bytes of client input a description may quote
)

// Part is one part of a batch: an embedded request.
type Part struct {
	// Index is the part's 1-based position in the batch.
	Index int
	// ContentID is the part's Content-ID as written (e.g. Python's
	// "<uuid + 1>", Java's "1"), "" when it has none. It is printable ASCII.
	ContentID string
	// Request is the embedded request as parsed: Method, URL and
	// RequestURI as in its request line (a path, or an absolute URL), Host
	// from that URL or else its Host header ("" when it has neither),
	// Header without Host. Body reads the part's own body (decoded when it
	// was chunked) and ContentLength is its length.
	Request *http.Request

	body []byte
}

// Problem is why a batch cannot be read. Description is short, in
// Google's tone, and quotes at most a short, sanitized excerpt of what the
// client sent.
type Problem struct {
	Description string
	// Part is the 1-based position of the offending part, 0 when the
	// problem is the batch as a whole.
	Part int
}

// Read reads a batch sent with the given Content-Type from r: at most
// maxBytes+1 bytes (one more than allowed, to see that the batch is too
// large), and never more.
//
// raw is exactly what was read from r, also on a Problem (nil when the
// Content-Type is refused, since nothing is read then): when every embedded
// cancel passes, the caller forwards raw unchanged. parts are in batch
// order; an empty batch ("--b--") has none. On a Problem, parts is nil.
//
// A read error from r is a Problem too; an *http.MaxBytesError counts as a
// batch that is too large. The caller should refuse a batch whose own
// Content-Encoding is not identity before calling Read: Google's batch
// endpoint does not take compressed batches, and Read reads raw bytes.
func Read(r io.Reader, contentType string, maxBytes int64, maxParts int) (raw []byte, parts []Part, v *Problem) {
	boundary, v := boundaryOf(contentType)
	if v != nil {
		return nil, nil, v
	}
	if raw, v = ReadBounded(r, maxBytes); v != nil {
		return raw, nil, v
	}
	parts, v = parse(raw, boundary, maxParts)
	return raw, parts, v
}

// Parse reads the parts of a batch whose bytes, sent with the given
// Content-Type, are raw: at most maxParts of them. On a Problem, parts is
// nil.
func Parse(raw []byte, contentType string, maxParts int) ([]Part, *Problem) {
	boundary, v := boundaryOf(contentType)
	if v != nil {
		return nil, v
	}
	return parse(raw, boundary, maxParts)
}

func parse(raw []byte, boundary string, maxParts int) ([]Part, *Problem) {
	spans, v := split(raw, boundary, max(maxParts, 0))
	if v != nil {
		return nil, v
	}
	return readParts(raw, boundary, spans)
}

// boundaryOf checks the batch's Content-Type and returns its boundary.
func boundaryOf(contentType string) (string, *Problem) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	switch {
	case err != nil:
		return "", batchProblem("Failed to parse batch request: its Content-Type header is malformed.")
	case mediaType != "multipart/mixed":
		return "", batchProblem("Batch requests must be multipart/mixed, not " + excerpt(mediaType) + ".")
	case strings.IndexByte(contentType, '*') >= 0:
		// RFC 2231 forms (boundary*=, boundary*0=): Go lets them override
		// a plain boundary, other readers ignore them.
		return "", batchProblem("Failed to parse batch request: its Content-Type uses RFC 2231 parameter encoding.")
	}
	b, ok := params["boundary"]
	if !ok {
		return "", batchProblem("Failed to parse batch request: its Content-Type has no boundary.")
	}
	if !validBoundary(b) {
		return "", batchProblem("Failed to parse batch request: its boundary is not an RFC 2046 boundary.")
	}
	return b, nil
}

// validBoundary reports whether b is 1 to 70 RFC 2046 bchars, not ending
// in a space.
func validBoundary(b string) bool {
	if b == "" || len(b) > 70 || b[len(b)-1] == ' ' {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("'()+_,-./:=? ", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ReadBounded reads r to its end, or to one byte past maxBytes (a batch
// that is too large, a Problem). The bytes are exactly those taken from r.
func ReadBounded(r io.Reader, maxBytes int64) ([]byte, *Problem) {
	return readBounded(r, maxBytes, -1, nil)
}

// ReadBody is ReadBounded for a request's body, whose length, when the
// request declares it, sizes the buffer once.
func ReadBody(r *http.Request, maxBytes int64) ([]byte, *Problem) {
	return ReadBodyInto(r, maxBytes, nil)
}

// ReadBodyInto is ReadBody into buf's memory when it has room for the
// declared length and ReadFrom's last read; otherwise into memory of its
// own.
func ReadBodyInto(r *http.Request, maxBytes int64, buf []byte) ([]byte, *Problem) {
	return readBounded(r.Body, maxBytes, r.ContentLength, buf)
}

func readBounded(r io.Reader, maxBytes, size int64, buf []byte) ([]byte, *Problem) {
	maxBytes = max(maxBytes, 0)
	if r == nil || r == http.NoBody {
		return nil, nil
	}
	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++
	}
	// Not http.MaxBytesReader: it swallows the byte past the limit, and raw
	// must hold every byte taken from r.
	var raw []byte
	var err error
	if size >= 0 && size < limit {
		// Room for the declared length and for ReadFrom's last read (it
		// asks for bytes.MinRead free bytes before each read, and would
		// otherwise grow the buffer once more, copying the whole body, to
		// see the end or a body longer than it said).
		if need := int(size) + bytes.MinRead; cap(buf) < need {
			buf = make([]byte, 0, need)
		}
		b := bytes.NewBuffer(buf[:0])
		_, err = b.ReadFrom(io.LimitReader(r, limit))
		raw = b.Bytes()
	} else {
		raw, err = io.ReadAll(io.LimitReader(r, limit))
	}
	var mbe *http.MaxBytesError
	switch {
	case int64(len(raw)) > maxBytes, errors.As(err, &mbe):
		return raw, batchProblem(fmt.Sprintf("Batch request is larger than %d bytes.", maxBytes))
	case err != nil:
		return raw, batchProblem("Failed to read the batch request body.")
	}
	return raw, nil
}

// span is a part's content in the raw batch, its headers and body: from
// the end of its delimiter line to the line break before the next one.
type span struct{ start, end int }

// split finds the parts of the batch by its delimiter lines (RFC 2046
// 5.1.1), refusing what readers could split differently: text outside the
// parts, a line that starts like a delimiter but is none, line breaks
// around delimiters that differ from the first delimiter's.
func split(raw []byte, boundary string, maxParts int) ([]span, *Problem) {
	needle := []byte("\r--" + boundary)
	// Some readers (Python's email parser) break lines at a bare CR too.
	if bytes.Contains(raw, needle) {
		return nil, batchProblem("Failed to parse batch request: its boundary follows a bare CR.")
	}
	needle[0] = '\n'
	dash := needle[1:]
	var spans []span
	nl := "" // the delimiters' line break, set by the first one
	start := -1
	for at := 0; ; {
		i := at
		if !bytes.HasPrefix(raw[at:], dash) {
			k := bytes.Index(raw[at:], needle)
			if k < 0 {
				return nil, batchProblem("Failed to parse batch request: missing final boundary.")
			}
			i = at + k + 1
		}
		lineEnd, next := len(raw), len(raw)
		if k := bytes.IndexByte(raw[i:], '\n'); k >= 0 {
			lineEnd, next = i+k, i+k+1
		}
		rest := raw[i+len(dash) : lineEnd]
		final := bytes.HasPrefix(rest, []byte("--"))
		if final {
			rest = rest[2:]
		}
		rest = bytes.TrimLeft(rest, " \t")
		var ending string
		switch {
		case string(rest) == "" && next > lineEnd:
			ending = "\n"
		case string(rest) == "\r" && next > lineEnd:
			ending = "\r\n"
		case string(rest) == "" && final:
			ending = "" // the close delimiter may end the batch
		default:
			return nil, batchProblem("Failed to parse batch request: a line starts with the boundary but is not a boundary delimiter.")
		}
		if start < 0 {
			if !isSpace(raw[:i]) {
				return nil, batchProblem("Failed to parse batch request: it has text before the first boundary.")
			}
			// As in mime/multipart, only a delimiter that opens a part can
			// switch the batch to LF line breaks.
			nl = "\r\n"
			if !final && ending == "\n" {
				nl = "\n"
			}
		} else {
			// The line break before a delimiter belongs to it.
			end := i - len(nl)
			if end < start {
				return nil, batchProblem("Failed to parse batch request: a part is empty.")
			}
			if string(raw[end:i]) != nl || (nl == "\n" && end > start && raw[end-1] == '\r') {
				return nil, batchProblem("Failed to parse batch request: its boundary lines mix line endings.")
			}
			if len(spans) == maxParts {
				return nil, batchProblem(fmt.Sprintf("Batch request has more than %d parts.", maxParts))
			}
			spans = append(spans, span{start, end})
		}
		if ending != nl && !(final && ending == "") {
			return nil, batchProblem("Failed to parse batch request: its boundary lines mix line endings.")
		}
		if final {
			if !isSpace(raw[next:]) {
				return nil, batchProblem("Failed to parse batch request: it has text after the final boundary.")
			}
			return spans, nil
		}
		start, at = next, next
	}
}

// isSpace reports whether b holds only spaces, tabs and line breaks.
func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// readParts reads the parts through mime/multipart and holds each to the
// span split found for it.
func readParts(raw []byte, boundary string, spans []span) ([]Part, *Problem) {
	malformed := func() *Problem {
		return batchProblem("Failed to parse batch request: its multipart body is malformed.")
	}
	if len(spans) == 0 {
		return nil, nil
	}
	parts := make([]Part, 0, len(spans))
	mr := multipart.NewReader(bytes.NewReader(raw), boundary)
	var buf bytes.Buffer
	var hr heads
	for n := 1; ; n++ {
		// NextRawPart, not NextPart: NextPart decodes quoted-printable and
		// drops the header that says so.
		mp, err := mr.NextRawPart()
		switch {
		case err == io.EOF && n == len(spans)+1:
			return parts, nil
		case n > len(spans) || err == io.EOF:
			return nil, malformed()
		case err != nil:
			// split vouched for the structure: what mime/multipart could
			// not read is the part's header block.
			return nil, &Problem{Description: "A batch part's headers are malformed.", Part: n}
		}
		buf.Reset()
		if _, err := buf.ReadFrom(mp); err != nil {
			return nil, malformed()
		}
		content := raw[spans[n-1].start:spans[n-1].end]
		if !bytes.HasSuffix(content, buf.Bytes()) {
			return nil, malformed()
		}
		p, v := readPart(&hr, n, mp.Header, content[len(content)-buf.Len():])
		if v != nil {
			return nil, v
		}
		parts = append(parts, p)
	}
}

// readPart checks a part's headers and reads its embedded request.
func readPart(hr *heads, n int, h textproto.MIMEHeader, body []byte) (Part, *Problem) {
	fail := func(format string, args ...any) (Part, *Problem) {
		return Part{}, &Problem{Description: fmt.Sprintf(format, args...), Part: n}
	}
	for _, name := range []string{"Content-Type", "Content-Transfer-Encoding", "Content-Encoding", "Content-Length", "Content-Id"} {
		if len(h[name]) > 1 {
			return fail("A batch part repeats its %s header.", name)
		}
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return fail("A batch part has no Content-Type; it must be application/http.")
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil || mediaType != "application/http" {
		return fail("A batch part has Content-Type %s; it must be application/http.", excerpt(ct))
	}
	for k, val := range params {
		ok := k == "msgtype" && strings.EqualFold(val, "request") ||
			k == "version" && (val == "1.1" || val == "1.0")
		if !ok {
			return fail("A batch part has Content-Type %s; only msgtype=request and version=1.x may qualify application/http.", excerpt(ct))
		}
	}
	if cte := h.Get("Content-Transfer-Encoding"); cte != "" &&
		!strings.EqualFold(cte, "binary") && !strings.EqualFold(cte, "8bit") && !strings.EqualFold(cte, "7bit") {
		return fail("A batch part has Content-Transfer-Encoding %s; only binary, 8bit and 7bit are read.", excerpt(cte))
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fail("A batch part has Content-Encoding %s; its request cannot be read.", excerpt(ce))
	}
	if cl, ok := h["Content-Length"]; ok && cl[0] != strconv.Itoa(len(body)) {
		return fail("A batch part's Content-Length does not match its body.")
	}
	id := h.Get("Content-Id")
	if len(id) > maxContentID || !printable(id) {
		return fail("A batch part's Content-ID is longer than %d bytes or not printable ASCII.", maxContentID)
	}
	req, reqBody, why := readRequest(hr, body)
	if why != "" {
		return fail("%s", why)
	}
	return Part{Index: n, ContentID: id, Request: req, body: reqBody}, nil
}

// heads parses the request heads of a batch's parts through one bufio
// buffer.
type heads struct {
	rd bytes.Reader
	br *bufio.Reader
}

func (h *heads) read(head []byte) (*http.Request, error) {
	h.rd.Reset(head)
	if h.br == nil {
		h.br = bufio.NewReaderSize(&h.rd, 1024)
	} else {
		h.br.Reset(&h.rd)
	}
	return http.ReadRequest(h.br)
}

// readRequest reads the one HTTP/1.x request a part's body must be. On
// failure it says why.
func readRequest(hr *heads, b []byte) (*http.Request, []byte, string) {
	const unreadable = "The request in a batch part cannot be read as one HTTP/1.1 request."
	lineEnd := bytes.IndexByte(b, '\n')
	if lineEnd < 0 {
		return nil, nil, unreadable
	}
	line := bytes.TrimSuffix(b[:lineEnd], []byte("\r"))
	// The head runs to the first empty line. Go's parser would read what
	// some servers refuse, so look at the raw lines first.
	headEnd, blank := len(b), false
	var lengths, encodings int
	var host []byte // the Host header, which ReadRequest drops
	for pos := lineEnd + 1; pos < len(b); {
		k := bytes.IndexByte(b[pos:], '\n')
		if k < 0 {
			return nil, nil, unreadable
		}
		l := bytes.TrimSuffix(b[pos:pos+k], []byte("\r"))
		pos += k + 1
		if len(l) == 0 {
			headEnd, blank = pos, true
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			return nil, nil, "The request in a batch part folds a header line."
		}
		name, value, _ := bytes.Cut(l, []byte(":"))
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			lengths++
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			encodings++
		case bytes.EqualFold(name, []byte("Host")):
			host = bytes.Trim(value, " \t")
		}
	}
	head := b[:headEnd]
	versionless := bytes.Count(line, []byte(" ")) == 1
	if versionless || !blank {
		// Google's .NET client writes "METHOD URL" and, without a body, no
		// blank line: complete the head for Go's parser.
		h := make([]byte, 0, len(head)+len(" HTTP/1.1\r\n\r\n"))
		h = append(h, line...)
		if versionless {
			h = append(h, " HTTP/1.1"...)
		}
		h = append(h, "\r\n"...)
		h = append(h, b[min(lineEnd+1, headEnd):headEnd]...)
		if !blank {
			h = append(h, "\r\n"...)
		}
		head = h
	}
	req, err := hr.read(head)
	if err != nil {
		return nil, nil, unreadable
	}
	if why := checkRequest(req, string(host)); why != "" {
		return nil, nil, why
	}
	body := b[headEnd:]
	switch {
	case encodings > 0 && lengths > 0:
		return nil, nil, "The request in a batch part has both Transfer-Encoding and Content-Length."
	case encodings > 0 && req.ProtoMinor == 0:
		return nil, nil, "The HTTP/1.0 request in a batch part has a Transfer-Encoding."
	case encodings > 0: // Go accepted it: one Transfer-Encoding, chunked
		rd := bytes.NewReader(body)
		br := bufio.NewReaderSize(rd, len(body))
		decoded, err := io.ReadAll(httputil.NewChunkedReader(br))
		if err != nil {
			return nil, nil, "The chunked body of the request in a batch part is malformed."
		}
		// What the chunked reader left is the trailer section: it must be
		// empty, the final CRLF alone.
		if rest := body[len(body)-br.Buffered()-rd.Len():]; string(rest) != "\r\n" {
			return nil, nil, "The request in a batch part has a trailer or bytes after its chunked body."
		}
		body = decoded
	case lengths > 1:
		return nil, nil, "The request in a batch part repeats Content-Length."
	case lengths == 1:
		n := req.ContentLength
		if n > int64(len(body)) {
			return nil, nil, "The request in a batch part is shorter than its Content-Length."
		}
		if rest := body[n:]; len(rest) > 0 && string(rest) != "\r\n" && string(rest) != "\n" {
			return nil, nil, "The request in a batch part has bytes after its body."
		}
		body = body[:n]
	}
	req.Body = http.NoBody
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	req.ContentLength = int64(len(body))
	return req, body, ""
}

// checkRequest refuses request lines and hosts the gateway cannot read for
// certain, and batches inside the batch.
func checkRequest(req *http.Request, hostHeader string) string {
	if req.ProtoMajor != 1 || req.ProtoMinor > 1 {
		return "The request in a batch part must be HTTP/1.0 or HTTP/1.1."
	}
	for i := 0; i < len(req.Method); i++ {
		if c := req.Method[i]; c < 'A' || c > 'Z' {
			return "The request in a batch part has method " + excerpt(req.Method) + "; methods are upper case."
		}
	}
	target := req.RequestURI
	absolute := !strings.HasPrefix(target, "/")
	if strings.IndexByte(target, '#') >= 0 || absolute &&
		(req.URL.Scheme != "http" && req.URL.Scheme != "https" || req.URL.Host == "" || req.URL.User != nil || req.URL.Opaque != "") {
		return "The request in a batch part must name a path or an http(s) URL."
	}
	// RFC 9112 has a server ignore the Host header of an absolute URL; a
	// reader that routes by the header would govern another API.
	if hostHeader != "" && (!validHost(hostHeader) || absolute && !strings.EqualFold(hostHeader, req.URL.Host)) ||
		absolute && !validHost(req.URL.Host) {
		return "The request in a batch part names a Host that is not its URL's host, or not a host name."
	}
	for _, ct := range req.Header["Content-Type"] {
		if strings.Contains(strings.ToLower(ct), "multipart") {
			return "A batch part holds another batch; nested batches are refused."
		}
	}
	// Read the path as a lenient server would ("/./batch", "/%62atch",
	// "//Batch" are all the batch endpoint to someone).
	first, _, _ := strings.Cut(strings.TrimPrefix(pathtemplate.Clean(req.URL.EscapedPath()), "/"), "/")
	if strings.HasPrefix(strings.ToLower(first), "batch") {
		return "A batch part holds another batch; nested batches are refused."
	}
	return ""
}

// validHost reports whether h is a host name, an IP literal or either
// with a port: the bytes a Google host can hold.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(".-_:[]", c) >= 0:
		default:
			return false
		}
	}
	return h != ""
}

// AsAlone is the embedded request as if it had been sent alone, on the
// connection outer (a server request) arrived on:
//
//   - method, path and query from the part's request line, in origin form
//     (RequestURI is URL.RequestURI()); outer's raw query, when it has one,
//     is appended after the part's with "&", duplicates kept, so that
//     Query().Get gives the part's own value first and a credential in
//     both the part and the outer query is seen twice;
//   - Host: the part's absolute URL's host, else its Host header, else
//     outer.Host;
//   - Header: outer's headers, overridden name by name by the part's own
//     (the part's Authorization is its credential, outer's otherwise).
//     Outer's Content-* headers, which describe the batch's body, and its
//     hop-by-hop headers are not inherited;
//   - Body: a fresh reader of the part's own body at each call;
//   - context, Proto, RemoteAddr and TLS: outer's.
func (p Part) AsAlone(outer *http.Request) *http.Request {
	in := p.Request
	u := &url.URL{Path: in.URL.Path, RawPath: in.URL.RawPath, RawQuery: in.URL.RawQuery}
	if q := outer.URL.RawQuery; q != "" {
		if u.RawQuery != "" {
			u.RawQuery += "&" + q
		} else {
			u.RawQuery = q
		}
	}
	h := make(http.Header, len(outer.Header)+len(in.Header))
	for k, vs := range outer.Header {
		if inherited(k) {
			h[k] = slices.Clone(vs)
		}
	}
	for k, vs := range in.Header {
		h[k] = slices.Clone(vs)
	}
	host := in.Host
	if host == "" {
		host = outer.Host
	}
	alone := &http.Request{
		Method:        in.Method,
		URL:           u,
		Proto:         outer.Proto,
		ProtoMajor:    outer.ProtoMajor,
		ProtoMinor:    outer.ProtoMinor,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: int64(len(p.body)),
		Host:          host,
		RemoteAddr:    outer.RemoteAddr,
		RequestURI:    u.RequestURI(),
		TLS:           outer.TLS,
	}
	if len(p.body) > 0 {
		alone.Body = io.NopCloser(bytes.NewReader(p.body))
	}
	return alone.WithContext(outer.Context())
}

// inherited reports whether an outer header (canonical name) applies to
// every part: Google's batch applies all but the Content- headers; the
// hop-by-hop ones belong to the outer connection.
func inherited(name string) bool {
	if strings.HasPrefix(name, "Content-") {
		return false
	}
	switch name {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return false
	}
	return true
}

func batchProblem(description string) *Problem {
	return &Problem{Description: description}
}

// printable reports whether s is printable ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// excerpt quotes at most excerptLen bytes of client input, with anything
// but printable ASCII (and the quote and backslash) shown as '?'.
func excerpt(s string) string {
	cut := len(s) > excerptLen
	if cut {
		s = s[:excerptLen]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	if cut {
		return `"` + string(b) + `..."`
	}
	return `"` + string(b) + `"`
}
