package frame

import (
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// WriteTrailersOnly refuses a gRPC call with a trailers-only response: HTTP
// 200 and one HEADERS frame carrying the status, which Google's gRPC clients
// read with status.FromError and apierror.FromError. st's details travel in
// grpc-status-details-bin; a Status that cannot be marshalled loses its
// details, never its code.
func WriteTrailersOnly(w http.ResponseWriter, st *spb.Status) {
	st = validUTF8(st)
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(st.GetCode())))
	if m := st.GetMessage(); m != "" {
		h.Set("Grpc-Message", percentEncode(m))
	}
	if d := details(st); d != "" {
		h.Set("Grpc-Status-Details-Bin", d)
	}
	// net/http's HTTP/2 server adds content-length: 0 to an empty response
	// unless told not to (a nil value suppresses an automatic header).
	// grpc-go tolerates it but hands it to the application as trailer
	// metadata; a gRPC server sends none, so neither does the gateway.
	h["Content-Length"] = nil
	w.WriteHeader(http.StatusOK)
}

// WriteWeb refuses a gRPC-Web call: HTTP 200 and a body holding one trailer
// frame (flag 0x80) with the status, base64-encoded when text.
//
// PROTOCOL-WEB.md lets a trailers-only response carry the status in the
// headers instead, but a browser's script cannot read a cross-origin
// response header the server did not list in Access-Control-Expose-Headers,
// while it can always read the body. So the status is in the body only: one
// source, which every gRPC-Web client reads, and no header to contradict it.
//
// grpc-status-details-bin stays base64 in the text form too: PROTOCOL-WEB.md
// says the extra encoding is skipped there, but the value would then be raw
// bytes inside a CRLF-delimited block, and gRPC-Web proxies and clients
// (Envoy, grpc-web, connect) send and expect base64 in both forms.
func WriteWeb(w http.ResponseWriter, st *spb.Status, text bool) {
	st = validUTF8(st)
	block := make([]byte, headerLen, 128)
	block = append(block, "grpc-status: "...)
	block = strconv.AppendInt(block, int64(st.GetCode()), 10)
	block = append(block, "\r\n"...)
	if m := st.GetMessage(); m != "" {
		block = append(block, "grpc-message: "...)
		block = append(block, percentEncode(m)...)
		block = append(block, "\r\n"...)
	}
	if d := details(st); d != "" {
		block = append(block, "grpc-status-details-bin: "...)
		block = append(block, d...)
		block = append(block, "\r\n"...)
	}
	block[0] = flagTrailer
	binary.BigEndian.PutUint32(block[1:headerLen], uint32(len(block)-headerLen))

	contentType := "application/grpc-web+proto"
	if text {
		contentType = "application/grpc-web-text+proto"
		block = base64.StdEncoding.AppendEncode(nil, block)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(block)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(block) // the client is gone if this fails; nothing is left to tell it
}

// validUTF8 returns st with its message made valid UTF-8 as grpc-go does
// (U+FFFD for each bad byte): proto.Marshal refuses invalid UTF-8 in a
// string field, and the header and the details must say the same.
func validUTF8(st *spb.Status) *spb.Status {
	m := st.GetMessage()
	if utf8.ValidString(m) {
		return st
	}
	return &spb.Status{Code: st.GetCode(), Message: strings.ToValidUTF8(m, "\uFFFD"), Details: st.GetDetails()}
}

// details is grpc-status-details-bin: unpadded base64, as grpc-go sends it.
func details(st *spb.Status) string {
	b, err := proto.Marshal(st)
	if err != nil || len(b) == 0 {
		return ""
	}
	return base64.RawStdEncoding.EncodeToString(b)
}

// percentEncode encodes a grpc-message as the gRPC HTTP/2 protocol defines:
// every byte outside 0x20-0x7E, and '%', becomes %XX.
func percentEncode(m string) string {
	n := 0
	for i := 0; i < len(m); i++ {
		if escape(m[i]) {
			n++
		}
	}
	if n == 0 {
		return m
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(m)+2*n)
	for i := 0; i < len(m); i++ {
		c := m[i]
		if escape(c) {
			b = append(b, '%', hex[c>>4], hex[c&0xF])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func escape(c byte) bool { return c < 0x20 || c > 0x7E || c == '%' }
