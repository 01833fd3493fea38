package catalog

import (
	"slices"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// IsBatchPath reports whether some reading of escapedPath
// (r.URL.EscapedPath()) is addressed to an HTTP batch endpoint: its first
// segment is "batch" (or its first two "upload" and "batch"), in any
// letter case, whatever follows ("/batch", "/batch/vault/v1",
// "/batch/storage/v1", "/upload/batch", and also "/batch/cancel/x"):
// Google's front end serves the batch endpoint on every host it serves, and
// what the rest of such a path holds is for Google, not the gateway, to
// refuse. Whether the host is one Google serves is the caller's question.
//
// Every spelling a lenient server may read so counts: empty segments, "."
// and ".." segments, backslashes (also %5C) and a missing leading '/'
// ("//batch/", "/x/../batch", `\batch`, "batch"); percent-escapes of
// unreserved characters, decoded once ("/%62atch", "/%2e/batch"), and of
// '/' ("/%2Fbatch"). An escape is never decoded twice ("/%2562atch" is no
// batch path). It does not allocate unless the path spells "batch" (in
// some letter case, or escaping a letter) and must be read another way to
// be sure: it holds an escape, or is ambiguous.
func IsBatchPath(escapedPath string) bool {
	if !spellsBatch(escapedPath) {
		return false
	}
	if batchFirst(escapedPath) {
		return true
	}
	if strings.IndexByte(escapedPath, '%') < 0 && !pathtemplate.Ambiguous(escapedPath) {
		return false // only the letter case could differ, and batchFirst ignores it
	}
	// Cleaned with %2F kept, and with %2F read as '/': the first reading
	// can drop a %2F with its segment ("/x%2Fy/../batch"), the second
	// split one ("/%2Fbatch").
	return batchFirst(pathtemplate.Clean(escapedPath)) ||
		hasEncodedSlash(escapedPath) && batchFirst(pathtemplate.Clean(decodeSlashes(escapedPath)))
}

// batchPrefix starts every batch path.
const batchPrefix = "/batch"

// uploadPrefix starts the upload endpoints' paths, under which a batch
// path may stand too ("/upload/batch").
const uploadPrefix = "/upload"

// batchFirst reports whether path's first segment is "batch", or its
// first two "upload" and "batch", in any letter case.
func batchFirst(path string) bool {
	if len(path) >= len(uploadPrefix) && strings.EqualFold(path[:len(uploadPrefix)], uploadPrefix) {
		path = path[len(uploadPrefix):]
	}
	if len(path) < len(batchPrefix) || !strings.EqualFold(path[:len(batchPrefix)], batchPrefix) {
		return false
	}
	rest := path[len(batchPrefix):]
	return rest == "" || rest[0] == '/'
}

// spellsBatch reports whether some reading of path may spell "batch": it
// does, in some letter case, or it escapes an ASCII letter.
func spellsBatch(path string) bool {
	if containsFold(path, "batch") {
		return true
	}
	for i := strings.IndexByte(path, '%'); i >= 0 && i+2 < len(path); {
		if hi := path[i+1]; '4' <= hi && hi <= '7' {
			return true
		}
		next := strings.IndexByte(path[i+1:], '%')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

// IsSystemParam reports whether name, a decoded query parameter name, is
// one of Google's system parameters, which every method takes besides its
// own (Method.Query): a top-level parameter of the discovery documents
// (access_token, alt, callback, fields, key, oauth_token, prettyPrint,
// quotaUser, upload_protocol, uploadType, $.xgafv, ...) or one Google
// documents for every API (ct, requestReason, userProject), or one's
// "$"-prefixed form ("$alt", "$ct", "$userProject"), which Google's front
// end reads alike. Names are case-sensitive, as Google's are. It does not allocate.
func IsSystemParam(name string) bool {
	if isSystemParam(name) {
		return true
	}
	plain, ok := strings.CutPrefix(name, "$")
	return ok && !strings.HasPrefix(plain, "$") && isSystemParam(plain)
}

func isSystemParam(name string) bool {
	_, ok := slices.BinarySearch(systemParams[:], name)
	return ok || slices.Contains(documentedParams[:], name)
}

// documentedParams are system parameters Google documents for every API
// (cloud.google.com/apis/docs/system-parameters) that the discovery
// documents do not list: the content type ($ct, which replaces the
// Content-Type header), the quota project and the request reason (which
// the gateway records).
var documentedParams = [...]string{"ct", "requestReason", "userProject"}
