// Package pathtemplate parses google.api.http path templates (AIP-127, the
// gRPC transcoding syntax) and matches escaped request paths against them
// without allocating.
//
// Matching works on the path exactly as it arrives (r.URL.EscapedPath()) and
// never decodes it first: literals and the verb compare byte for byte, so a
// %2F stays inside its segment and "%63ancel" is not the verb "cancel".
//
//   - A template with a verb splits the path's last segment at its last ':'
//     ("/v1/operations/a/b:c:cancel" binds name = "operations/a/b:c" against
//     "/v1/{name=operations/**}:cancel") and never matches a path without one;
//     a template without a verb matches the whole last segment, colons included.
//   - "*" matches one non-empty segment. "**" (last only) matches zero or more
//     non-empty segments, as in grpc-gateway: "/v1/{name=o/**}" matches "/v1/o".
//     An empty segment ("//", a trailing "/") matches nothing.
//   - A variable's span covers its segments and the '/' between them, not the
//     verb. Unescape decodes a span exactly once.
//   - The canonical form (String) spells a bare {x} as {x=*}.
//
// Set matches one path against many templates through a segment trie and
// returns the most specific: at each segment a literal beats "*", which beats
// "**"; a template with a verb beats one without; remaining ties go to the
// lowest id.
//
// Ambiguous flags paths that two servers could read differently (dot and
// empty segments, backslashes, a verb that changes when decoded); Clean
// returns the reading of a lenient server, so that a caller can refuse
// requests whose cleaned path would be one of its templates.
package pathtemplate
