// Command gen writes methods_gen.go, the table of every Google API method
// whose discovery id ends in "operations.cancel", from the discovery
// documents shipped inside the Go module google.golang.org/api. Each
// method carries its API's batch path and its own query parameters; the
// table also holds Google's system parameters, the union of the top-level
// parameters of the documents that define a cancel.
//
// Run it from the repository root with
//
//	go generate ./internal/catalog/
//
// By default it reads the version of google.golang.org/api that the main
// module requires, from the module cache (downloading it when absent);
// -version selects another one.
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/pathtemplate"
)

const modulePath = "google.golang.org/api"

func main() {
	version := flag.String("version", "", "google.golang.org/api `version` to read (default: the one the main module requires)")
	out := flag.String("o", "methods_gen.go", "output `file`")
	flag.Parse()
	if err := run(*version, *out, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(version, out string, log io.Writer) error {
	src, err := generate(version, log)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	fmt.Fprintf(log, "gen: wrote %s\n", out)
	return nil
}

// generate returns the source of the table read from version of the
// discovery documents ("" for the version the main module requires).
func generate(version string, log io.Writer) ([]byte, error) {
	if version == "" {
		v, err := goCmd("", "list", "-m", "-f", "{{.Version}}", modulePath)
		if err != nil {
			return nil, fmt.Errorf("reading the required version of %s: %w", modulePath, err)
		}
		version = v
	}
	dir, err := moduleDir(version)
	if err != nil {
		return nil, err
	}
	methods, params, err := collect(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("reading discovery documents in %s: %w", dir, err)
	}
	if methods, err = dedupe(methods, log); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "gen: %d methods and %d system parameters from %s@%s\n", len(methods), len(params), modulePath, version)
	return render(version, methods, params)
}

// moduleDir returns the module cache directory of modulePath@version,
// downloading the module when the cache lacks it.
func moduleDir(version string) (string, error) {
	cache, err := goCmd("", "env", "GOMODCACHE")
	if err != nil {
		return "", fmt.Errorf("locating the module cache: %w", err)
	}
	dir := filepath.Join(cache, filepath.FromSlash(modulePath)+"@"+version)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	// Outside the main module, so that go.mod and go.sum stay untouched.
	out, err := goCmd(os.TempDir(), "mod", "download", "-json", modulePath+"@"+version)
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal([]byte(out), &info); jerr == nil && info.Error != "" {
		err = errors.New(info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("downloading %s@%s: %w", modulePath, version, err)
	}
	return info.Dir, nil
}

// goCmd runs the go command in dir and returns its trimmed standard output.
func goCmd(dir string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), err
}

// method is one row of the generated table; it mirrors catalog.Method.
type method struct {
	ID, Service string
	Hosts       []string
	HTTPMethod  string
	Template    string
	Body        string // name of the catalog.BodyKind constant
	Fields      []string
	Scopes      []string
	API         string
	BatchPath   string   // "/" + the document's batchPath; "" when it has none
	Query       []string // the method's own query parameters, sorted
}

// The subset of a discovery document (https://developers.google.com/discovery/v1/reference/apis) the table needs.
type discoveryDoc struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	RootURL     string `json:"rootUrl"`
	MTLSRootURL string `json:"mtlsRootUrl"`
	ServicePath string `json:"servicePath"`
	BatchPath   string `json:"batchPath"`
	// Parameters are the system parameters every method of the API takes.
	Parameters map[string]struct {
		Location string `json:"location"`
	} `json:"parameters"`
	Endpoints []struct {
		EndpointURL string `json:"endpointUrl"`
	} `json:"endpoints"`
	Resources map[string]discoveryResource `json:"resources"`
	Methods   map[string]discoveryMethod   `json:"methods"`
	Schemas   map[string]struct {
		Properties map[string]json.RawMessage `json:"properties"`
	} `json:"schemas"`
}

type discoveryResource struct {
	Resources map[string]discoveryResource `json:"resources"`
	Methods   map[string]discoveryMethod   `json:"methods"`
}

type discoveryMethod struct {
	ID         string `json:"id"`
	Path       string `json:"path"`
	HTTPMethod string `json:"httpMethod"`
	Parameters map[string]struct {
		Location string `json:"location"`
		Pattern  string `json:"pattern"`
	} `json:"parameters"`
	Request *struct {
		Ref string `json:"$ref"`
	} `json:"request"`
	Scopes []string `json:"scopes"`
}

// collect reads every *-api.json under fsys and returns its cancel methods
// and the sorted union of the system parameters of the documents that
// define one.
func collect(fsys fs.FS) ([]method, []string, error) {
	var methods []method
	var params []string
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return fs.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(name, "-api.json") {
			return nil
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		// Decoding is the slow part; most documents have no cancel to find.
		if !bytes.Contains(data, []byte(`operations.cancel"`)) {
			return nil
		}
		var doc discoveryDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			return fmt.Errorf("parsing %s: %w", name, err)
		}
		ms, err := cancelMethods(&doc)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(ms) == 0 {
			return nil
		}
		ps, err := systemParams(&doc)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		methods = append(methods, ms...)
		params = append(params, ps...)
		return nil
	})
	slices.Sort(params)
	return methods, slices.Compact(params), err
}

// paramName is what a query parameter name may be for the table to hold
// it: "$.xgafv" and Google's plain names.
var paramName = regexp.MustCompile(`^\$?[.A-Za-z0-9_-]+$`)

// systemParams returns the names of the document's top-level parameters.
// The table holds one set of query parameter names for every API: a
// system parameter read from anywhere but the query, or a name that
// cannot be one, cannot be represented, and is refused.
func systemParams(doc *discoveryDoc) ([]string, error) {
	var names []string
	for name, p := range doc.Parameters {
		if p.Location != "query" || !paramName.MatchString(name) {
			return nil, fmt.Errorf("system parameter %q (location %q) cannot be represented: the table holds query parameter names", name, p.Location)
		}
		names = append(names, name)
	}
	return names, nil
}

// batchPath turns the document's batchPath, "batch" or "batch/vault/v1",
// into a request path. Only literal segments are understood.
func batchPath(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	for _, seg := range strings.Split(raw, "/") {
		if !literalSegment.MatchString(seg) {
			return "", fmt.Errorf("batchPath %q: segment %q is not understood", raw, seg)
		}
	}
	return "/" + raw, nil
}

// cancelMethods returns the document's methods whose id ends in "operations.cancel".
func cancelMethods(doc *discoveryDoc) ([]method, error) {
	var found []discoveryMethod
	var walk func(methods map[string]discoveryMethod, resources map[string]discoveryResource)
	walk = func(methods map[string]discoveryMethod, resources map[string]discoveryResource) {
		for _, m := range methods {
			if strings.HasSuffix(m.ID, "operations.cancel") {
				found = append(found, m)
			}
		}
		for _, r := range resources {
			walk(r.Methods, r.Resources)
		}
	}
	walk(doc.Methods, doc.Resources)
	if len(found) == 0 {
		return nil, nil
	}

	service, err := urlHost(doc.RootURL)
	if err != nil {
		return nil, fmt.Errorf("reading rootUrl: %w", err)
	}
	hosts := []string{service}
	if doc.MTLSRootURL != "" {
		h, err := urlHost(doc.MTLSRootURL)
		if err != nil {
			return nil, fmt.Errorf("reading mtlsRootUrl: %w", err)
		}
		hosts = append(hosts, h)
	}
	for _, e := range doc.Endpoints {
		h, err := urlHost(e.EndpointURL)
		if err != nil {
			return nil, fmt.Errorf("reading endpointUrl: %w", err)
		}
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	batch, err := batchPath(doc.BatchPath)
	if err != nil {
		return nil, err
	}

	methods := make([]method, 0, len(found))
	for _, dm := range found {
		m := method{
			ID:         dm.ID,
			Service:    service,
			Hosts:      hosts,
			HTTPMethod: dm.HTTPMethod,
			Body:       "BodyNone",
			Scopes:     slices.Sorted(slices.Values(dm.Scopes)),
			API:        doc.Name + "/" + doc.Version,
			BatchPath:  batch,
		}
		if m.HTTPMethod != "POST" && m.HTTPMethod != "GET" {
			return nil, fmt.Errorf("method %s: unsupported HTTP method %q", dm.ID, dm.HTTPMethod)
		}
		for name, p := range dm.Parameters {
			switch {
			case p.Location == "query" && paramName.MatchString(name):
				m.Query = append(m.Query, name)
			case p.Location != "path":
				// A parameter read from elsewhere (a header?) would be a
				// way in the gateway does not know about.
				return nil, fmt.Errorf("method %s: parameter %q in %q is not understood", dm.ID, name, p.Location)
			}
		}
		slices.Sort(m.Query)
		if m.Template, err = buildTemplate(doc.ServicePath, dm); err != nil {
			return nil, fmt.Errorf("method %s: %w", dm.ID, err)
		}
		if servedOnLegacyHost(doc.ServicePath, m.Template) {
			m.Hosts = slices.Sorted(slices.Values(append(slices.Clone(hosts), legacyHost)))
		}
		if dm.Request != nil {
			schema, ok := doc.Schemas[dm.Request.Ref]
			if !ok {
				return nil, fmt.Errorf("method %s: request schema %q is not defined", dm.ID, dm.Request.Ref)
			}
			m.Body = "BodyEmpty"
			if len(schema.Properties) > 0 {
				m.Body = "BodyFields"
				for f := range schema.Properties {
					m.Fields = append(m.Fields, f)
				}
				slices.Sort(m.Fields)
			}
		}
		methods = append(methods, m)
	}
	return methods, nil
}

// legacyHost is Google's shared legacy host. It serves the APIs whose
// paths start with their own prefix rather than a version, under that
// prefix: discovery's servicePath ("storage/v1/", Cloud Storage's
// /storage/v1/...), or a path that names the API before its version
// (Cloud SQL's /sql/v1beta4/...).
const legacyHost = "www.googleapis.com"

// version is a path segment that is an API version: v1, v1beta4, v2alpha1,
// v1p1beta1.
var version = regexp.MustCompile(`^v[0-9]+[a-z0-9]*$`)

// servedOnLegacyHost reports whether a method of an API with servicePath
// and this template is served on legacyHost too.
func servedOnLegacyHost(servicePath, template string) bool {
	first, _, _ := strings.Cut(strings.TrimPrefix(template, "/"), "/")
	return servicePath != "" || !version.MatchString(first)
}

// urlHost returns the lower-cased host of an absolute https URL.
func urlHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Hostname() == "" || u.Port() != "" {
		return "", fmt.Errorf("%q is not an https URL with a host and no port", raw)
	}
	return strings.ToLower(u.Hostname()), nil
}

var expansion = regexp.MustCompile(`\{[^{}]*\}`)

// buildTemplate turns a method's servicePath and URI-template path into an
// AIP-127 path template. Reserved expansions ({+name}) take their shape
// from the parameter's pattern; simple expansions ({name}) are one segment.
func buildTemplate(servicePath string, m discoveryMethod) (string, error) {
	if strings.HasPrefix(m.Path, "/") || strings.HasPrefix(servicePath, "/") {
		return "", fmt.Errorf("path %q under servicePath %q is absolute", m.Path, servicePath)
	}
	var errs []error
	tmpl := "/" + servicePath + expansion.ReplaceAllStringFunc(m.Path, func(expr string) string {
		inner := expr[1 : len(expr)-1]
		reserved := strings.HasPrefix(inner, "+")
		name := strings.TrimPrefix(inner, "+")
		if !isIdent(name) {
			errs = append(errs, fmt.Errorf("unsupported expansion %s", expr))
			return expr
		}
		p, ok := m.Parameters[name]
		if !ok || p.Location != "path" {
			errs = append(errs, fmt.Errorf("expansion %s has no path parameter", expr))
			return expr
		}
		switch {
		case !reserved && p.Pattern == "":
			return "{" + name + "}"
		case reserved && p.Pattern != "":
			shape, err := translatePattern(p.Pattern)
			if err != nil {
				errs = append(errs, fmt.Errorf("parameter %s: %w", name, err))
				return expr
			}
			return "{" + name + "=" + shape + "}"
		default:
			errs = append(errs, fmt.Errorf("expansion %s with pattern %q is not understood", expr, p.Pattern))
			return expr
		}
	})
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	if _, err := pathtemplate.Parse(tmpl); err != nil {
		return "", fmt.Errorf("built template %q does not parse: %w", tmpl, err)
	}
	return tmpl, nil
}

// The pattern pieces translatePattern understands.
const (
	oneSegment = `[^/]+`
	anyRest    = ".*"
)

var literalSegment = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// translatePattern turns a discovery parameter pattern, an anchored regular
// expression over '/'-separated segments, into the variable's path pattern:
// [^/]+ is one segment (*), a final .* the rest (**), plain words are
// literal. Anything else is refused: a guessed shape could let a cancel
// through unrecognised.
func translatePattern(pattern string) (string, error) {
	body, ok := strings.CutPrefix(pattern, "^")
	if ok {
		body, ok = strings.CutSuffix(body, "$")
	}
	if !ok || body == "" {
		return "", fmt.Errorf("pattern %q is not anchored with ^ and $", pattern)
	}
	var segs []string
	for rest := body; ; {
		var seg string
		switch {
		case strings.HasPrefix(rest, oneSegment):
			seg, rest = "*", rest[len(oneSegment):]
		case rest == anyRest:
			seg, rest = "**", ""
		default:
			lit, _, _ := strings.Cut(rest, "/")
			if !literalSegment.MatchString(lit) {
				return "", fmt.Errorf("pattern %q: segment %q is not understood", pattern, lit)
			}
			seg, rest = lit, rest[len(lit):]
		}
		segs = append(segs, seg)
		if rest == "" {
			break
		}
		if rest, ok = strings.CutPrefix(rest, "/"); !ok || rest == "" {
			return "", fmt.Errorf("pattern %q: segment %q is not understood", pattern, seg+rest)
		}
	}
	return strings.Join(segs, "/"), nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// dedupe sorts the methods and merges exact duplicates (same service, HTTP
// method and template) into the first, reporting each merge to log. Two
// services claiming one host, HTTP method and template are an error: the
// lookup could not tell them apart.
func dedupe(methods []method, log io.Writer) ([]method, error) {
	slices.SortFunc(methods, func(a, b method) int {
		return cmp.Or(
			strings.Compare(a.Service, b.Service),
			strings.Compare(a.API, b.API),
			strings.Compare(a.ID, b.ID),
			strings.Compare(a.Template, b.Template),
			strings.Compare(a.HTTPMethod, b.HTTPMethod),
		)
	})
	type key struct{ service, httpMethod, template string }
	first := map[key]int{}
	var kept []method
	for _, m := range methods {
		k := key{m.Service, m.HTTPMethod, m.Template}
		i, dup := first[k]
		if !dup {
			first[k] = len(kept)
			kept = append(kept, m)
			continue
		}
		into := &kept[i]
		if m.BatchPath != into.BatchPath || !slices.Equal(m.Query, into.Query) {
			return nil, fmt.Errorf("%s (%s) and %s (%s) share %s %s but not their batch path (%q, %q) or query parameters (%q, %q)",
				into.ID, into.API, m.ID, m.API, m.HTTPMethod, m.Template, into.BatchPath, m.BatchPath, into.Query, m.Query)
		}
		fmt.Fprintf(log, "gen: merged duplicate %s (%s) into %s (%s): %s %s\n",
			m.ID, m.API, into.ID, into.API, m.HTTPMethod, m.Template)
		into.Hosts = slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(into.Hosts), m.Hosts...))))
	}

	type route struct{ host, httpMethod, template string }
	claimed := map[route]*method{}
	for i := range kept {
		m := &kept[i]
		for _, h := range m.Hosts {
			r := route{h, m.HTTPMethod, m.Template}
			if o, ok := claimed[r]; ok {
				return nil, fmt.Errorf("%s %s on %s is claimed by %s (%s) and %s (%s)",
					m.HTTPMethod, m.Template, h, o.ID, o.API, m.ID, m.API)
			}
			claimed[r] = m
		}
	}
	return kept, nil
}

// render writes the table as gofmt'd Go source. Methods of one document
// share one host list, written once.
func render(version string, methods []method, params []string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by internal/catalog/gen from %s %s; DO NOT EDIT.\n\n", modulePath, version)
	b.WriteString("package catalog\n\n")

	hostLists := map[string]int{}
	var lists [][]string
	for _, m := range methods {
		key := strings.Join(m.Hosts, " ")
		if _, ok := hostLists[key]; !ok {
			hostLists[key] = len(lists)
			lists = append(lists, m.Hosts)
		}
	}
	b.WriteString("// generatedHosts holds the host lists the generated methods share.\nvar generatedHosts = [...][]string{\n")
	for i, l := range lists {
		fmt.Fprintf(&b, "%d: {\n", i)
		for _, h := range l {
			b.WriteString(strconv.Quote(h) + ",\n")
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n\n")

	b.WriteString("// generated holds every cancel method of the discovery documents, sorted by service, API and id.\nvar generated = [...]Method{\n")
	for _, m := range methods {
		fmt.Fprintf(&b, "{ID: %q, Service: %q, Hosts: generatedHosts[%d], HTTPMethod: %q, Template: %q, Body: %s, ",
			m.ID, m.Service, hostLists[strings.Join(m.Hosts, " ")], m.HTTPMethod, m.Template, m.Body)
		if len(m.Fields) > 0 {
			fmt.Fprintf(&b, "Fields: %s, ", stringSlice(m.Fields))
		}
		if len(m.Scopes) > 0 {
			fmt.Fprintf(&b, "Scopes: %s, ", stringSlice(m.Scopes))
		}
		fmt.Fprintf(&b, "API: %q", m.API)
		if m.BatchPath != "" {
			fmt.Fprintf(&b, ", BatchPath: %q", m.BatchPath)
		}
		if len(m.Query) > 0 {
			fmt.Fprintf(&b, ", Query: %s", stringSlice(m.Query))
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n\n")

	b.WriteString("// systemParams holds Google's system parameters, the union of the top-level\n" +
		"// parameters of the discovery documents that define a cancel, sorted.\nvar systemParams = [...]string{\n")
	for _, p := range params {
		b.WriteString(strconv.Quote(p) + ",\n")
	}
	b.WriteString("}\n")

	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting the table: %w", err)
	}
	return src, nil
}

func stringSlice(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[]string{" + strings.Join(q, ", ") + "}"
}
