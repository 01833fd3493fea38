package catalog

import (
	"slices"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// IsBatch reports whether a request to host (a Host header; an alias host
// counts as the API it aliases) for escapedPath (r.URL.EscapedPath()) is
// addressed to an HTTP batch endpoint of an API the catalog governs on that
// host: the batch path of one of the host's APIs (Method.BatchPath), or the
// generic "/batch" or "/batch/<api>/<version>" (two plain names:
// unreserved characters, no dot segment), which Google's front end serves
// for every API.
//
// The gateway must not pass a batch it cannot read for certain, so IsBatch
// also accepts every spelling a lenient server may read as one of those:
// any letter case ("/BATCH", "/Batch/Vault/V1"); empty segments, a
// trailing slash, "." and ".." segments, backslashes (also %5C) and a
// missing leading '/' ("//batch/", "/x/../batch", `\batch`, "batch"); and
// percent-escapes of unreserved characters, decoded once ("/%62atch",
// "/%2e/batch"), and of '/' (%2F or %2f, "/batch%2Fvault%2Fv1"). An
// escape is never decoded twice ("/batch%252Fvault%252Fv1" is no batch
// path), and a path with more segments ("/batch/vault/v1/x") or a verb
// ("/batch:x") is none either.
//
// A host that the catalog does not name, and that aliases none it names,
// has no governed batch endpoint, unless the catalog has methods for every
// host (New's host-less methods). IsBatch does not allocate unless the path
// spells "batch" (in some letter case, or escaping a letter) and must be
// read another way to be sure: it holds an escape, or is ambiguous.
func (c *Catalog) IsBatch(host, escapedPath string) bool {
	if !spellsBatch(escapedPath) {
		return false
	}
	t, _ := c.table(trimHost(host))
	if t == nil {
		return false
	}
	if t.isBatchPath(escapedPath) {
		return true
	}
	if strings.IndexByte(escapedPath, '%') < 0 && !pathtemplate.Ambiguous(escapedPath) {
		return false // only the letter case could differ, and isBatchPath ignores it
	}
	// Cleaned with %2F kept, and with %2F read as '/': the first reading
	// can drop a %2F with its segment ("/batch/a/b/x%2Fy/.."), the second
	// split one.
	return t.isBatchPath(pathtemplate.Clean(escapedPath)) ||
		hasEncodedSlash(escapedPath) && t.isBatchPath(pathtemplate.Clean(decodeSlashes(escapedPath)))
}

// batchPrefix starts every batch path.
const batchPrefix = "/batch"

// isBatchPath reports whether path, in any letter case, is one of the
// host's batch paths or a generic one.
func (t *hostTable) isBatchPath(path string) bool {
	if len(path) >= len(batchPrefix) && strings.EqualFold(path[:len(batchPrefix)], batchPrefix) {
		rest := path[len(batchPrefix):]
		if rest == "" {
			return true
		}
		if rest[0] == '/' {
			// An API and a version are plain names: a dot segment, a
			// backslash or an escape reads otherwise to a lenient server,
			// and IsBatch tries that reading on its own.
			api, version, ok := strings.Cut(rest[1:], "/")
			if ok && plainSegment(api) && plainSegment(version) {
				return true
			}
		}
	}
	for _, bp := range t.batchPaths {
		if strings.EqualFold(path, bp) {
			return true
		}
	}
	return false
}

// plainSegment reports whether seg is a name every server reads alike:
// unreserved characters only, and not a dot segment.
func plainSegment(seg string) bool {
	if seg == "" || seg == "." || seg == ".." {
		return false
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
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
// quotaUser, upload_protocol, uploadType, $.xgafv, ...), or one's
// "$"-prefixed form ("$alt", "$fields"), which Google's front end reads
// alike. Names are case-sensitive, as Google's are. It does not allocate.
func IsSystemParam(name string) bool {
	if isSystemParam(name) {
		return true
	}
	plain, ok := strings.CutPrefix(name, "$")
	return ok && !strings.HasPrefix(plain, "$") && isSystemParam(plain)
}

func isSystemParam(name string) bool {
	_, ok := slices.BinarySearch(systemParams[:], name)
	return ok
}
