// Package frame holds the wire format of the gRPC and gRPC-Web front
// doors: reading the one length-prefixed message of a unary call, writing
// refusals as gRPC trailers-only and gRPC-Web trailer-frame responses, and
// reading back the grpc-status a forwarded call's client got.
//
// Everything here is strict in what it reads: a request the gateway cannot
// read for certain is refused, because the upstream might read it
// differently from the gateway that judged it.
package frame

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/body"
)

// Wire is how a request's messages are framed, chosen by its Content-Type.
type Wire uint8

const (
	// WireGRPC is application/grpc and application/grpc+proto.
	WireGRPC Wire = iota
	// WireWeb is application/grpc-web and application/grpc-web+proto: the
	// same framing as gRPC.
	WireWeb
	// WireWebText is application/grpc-web-text and
	// application/grpc-web-text+proto: the gRPC-Web frames, base64-encoded.
	WireWebText
)

const (
	headerLen      = 5 // flag byte, then a big-endian uint32 length
	flagCompressed = 0x01
	flagTrailer    = 0x80 // gRPC-Web's trailer frame; never valid from a client

	// initialCap covers a cancel request with a long operation name, so
	// that, read without a buffer from the caller, the common case costs
	// one allocation; a longer message costs one more.
	initialCap = 256
)

// strictBase64 refuses non-zero padding bits, which lenient decoders drop
// and strict ones refuse: a text the upstream may read otherwise, or not at
// all, is refused here.
var strictBase64 = base64.StdEncoding.Strict()

// ReadMessage reads the one request message of a unary call from r.
//
// raw is exactly what was read from r: on success the whole body, which the
// caller puts back as the request body so that the upstream receives the
// client's bytes unchanged. msg is the serialized message, decompressed; for
// an uncompressed binary frame it aliases raw. encoding is the request's
// grpc-encoding header ("" when absent). limit bounds the message, before
// and after decompression; at most limit+6 bytes of a binary body are read
// (the frame header, the message and one byte to see that nothing follows),
// and of a WireWebText body at most the base64 text of a frame at the limit
// sent as two chunks, plus one byte.
//
// buf, when it holds more than a frame header, is memory for the frame:
// a binary frame that fits its capacity is read into it (raw then aliases
// buf), a longer one into memory of its own; nil means none.
//
// On a violation, raw holds what was read and msg is nil. A negative limit
// is 0: only the empty message passes.
func ReadMessage(r io.Reader, wire Wire, encoding string, limit int, buf []byte) (raw, msg []byte, v *body.Violation) {
	limit = max(limit, 0)
	gzipped, v := acceptEncoding(encoding)
	if v != nil {
		return nil, nil, v
	}
	frame := r
	if wire == WireWebText {
		var decoded []byte
		raw, decoded, v = readText(r, limit)
		if v != nil {
			return raw, nil, v
		}
		frame = bytes.NewReader(decoded)
	}
	framed, v := readFrame(frame, buf, limit, gzipped)
	if wire != WireWebText {
		raw = framed
	}
	if v != nil {
		return raw, nil, v
	}
	msg, v = payload(framed, limit)
	if v != nil {
		return raw, nil, v
	}
	return raw, msg, nil
}

// acceptEncoding reads the grpc-encoding header. Only gzip is decompressed:
// a message in another encoding cannot be judged, and a value the gateway
// does not know (even with an uncompressed flag) may mean something to the
// upstream.
func acceptEncoding(encoding string) (gzipped bool, v *body.Violation) {
	switch e := strings.Trim(encoding, " \t"); {
	case e == "" || strings.EqualFold(e, "identity"):
		return false, nil
	case strings.EqualFold(e, "gzip"):
		return true, nil
	}
	return false, &body.Violation{Description: "The grpc-encoding of the request is not supported; send the message uncompressed or gzip-compressed."}
}

// readFrame reads exactly one frame, into buf when it fits (see
// ReadMessage), checking its header before reading the payload so that an
// oversized or unreadable message is refused unread.
func readFrame(r io.Reader, buf []byte, limit int, gzipped bool) ([]byte, *body.Violation) {
	if cap(buf) > headerLen {
		buf = buf[:headerLen]
	} else {
		buf = make([]byte, headerLen, min(limit, initialCap)+headerLen+1)
	}
	if got, err := io.ReadFull(r, buf); err != nil {
		switch {
		case err == io.EOF:
			return nil, &body.Violation{Description: "Request holds no message; a unary call sends exactly one."}
		case err == io.ErrUnexpectedEOF:
			return buf[:got], &body.Violation{Description: "Request message frame is truncated."}
		}
		return buf[:got], unreadable()
	}
	switch flag := buf[0]; {
	case flag&^flagCompressed != 0:
		return buf, &body.Violation{Description: fmt.Sprintf("Request message frame has flags 0x%02x; only 0 (uncompressed) and 1 (compressed) are defined.", flag)}
	case flag == flagCompressed && !gzipped:
		return buf, &body.Violation{Description: "Request message is marked compressed, but the request names no grpc-encoding."}
	}
	n := binary.BigEndian.Uint32(buf[1:headerLen])
	if uint64(n) > uint64(limit) {
		return buf, tooLarge(limit)
	}
	size := headerLen + int(n)
	if size+1 > cap(buf) {
		grown := make([]byte, headerLen, size+1)
		copy(grown, buf)
		buf = grown
	}
	buf = buf[:size]
	if got, err := io.ReadFull(r, buf[headerLen:]); err != nil {
		buf = buf[:headerLen+got]
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return buf, &body.Violation{Description: "Request message is shorter than its length prefix."}
		}
		return buf, unreadable()
	}
	// One more byte, into the spare capacity, tells a clean end from a
	// second message or trailing garbage.
	switch _, err := io.ReadFull(r, buf[size:size+1]); {
	case err == nil:
		return buf[:size+1], &body.Violation{Description: "Request holds more than one message or trailing bytes; a unary call sends exactly one."}
	case err != io.EOF:
		return buf, unreadable()
	}
	return buf, nil
}

// payload returns the message of a complete frame, decompressed.
func payload(frame []byte, limit int) ([]byte, *body.Violation) {
	msg := frame[headerLen:]
	if frame[0]&flagCompressed == 0 {
		return msg, nil
	}
	in := bytes.NewReader(msg)
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, corruptGzip()
	}
	// One member only: a decompressor that stops after the first member
	// would read a prefix of what the gateway judged.
	zr.Multistream(false)
	// limit+1 bytes tell a message at the limit from a gzip bomb.
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	switch {
	case len(out) > limit:
		return nil, &body.Violation{Description: fmt.Sprintf("Decompressed request message is larger than %d bytes.", limit)}
	case err != nil:
		return nil, corruptGzip()
	case in.Len() > 0:
		return nil, &body.Violation{Description: "Request message has bytes after its gzip stream."}
	}
	return out, nil
}

// readText reads a grpc-web-text body and decodes it. Clients encode frame
// by frame, so the text may be several padded base64 chunks in a row; each
// is decoded on its own.
func readText(r io.Reader, limit int) (text, decoded []byte, v *body.Violation) {
	// Room for the frame header and the message encoded as two chunks: their
	// padding costs at most one quantum more than a single chunk.
	textLimit := base64.StdEncoding.EncodedLen(limit+headerLen) + 4
	text, err := io.ReadAll(io.LimitReader(r, int64(textLimit)+1))
	switch {
	case err != nil:
		return text, nil, unreadable()
	case len(text) > textLimit:
		return text, nil, &body.Violation{Description: fmt.Sprintf("Request body is larger than %d bytes.", textLimit)}
	}
	// The decoder skips line breaks; a client's encoder never writes them,
	// so a body holding them is not one the gateway reads for certain.
	if bytes.ContainsAny(text, "\r\n") {
		return text, nil, notBase64()
	}
	decoded = make([]byte, 0, len(text)/4*3)
	for rest := text; len(rest) > 0; {
		end := len(rest)
		if i := bytes.IndexByte(rest, '='); i >= 0 {
			end = (i/4 + 1) * 4 // the end of the quantum holding the padding
		}
		if end > len(rest) || end%4 != 0 {
			return text, nil, notBase64()
		}
		n, err := strictBase64.Decode(decoded[len(decoded):cap(decoded)], rest[:end])
		if err != nil {
			return text, nil, notBase64()
		}
		decoded = decoded[:len(decoded)+n]
		rest = rest[end:]
	}
	return text, decoded, nil
}

func tooLarge(limit int) *body.Violation {
	return &body.Violation{Description: fmt.Sprintf("Request message is larger than %d bytes.", limit)}
}

func unreadable() *body.Violation {
	return &body.Violation{Description: "Request body could not be read."}
}

func corruptGzip() *body.Violation {
	return &body.Violation{Description: "Request message is not a valid gzip stream."}
}

func notBase64() *body.Violation {
	return &body.Violation{Description: "Request body is not valid base64 (application/grpc-web-text)."}
}
