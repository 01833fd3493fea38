package reading

import (
	"bytes"
	"encoding/binary"
	"math/bits"

	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// MayHoldCancel reports whether the raw bytes of a batch may hold a cancel
// under some reading of its parts. It answers false only when none can:
// every embedded request's target would have to spell "cancel" or
// "batch" (Read's own first test, for a request sent alone), and the bytes
// hide no letters from one pass over them. So it answers true when the
// bytes hold, in any letter case:
//
//   - "cancel" or "batch" anywhere;
//   - a percent-escape of an ASCII letter ("%63ancel" decodes to cancel;
//     an escape is decoded once, so "%2563" hides nothing);
//   - a Content-Transfer-Encoding or Content-Encoding header whose value
//     is not identity, binary, 7bit or 8bit, or that cannot be read at a
//     glance (quoted-printable's "=63" and base64 hide letters; a
//     compressed part hides its request line).
//
// A batch for which it answers false is forwarded after this one pass,
// unparsed, malformed or not: what Google's front end cannot read it
// refuses itself, and no reading of it is a cancel. It does not allocate.
// FuzzScanAgreesWithReference holds it to the reference reader.
func MayHoldCancel(raw []byte) bool {
	// A '%' is rare: the library's vectorized search finds each.
	for i := 0; ; i++ {
		j := bytes.IndexByte(raw[i:], '%')
		if j < 0 {
			break
		}
		if i += j; startsWord(raw, i) {
			return true
		}
	}
	// Every word it looks for starts with a 'c' or a 'b' followed by an 'a'
	// or an 'o', in either case ("ca"ncel, "ba"tch, "co"ntent-...). Eight
	// positions at a time, the pairs that can start one are flagged, and
	// only those are read further.
	i := 0
	for ; i+9 <= len(raw); i += 8 {
		first := binary.LittleEndian.Uint64(raw[i:]) | lowerBits
		// 'b' (0x62) and 'c' (0x63) differ only in the low bit.
		m := zeroBytes((first ^ (ones * 'b')) &^ (ones * 1))
		if m == 0 {
			continue
		}
		second := binary.LittleEndian.Uint64(raw[i+1:]) | lowerBits
		m &= zeroBytes(second^(ones*'a')) | zeroBytes(second^(ones*'o'))
		for ; m != 0; m &= m - 1 {
			if startsWord(raw, i+bits.TrailingZeros64(m)/8) {
				return true
			}
		}
	}
	for ; i < len(raw); i++ {
		if startsWord(raw, i) {
			return true
		}
	}
	return false
}

const (
	ones      = 0x0101010101010101
	lowerBits = 0x2020202020202020 // an ASCII letter's lower case, with it or'ed in
	highs     = 0x8080808080808080
)

// zeroBytes returns the high bit of each byte of w that is zero, and may
// also flag a byte just above a zero one (a borrow): a flag is a position
// to read further, never an answer.
func zeroBytes(w uint64) uint64 {
	return (w - ones) &^ w & highs
}

// startsWord reports whether raw[i:] starts what MayHoldCancel looks for.
func startsWord(raw []byte, i int) bool {
	if raw[i] == '%' {
		return i+2 < len(raw) && escapesLetter(raw[i+1], raw[i+2])
	}
	rest := raw[i:]
	switch raw[i] | 0x20 {
	case 'c':
		if hasFold(rest, "cancel") {
			return true
		}
		// The headers' shared prefix is read once.
		if !hasFold(rest, "content-") {
			return false
		}
		rest = rest[len("content-"):]
		switch {
		case hasFold(rest, "transfer-encoding"):
			return !plainEncoding(rest[len("transfer-encoding"):])
		case hasFold(rest, "encoding"):
			return !plainEncoding(rest[len("encoding"):])
		}
	case 'b':
		return hasFold(rest, "batch")
	}
	return false
}

func hasFold(b []byte, word string) bool {
	if len(b) < len(word) {
		return false
	}
	for i := 0; i < len(word); i++ {
		if b[i]|0x20 != word[i] {
			return false
		}
	}
	return true
}

// plainEncoding reports whether rest, what follows a header name, is ":"
// and an encoding that changes no byte (identity, binary, 7bit, 8bit) on
// the same line.
func plainEncoding(rest []byte) bool {
	i := 0
	for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t') {
		i++
	}
	if i == len(rest) || rest[i] != ':' {
		return false
	}
	i++
	for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t') {
		i++
	}
	end := i
	for end < len(rest) && rest[end] != '\r' && rest[end] != '\n' && rest[end] != ' ' && rest[end] != '\t' && rest[end] != ';' {
		end++
	}
	value := rest[i:end]
	if !bytes.EqualFold(value, []byte("identity")) && !bytes.EqualFold(value, []byte("binary")) &&
		!bytes.EqualFold(value, []byte("7bit")) && !bytes.EqualFold(value, []byte("8bit")) {
		return false
	}
	// Anything but the line's end after the value (parameters, a second
	// token, folding) is read another way by someone.
	for end < len(rest) && (rest[end] == ' ' || rest[end] == '\t') {
		end++
	}
	return end == len(rest) || rest[end] == '\r' || rest[end] == '\n'
}

// escapesLetter reports whether the hex digits hi, lo encode an ASCII letter.
func escapesLetter(hi, lo byte) bool {
	h, l := pathtemplate.Unhex(hi), pathtemplate.Unhex(lo)
	if h < 0 || l < 0 {
		return false
	}
	c := byte(h<<4|l) | 0x20
	return 'a' <= c && c <= 'z'
}
