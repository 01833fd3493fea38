// Package reading is the one reader: for every request, it takes every
// reading Google's front end could make of it and says what the request
// is — not a cancel under any reading (pass it untouched), one cancel or
// batch (its door, and what that door needs), or something that reads two
// ways (refuse it). Whether a request is a cancel is decided here and
// nowhere else: the front doors only read wire formats, the batch reader
// asks ReadPart of each embedded request, and the matcher asks Read.
//
// # The readings
//
// A request is read under each of the signals Google's front end honours:
//
//   - Method: the request's own; the override headers
//     X-HTTP-Method-Override, X-HTTP-Method and X-Method-Override (each
//     value, each comma-separated item); the system parameter $httpMethod
//     in the query, also %24-encoded.
//   - Content type: Content-Type, or the system parameter $ct, which Google
//     documents as replacing it: a request with $ct is read with that type.
//   - Host: the request's (or the pinned services); the catalog's hosts and
//     their aliases, the shared legacy host www.googleapis.com, and every
//     other host under googleapis.com and clients6.google.com. A host
//     Google does not serve has no REST or batch reading.
//   - Path: as written and decoded once, cleaned, with %2F read as '/'
//     (the catalog's Recognize and IsBatchPath), in the ":cancel" and
//     "/cancel" styles; without matrix parameters (';', also as %3B) or a
//     fragment ('#'); a gRPC or $rpc method path (catalog.LookupRPC,
//     catalog.LookupFallback).
//   - Query: split at '&', and at ';' too, as some readers split it.
//
// A request is a REST cancel when, under some method reading, its path is
// a cancel of its host (catalog.Recognize); a batch when, under some
// method reading, it is a POST to a batch path (catalog.IsBatchPath) of a
// host Google serves; a gRPC-family call when its path names a cancel RPC.
//
// # Two ways
//
// When no reading is a cancel or a batch, the request is none of the
// gateway's business, whatever else it holds. When some reading is, the
// request is refused 400 AMBIGUOUS_REQUEST if its signals read two ways:
// a method override given more than once (repeated, a list, two header
// names, header and query), a method or a system parameter name in
// another letter case, $httpHeaders (headers carried in the query, which
// Google does not document), $ct beside a Content-Type that disagrees or
// given twice, ';' in the query or the path (a query separator, matrix
// parameters), '#' in the path, or readings of more than one kind (a batch path that is
// also a cancel path). Refusals the contract names otherwise keep their
// reasons: an override on a REST cancel is METHOD_OVERRIDE_REFUSED, a path
// that reads two ways AMBIGUOUS_PATH. A batch part that names another API
// than its batch reads two ways, except on the global batch endpoint
// www.googleapis.com/batch, where each part is read under the host it names.
//
// The reference reader (reference.go) enumerates the same readings the
// slow, obvious way; FuzzReadAgreesWithReference holds Read to it.
package reading

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

// Door is the front door a request comes to.
type Door uint8

const (
	// None: not a cancel under any reading; the request passes untouched.
	None Door = iota
	// REST: a cancel of the catalog's path templates, or an unlisted one.
	REST
	// GRPC: a gRPC or gRPC-Web call of a cancel RPC.
	GRPC
	// RPC: a $rpc fallback call of a cancel RPC.
	RPC
	// Batch: an HTTP batch to a host Google serves, which may hold cancels.
	Batch
)

// Refusal is why a request that may be a cancel is refused before any of
// it is read.
type Refusal uint8

const (
	// NoRefusal: the request is read by its door.
	NoRefusal Refusal = iota
	// AmbiguousRequest: its signals read two ways (Reading.Why says how).
	AmbiguousRequest
	// AmbiguousPath: its path reads two ways (catalog.Ambiguous).
	AmbiguousPath
	// MethodOverride: a REST cancel under some method reading, carrying a
	// method override.
	MethodOverride
)

// Reading is what the reader made of a request.
type Reading struct {
	Door    Door
	Refusal Refusal
	// Why says, for AmbiguousRequest, which signals read two ways, in
	// Google's tone; it never quotes the request.
	Why string
	// REST is the catalog's recognition (REST door), also for a refusal.
	REST catalog.Result
	// RPC is the cancel RPC the path names (gRPC and $rpc doors); Exact
	// is false when it names it only loosely.
	RPC   *catalog.RPC
	Exact bool
	// ContentType is the content type Google's front end reads: $ct when
	// the query gives it, else the Content-Type header.
	ContentType string
	// Service is the API host the request is governed under.
	Service string
}

// Reader reads requests against a catalog, under pinned services or the
// request's host. It is immutable and safe for concurrent use.
type Reader struct {
	cat      *catalog.Catalog
	services []string // normalized; nil means the request's Host
}

// New returns a reader of cat's methods. services, normalized hosts, pin
// the API: every request is read as addressed to each of them.
func New(cat *catalog.Catalog, services []string) *Reader {
	return &Reader{cat: cat, services: services}
}

// Catalog returns the reader's catalog.
func (z *Reader) Catalog() *catalog.Catalog { return z.cat }

// Passes reports, at a glance, that r is no cancel and no batch under any
// reading: its decoded path spells neither "cancel" nor "batch" in any
// letter case (every cancel path, REST or RPC, and every batch path spells
// one of them once decoded, and no signal changes the path). Read answers
// None for every request it passes; it costs no allocation, and callers on
// the hot path ask it first so that a Reading is made only for the rest.
func Passes(r *http.Request) bool { return !catalog.ContainsCancelOrBatch(r.URL.Path) }

// Read reads a request as Google's front end could.
func (z *Reader) Read(r *http.Request) Reading {
	if Passes(r) {
		return Reading{}
	}
	return z.read(r, r.Host, "")
}

// ReadPart reads a batch's embedded request (as batch.Part.AsAlone makes
// it, its Host the part's own or else the batch's). named is the host the
// part names itself (its absolute URL or Host header), "" when none;
// batchHost is the batch's own Host. A part that is a cancel under some
// reading and names another API than its batch reads two ways, except in
// a batch to the global endpoint www.googleapis.com/batch, where each part
// is read under the host it names when Google serves that host; one that
// names a host Google does not serve is read under the batch's host too,
// as the endpoint may route it by its path alone. A part that is itself a
// batch reads two ways too (the batch reader refuses those first).
func (z *Reader) ReadPart(part *http.Request, named, batchHost, batchPath string) Reading {
	if Passes(part) {
		return Reading{}
	}
	global := isGlobalBatch(batchHost, batchPath)
	other := ""
	if named != "" && (!global || !z.serves(named)) && z.cat.Service(named) != z.cat.Service(batchHost) {
		other = batchHost
	}
	rd := z.read(part, part.Host, other)
	if rd.Door == Batch {
		return ambiguous(rd, "A batch request may not hold another batch.")
	}
	return rd
}

// legacyHost is Google's shared legacy host; its /batch is the global
// batch endpoint, whose parts may name any API.
const legacyHost = "www.googleapis.com"

func isGlobalBatch(host, path string) bool {
	return catalog.NormalizeHost(host) == legacyHost && path == "/batch"
}

// maxMethods bounds the method readings kept on the stack; a request with
// more reads two ways anyway, and keeps POST and GET among them.
const maxMethods = 8

// signals are what a request says besides its host and path.
type signals struct {
	methods  [maxMethods]string
	n        int
	override int // override values given, in headers and the query
	why      string
	ct       string // the content type Google reads
}

func (s *signals) addMethod(m string) {
	if m = strings.TrimSpace(m); m == "" {
		return
	}
	for i := range s.n {
		if s.methods[i] == m {
			return
		}
	}
	if s.n < maxMethods {
		s.methods[s.n] = m
		s.n++
		return
	}
	// More readings than the stack holds: every method that can make a
	// cancel or a batch is one of them.
	s.twoWays("The request names too many methods.")
	s.methods[maxMethods-2], s.methods[maxMethods-1] = http.MethodPost, http.MethodGet
}

// twoWays notes the first way in which the request reads two ways.
func (s *signals) twoWays(why string) {
	if s.why == "" {
		s.why = why
	}
}

// overrideHeaders are the method-override headers Google's front end
// honours, in canonical form.
var overrideHeaders = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// HasOverride reports whether h carries any method-override header, with
// any value.
func HasOverride(h http.Header) bool {
	for _, name := range overrideHeaders {
		if len(h[name]) > 0 {
			return true
		}
	}
	return false
}

// readSignals gathers the method and content-type readings of r.
func readSignals(r *http.Request, s *signals) {
	// A request method in another letter case ("post") is a method to
	// some readers and the same as its upper case to others. (An
	// override's value is upper-cased by every reader: an override on a
	// cancel is refused as such.)
	if !isUpper(r.Method) {
		s.twoWays("The request's method is written in another letter case.")
	}
	s.addMethod(r.Method)
	headerNames := 0
	for _, name := range overrideHeaders {
		vs := r.Header[name]
		if len(vs) > 0 {
			headerNames++
		}
		for _, v := range vs {
			for item := range strings.SplitSeq(v, ",") {
				s.override++
				s.addMethod(item)
			}
		}
	}
	cts := r.Header["Content-Type"]
	if len(cts) > 0 {
		s.ct = cts[0]
	}
	q := r.URL.RawQuery
	if strings.IndexByte(q, ';') >= 0 {
		s.twoWays("The query holds ';', which some readers take to separate parameters.")
	}
	ctGiven := 0
	for q != "" {
		var pair string
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, ""
		}
		raw, value, _ := strings.Cut(pair, "=")
		name := raw
		if strings.ContainsAny(raw, "%+") {
			var err error
			if name, err = url.QueryUnescape(raw); err != nil {
				continue // not a name Google reads either
			}
		}
		sig := systemSignal(name)
		if sig == "" {
			continue
		}
		if sig != name {
			s.twoWays("A system parameter is written in another letter case.")
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		switch sig {
		case "$httpMethod":
			s.override++
			s.addMethod(value)
		case "$ct":
			ctGiven++
			if len(cts) > 0 && !sameMediaType(cts[0], value) {
				s.twoWays("The query's $ct and the Content-Type header disagree.")
			}
			s.ct = value
		case "$httpHeaders":
			// The headers it carries may override the method: every method
			// that can make a cancel or a batch is a reading.
			s.twoWays("Headers carried in the query ($httpHeaders) are not read by this gateway.")
			s.addMethod(http.MethodPost)
			s.addMethod(http.MethodGet)
		}
	}
	if ctGiven > 1 {
		s.twoWays("The query gives $ct more than once.")
	}
	if s.override > 1 || headerNames > 1 {
		s.twoWays("The method override is given more than once.")
	}
}

// systemSignal returns the system parameter, among those that change how
// a request is read, that name is in any letter case; "" for any other.
func systemSignal(name string) string {
	for _, sig := range [...]string{"$httpMethod", "$ct", "$httpHeaders"} {
		if strings.EqualFold(name, sig) {
			return sig
		}
	}
	return ""
}

// sameMediaType reports whether two content types name the same media
// type with the same parameters, ignoring letter case and spaces.
func sameMediaType(a, b string) bool {
	return strings.EqualFold(strings.ReplaceAll(a, " ", ""), strings.ReplaceAll(b, " ", ""))
}

func isUpper(m string) bool {
	for i := 0; i < len(m); i++ {
		if 'a' <= m[i] && m[i] <= 'z' {
			return false
		}
	}
	return true
}

// read reads r under every signal, on host and, when otherHost is set (a
// batch part naming another API than its batch), on otherHost too.
func (z *Reader) read(r *http.Request, host, otherHost string) Reading {
	var s signals
	readSignals(r, &s)
	escaped := r.URL.EscapedPath()
	// The path as written; and, when it holds ';' or '#' (as written or
	// decoded once: %3B, a raw '#' Go keeps in the path), without matrix
	// parameters ("/v1/operations/x:cancel;a=b") or a fragment, as some
	// readers drop them.
	paths := [3]string{escaped}
	decoded := [3]string{r.URL.Path}
	n := 1
	if strings.IndexByte(escaped, ';') >= 0 {
		paths[n], decoded[n] = stripMatrix(escaped), stripMatrix(r.URL.Path)
		n++
	}
	if strings.IndexByte(r.URL.Path, ';') >= 0 || strings.IndexByte(r.URL.Path, '#') >= 0 {
		d, _, _ := strings.Cut(r.URL.Path, "#")
		d = stripMatrix(d)
		paths[n], decoded[n] = pathtemplate.Escape(d), d
		n++
	}
	extra := n > 1

	var rd Reading
	var restMethod string
	var rest, batch, grpc, rpc bool
	for i, p := range paths[:n] {
		// REST: the strongest recognition under any method reading and host.
		if m, ok := z.restReading(&rd.REST, s.methods[:s.n], host, p); ok {
			restMethod, rest = m, true
		}
		if otherHost != "" {
			if m, ok := z.restReading(&rd.REST, s.methods[:s.n], otherHost, p); ok {
				restMethod, rest = m, true
			}
		}
		// Batch: a POST, under some method reading, to a batch path of a
		// host Google serves.
		if catalog.IsBatchPath(p) && s.has(http.MethodPost) && (z.serves(host) || otherHost != "" && z.serves(otherHost)) {
			batch = true
		}
		if strings.IndexByte(decoded[i], '.') < 0 {
			continue // every RPC's path names a service "google.<...>"
		}
		if found, exact := lookup(catalog.LookupRPC, decoded[i]); found != nil {
			grpc, rd.RPC, rd.Exact = true, found, exact && r.URL.RawPath == "" && i == 0
		}
		if found, exact := lookup(catalog.LookupFallback, decoded[i]); found != nil {
			rpc, rd.RPC, rd.Exact = true, found, exact && r.URL.RawPath == "" && i == 0
		}
	}
	// With more than one kind, the door that answers the refusal is the
	// one whose caller speaks the more particular encoding.
	kinds := 0
	for _, k := range [...]struct {
		door Door
		is   bool
	}{{GRPC, grpc}, {RPC, rpc}, {REST, rest}, {Batch, batch}} {
		if k.is {
			if kinds++; kinds == 1 {
				rd.Door = k.door
			}
		}
	}
	if kinds == 0 {
		return Reading{}
	}
	rd.ContentType = s.ct
	rd.Service = rd.REST.Service
	if rd.Service == "" || rd.Door != REST {
		rd.Service = z.service(host)
	}
	switch {
	case s.why != "":
		return ambiguous(rd, s.why)
	case kinds > 1:
		return ambiguous(rd, "The request is a cancel or a batch in more than one way.")
	case extra:
		return ambiguous(rd, "The request path holds ';' or '#', which some readers take to start matrix parameters or a fragment.")
	case otherHost != "":
		return ambiguous(rd, "A batch part names another API than the batch it is in.")
	case rd.Door == REST && (s.override > 0 || restMethod != r.Method):
		rd.Refusal = MethodOverride
	case rd.Door == REST && rd.REST.Kind == catalog.Ambiguous:
		rd.Refusal = AmbiguousPath
	}
	return rd
}

// lookup finds the cancel RPC a path names, with one of catalog's lookups.
func lookup(f func(string) (*catalog.RPC, bool, bool), path string) (*catalog.RPC, bool) {
	rpc, exact, found := f(path)
	if !found {
		return nil, false
	}
	return rpc, exact
}

// stripMatrix drops matrix parameters, from a ';' to the end of its
// segment, from every segment of path.
func stripMatrix(path string) string {
	var b strings.Builder
	for seg := range strings.SplitAfterSeq(path, "/") {
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			b.WriteString(seg[:i])
			if strings.HasSuffix(seg, "/") {
				b.WriteByte('/')
			}
			continue
		}
		b.WriteString(seg)
	}
	return b.String()
}

func ambiguous(rd Reading, why string) Reading {
	rd.Refusal, rd.Why = AmbiguousRequest, why
	return rd
}

func (s *signals) has(m string) bool {
	for i := range s.n {
		if strings.EqualFold(s.methods[i], m) {
			return true
		}
	}
	return false
}

// restReading puts in best the REST recognition of escaped on host (or
// the pinned services) under any of the methods, when it outranks best's,
// and returns the method it was found under. A host Google does not serve
// has none: what the catalog does not name there could only be an
// unlisted cancel, which is a Google host's.
func (z *Reader) restReading(best *catalog.Result, methods []string, host, escaped string) (under string, outranks bool) {
	for _, m := range methods {
		res := z.cat.RecognizeIn(z.services, host, upperMethod(m), escaped)
		if !res.Kind.Outranks(best.Kind) {
			continue
		}
		// A listed method is a Google host's by the catalog's own word.
		if res.Kind != catalog.Listed && !z.serves(host) {
			continue
		}
		*best, under, outranks = res, m, true
	}
	return under, outranks
}

// upperMethod returns m in upper case, allocating only when it is not.
func upperMethod(m string) string {
	if isUpper(m) {
		return m
	}
	return strings.ToUpper(m)
}

// service is the API host a request to host is governed under.
func (z *Reader) service(host string) string {
	if len(z.services) > 0 {
		return z.services[0]
	}
	return z.cat.Service(host)
}

// serves reports whether host is one Google serves: a pinned route, a host
// of the catalog or an alias of one (or any host, when the config adds
// templates for every host), or any host under googleapis.com or
// clients6.google.com.
func (z *Reader) serves(host string) bool {
	if len(z.services) > 0 || z.cat.Serves(host) {
		return true
	}
	h := catalog.NormalizeHost(host)
	return h == "googleapis.com" || strings.HasSuffix(h, ".googleapis.com") || strings.HasSuffix(h, ".clients6.google.com")
}
