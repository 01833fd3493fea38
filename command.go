package lrocancel

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/policy"
)

// The exit codes of `caddy lro-cancel explain` and `test`, as `opa test`
// and grep have them: 0 all is as expected, 1 a refusal or a failed case,
// 2 the command could not answer (usage, config, cases file).
const (
	exitForwards = 0
	exitRefuses  = 1
	exitUsage    = 2
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "lro-cancel",
		Usage: "explain|test|catalog|journal",
		Short: "Explains and tests lro_cancel decisions, and lists what it governs",
		Long: `
Tools for the lro_cancel handler that call no verifier and start no server.

  explain  what the config's lro_cancel handler would decide on one request,
           step by step, for a caller whose identity is given
  test     the same for a JSON array of cases, each with the decision (and
           policy rule) it must get
  catalog  the cancel methods the handler knows: ids, templates, hosts,
           scopes, body kinds
  journal  verify, query and prove the records of a sealed audit journal

explain and test decide through the running handler's own recognition,
front doors and governance core, with the identity standing in for a
verified token.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(explainCommand(), testCommand(), catalogCommand(), journalCommand())
		},
	})
}

func explainCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain --config <file> [--adapter <name>] [--principal <p>] [--scope <s>]... [--claim <k>=<v>]... [--header <k>=<v>]... [--body <text>] <METHOD> <URL>",
		Short: "Explains what lro_cancel would decide on one request",
		Long: `
Explains what the config's first lro_cancel handler whose route admits the
URL's host would decide on the request: the recognition (front door,
method, operation, accepted scopes), each check, each policy rule's value
(true, false or the error), and the decision with the status the client
would get. Only host matchers choose the handler (scheme and port are
ignored); a route without one admits every host.

The caller is given, not verified: --principal (an email or a subject),
--scope (repeatable) and --claim k=v (repeatable; v is JSON when it parses,
else a string). Headers (--header k=v, repeatable) and --body make up the
request; its Host is the URL's.

Exit status: 0 when the request would be forwarded (or is not a cancel),
1 when it would be refused, 2 on bad usage or config.
`,
		Example: `  $ caddy lro-cancel explain --config Caddyfile --principal alice@example.com \
      --scope https://www.googleapis.com/auth/ediscovery \
      POST https://vault.googleapis.com/v1/operations/export-1:cancel`,
	}
	cmd.Flags().StringP("config", "c", "", "Configuration file")
	cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply")
	cmd.Flags().String("principal", "", "The caller's email or subject")
	cmd.Flags().StringArray("scope", nil, "A scope the caller's token holds (repeatable)")
	cmd.Flags().StringArray("claim", nil, "A claim of the caller's token, k=v with v JSON or a string (repeatable)")
	cmd.Flags().StringArrayP("header", "H", nil, "A request header, k=v (repeatable)")
	cmd.Flags().StringP("body", "d", "", "The request body")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdExplain)
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

func testCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test --config <file> [--adapter <name>] <cases.json>",
		Short: "Checks lro_cancel decisions against a file of cases",
		Long: `
Runs each case of a JSON array through the config as explain does, and
compares the decision (and, when the case names one, the deciding policy
rule) with what the case wants:

  [{"name": "contractors may not cancel",
    "request": {"method": "POST", "url": "https://vault.googleapis.com/v1/operations/export-1:cancel",
                "headers": {"x-change-ticket": "CHG-1"}, "body": ""},
    "identity": {"principal": "eve@contractors.example.com",
                 "scopes": ["https://www.googleapis.com/auth/ediscovery"], "claims": {}},
    "want": {"decision": "denied_by_policy", "rule": "contractors"}}]

A decision is the audit record's (forwarded, denied_by_policy,
scope_insufficient, ...), or not_governed for a request the handler lets
pass unrecorded. Prints PASS or FAIL (with the difference) per case, then
"N passed, M failed".

Exit status: 0 when every case passes, 1 when one fails, 2 on bad usage,
config or cases file.
`,
	}
	cmd.Flags().StringP("config", "c", "", "Configuration file")
	cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdTest)
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

func catalogCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog [--service <host>] [--json]",
		Short: "Lists the cancel methods lro_cancel governs",
		Long: `
Lists the cancel methods of the builtin catalog: discovery id, HTTP method,
path template, service and hosts, accepted scopes (none: any verified
token), request body kind (none, empty or fields), and the gRPC methods
(also gRPC-Web) and $rpc paths that reach the same method. --service keeps the
methods of one API, named by its service or any host serving it (or an
alias host of it). --json prints a JSON array instead. A config's own
templates are not listed.
`,
	}
	cmd.Flags().String("service", "", "Only the methods of this service or host")
	cmd.Flags().Bool("json", false, "Print a JSON array")
	cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdCatalog)
	cmd.SetFlagErrorFunc(usageError)
	return cmd
}

// usageError gives a flag cobra cannot parse the exit status of any other
// bad usage: Caddy carries a status other than 1 only out of
// WrapCommandFuncForCobra.
func usageError(cmd *cobra.Command, err error) error {
	return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
		return exitUsage, err
	})(cmd, nil)
}

func cmdExplain(fl caddycmd.Flags) (int, error) {
	args := fl.Args()
	if len(args) != 2 {
		return exitUsage, errors.New("explain needs <METHOD> <URL>")
	}
	header, err := parseHeaders(stringArray(fl, "header"))
	if err != nil {
		return exitUsage, err
	}
	claims, err := parseClaims(stringArray(fl, "claim"))
	if err != nil {
		return exitUsage, err
	}
	id := identity{Principal: fl.String("principal"), Scopes: stringArray(fl, "scope"), Claims: claims}
	cfg, err := loadConfig(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return exitUsage, err
	}
	return runExplain(os.Stdout, cfg, explainRequest{Method: args[0], URL: args[1], Header: header, Body: fl.String("body")}, id)
}

// stringArray returns the values of a repeatable flag the command defines.
func stringArray(fl caddycmd.Flags, name string) []string {
	v, _ := fl.GetStringArray(name)
	return v
}

// runExplain explains one request against an adapted config and says how
// the command exits.
func runExplain(w io.Writer, cfg []byte, req explainRequest, id identity) (int, error) {
	r, err := req.build()
	if err != nil {
		return exitUsage, err
	}
	h, err := handlerFor(cfg, r)
	if err != nil {
		return exitUsage, err
	}
	e := h.explain(r, id)
	writeExplanation(w, &e, "")
	if !e.forwards() {
		return exitRefuses, fmt.Errorf("the request would be refused: %s", e.Decision)
	}
	return exitForwards, nil
}

func cmdTest(fl caddycmd.Flags) (int, error) {
	args := fl.Args()
	if len(args) != 1 {
		return exitUsage, errors.New("test needs one <cases.json>")
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return exitUsage, fmt.Errorf("reading the cases: %w", err)
	}
	cases, err := parseCases(b)
	if err != nil {
		return exitUsage, fmt.Errorf("%s: %w", args[0], err)
	}
	cfg, err := loadConfig(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return exitUsage, err
	}
	return runTest(os.Stdout, cfg, cases)
}

// policyCase is one case of `caddy lro-cancel test`.
type policyCase struct {
	Name     string         `json:"name"`
	Request  explainRequest `json:"request"`
	Identity identity       `json:"identity"`
	Want     struct {
		Decision string `json:"decision"`
		// Rule, when given, is compared with the deciding policy rule;
		// "" wants none.
		Rule *string `json:"rule,omitempty"`
	} `json:"want"`
}

// notGoverned is the decision a test case wants for a request the handler
// lets pass without a record: not a cancel, or `unlisted pass`.
const notGoverned = "not_governed"

// parseCases reads the cases file strictly: a misspelt field would
// otherwise make a case test less than it says.
func parseCases(b []byte) ([]policyCase, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var cases []policyCase
	if err := dec.Decode(&cases); err != nil {
		return nil, fmt.Errorf("decoding the cases: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding the cases: data after the array")
	}
	if len(cases) == 0 {
		return nil, errors.New("no cases")
	}
	for i, c := range cases {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("case %d has no name", i)
		case c.Want.Decision == "":
			return nil, fmt.Errorf("case %q wants no decision", c.Name)
		}
		if _, err := c.Request.build(); err != nil {
			return nil, fmt.Errorf("case %q: %w", c.Name, err)
		}
	}
	return cases, nil
}

// runTest runs the cases against an adapted config and says how the
// command exits. Every case's handler is found before any case runs, so
// that a config error is not reported as failed cases.
func runTest(w io.Writer, cfg []byte, cases []policyCase) (int, error) {
	reqs := make([]*http.Request, len(cases))
	handlers := make([]*Handler, len(cases))
	byHost := make(map[string]*Handler)
	for i, c := range cases {
		r, err := c.Request.build()
		if err != nil {
			return exitUsage, fmt.Errorf("case %q: %w", c.Name, err)
		}
		h, ok := byHost[r.Host]
		if !ok {
			if h, err = handlerFor(cfg, r); err != nil {
				return exitUsage, fmt.Errorf("case %q: %w", c.Name, err)
			}
			byHost[r.Host] = h
		}
		reqs[i], handlers[i] = r, h
	}
	failed := 0
	for i, c := range cases {
		e := handlers[i].explain(reqs[i], c.Identity)
		got := string(e.Decision)
		if !e.Governed {
			got = notGoverned
		}
		var diffs []string
		if got != c.Want.Decision {
			diffs = append(diffs, "decision got "+got+" want "+c.Want.Decision)
		}
		if c.Want.Rule != nil && e.PolicyRule != *c.Want.Rule {
			diffs = append(diffs, "rule got "+cmp.Or(e.PolicyRule, "(none)")+" want "+cmp.Or(*c.Want.Rule, "(none)"))
		}
		if len(diffs) > 0 {
			failed++
			fmt.Fprintf(w, "FAIL %s: %s\n", c.Name, strings.Join(diffs, "; "))
			continue
		}
		fmt.Fprintf(w, "PASS %s\n", c.Name)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(cases)-failed, failed)
	if failed > 0 {
		return exitRefuses, fmt.Errorf("%d of %d cases failed", failed, len(cases))
	}
	return exitForwards, nil
}

func cmdCatalog(fl caddycmd.Flags) (int, error) {
	if len(fl.Args()) != 0 {
		return exitUsage, errors.New("catalog takes no arguments")
	}
	return runCatalog(os.Stdout, fl.String("service"), fl.Bool("json"))
}

// catalogMethod is a method as `caddy lro-cancel catalog --json` prints it.
type catalogMethod struct {
	ID         string   `json:"id"`
	HTTPMethod string   `json:"http_method"`
	Template   string   `json:"template"`
	Service    string   `json:"service"`
	Hosts      []string `json:"hosts"`
	Scopes     []string `json:"scopes"` // none: any verified token
	Body       string   `json:"body"`
	Fields     []string `json:"fields,omitempty"`
	API        string   `json:"api,omitempty"`
	// GRPC are the gRPC (and gRPC-Web) method paths governed as this
	// method, RPC the same calls through Google's $rpc fallback.
	GRPC []string `json:"grpc,omitempty"`
	RPC  []string `json:"rpc,omitempty"`
}

// runCatalog lists the builtin methods, those of one service when it is
// given (by its name, a host serving it or an alias host).
func runCatalog(w io.Writer, service string, asJSON bool) (int, error) {
	host := catalog.NormalizeHost(service)
	api := catalog.Default().Service(service)
	var out []catalogMethod
	for _, m := range catalog.Builtin() {
		if service != "" && m.Service != api && !slices.Contains(m.Hosts, host) {
			continue
		}
		out = append(out, catalogMethod{
			ID: m.ID, HTTPMethod: m.HTTPMethod, Template: m.Template, Service: m.Service,
			Hosts: nonNil(m.Hosts), Scopes: nonNil(m.Scopes),
			Body: m.Body.String(), Fields: m.Fields, API: m.API,
		})
		for _, rpc := range rpcsOf(&m) {
			last := &out[len(out)-1]
			last.GRPC = append(last.GRPC, rpc.Path)
			last.RPC = append(last.RPC, catalog.RPCPrefix+rpc.Path)
		}
	}
	if len(out) == 0 {
		return exitRefuses, fmt.Errorf("no cancel method of the catalog serves %q", service)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return exitUsage, fmt.Errorf("writing the catalog: %w", err)
		}
		return exitForwards, nil
	}
	for i, m := range out {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s\n", m.ID)
		fmt.Fprintf(w, "  %-8s %s %s\n", "path", m.HTTPMethod, m.Template)
		fmt.Fprintf(w, "  %-8s %s\n", "service", m.Service)
		fmt.Fprintf(w, "  %-8s %s\n", "hosts", cmp.Or(strings.Join(m.Hosts, " "), "every host"))
		fmt.Fprintf(w, "  %-8s %s\n", "scopes", cmp.Or(strings.Join(m.Scopes, " "), "any verified token"))
		body := m.Body
		if len(m.Fields) > 0 {
			body += " (" + strings.Join(m.Fields, " ") + ")"
		}
		fmt.Fprintf(w, "  %-8s %s\n", "body", body)
		for i := range m.GRPC {
			fmt.Fprintf(w, "  %-8s %s\n", "grpc", m.GRPC[i])
			fmt.Fprintf(w, "  %-8s POST %s\n", "$rpc", m.RPC[i])
		}
	}
	return exitForwards, nil
}

// nonNil makes an empty list print as [] in JSON.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// loadConfig loads and adapts the config as `caddy adapt` does: the
// Caddyfile adapter for a file named Caddyfile*, or *.caddyfile.
func loadConfig(file, adapter string) ([]byte, error) {
	cfg, _, _, err := caddycmd.LoadConfig(file, adapter)
	if err != nil {
		return nil, err
	}
	if len(cfg) == 0 {
		return nil, errors.New("no config: use --config")
	}
	return cfg, nil
}

// request is the request to explain, as the flags or a case give it.
type explainRequest struct {
	Method string            `json:"method"`
	URL    string            `json:"url"`
	Header map[string]string `json:"headers,omitempty"`
	Body   string            `json:"body,omitempty"`
}

// build makes the request as the handler would get it from Caddy: Host
// from the URL, a replacer and variables in its context.
func (q explainRequest) build() (*http.Request, error) {
	if q.Method == "" {
		return nil, errors.New("the request has no method")
	}
	u, err := url.Parse(q.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing the URL: %w", err)
	}
	if !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("the URL %q names no scheme and host", q.URL)
	}
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, make(map[string]any))
	r, err := http.NewRequestWithContext(ctx, q.Method, q.URL, strings.NewReader(q.Body))
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	r.RequestURI = u.RequestURI()
	for k, v := range q.Header {
		if strings.EqualFold(k, "Host") {
			return nil, errors.New("the request's host is the URL's: give no Host header")
		}
		r.Header.Add(k, v)
	}
	return r, nil
}

// parseHeaders reads --header k=v flags.
func parseHeaders(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	h := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want name=value", a)
		}
		if _, dup := h[http.CanonicalHeaderKey(k)]; dup {
			return nil, fmt.Errorf("--header %q: %s is given twice", a, k)
		}
		h[http.CanonicalHeaderKey(k)] = v
	}
	return h, nil
}

// parseClaims reads --claim k=v flags: v is JSON when it parses, as a
// verifier's claims are, else a string.
func parseClaims(args []string) (map[string]any, error) {
	if len(args) == 0 {
		return nil, nil
	}
	claims := make(map[string]any, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--claim %q: want name=value", a)
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			val = v
		}
		claims[k] = val
	}
	return claims, nil
}

// handlerFor finds the config's first lro_cancel handler whose route
// admits r's host, and provisions its decision as the running handler
// does, without a verifier, sink or journal.
func handlerFor(cfg []byte, r *http.Request) (*Handler, error) {
	raw, err := findHandler(cfg, r)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("no lro_cancel handler of the config serves host %q", r.Host)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(caddy.RemoveMetaFields(raw), &fields); err != nil {
		return nil, fmt.Errorf("reading the lro_cancel handler: %w", err)
	}
	delete(fields, "handler")
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("reading the lro_cancel handler: %w", err)
	}
	h := new(Handler)
	if err := caddy.StrictUnmarshalJSON(b, h); err != nil {
		return nil, fmt.Errorf("reading the lro_cancel handler: %w", err)
	}
	// Provision, then Validate, as Caddy runs them.
	if err := h.provisionDecision(); err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}

// route is what the walk reads of a Caddy HTTP route.
type configRoute struct {
	Group    string                       `json:"group,omitempty"`
	Match    []map[string]json.RawMessage `json:"match,omitempty"`
	Handle   []json.RawMessage            `json:"handle,omitempty"`
	Terminal bool                         `json:"terminal,omitempty"`
}

// findHandler walks the servers' routes in the config's order, into
// subroutes (handle, route, handle_path), for the first lro_cancel handler
// whose route admits r's host; nil when none does.
func findHandler(cfg []byte, r *http.Request) (json.RawMessage, error) {
	var c struct {
		Apps struct {
			HTTP struct {
				Servers json.RawMessage `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	servers, err := orderedObject(c.Apps.HTTP.Servers)
	if err != nil {
		return nil, fmt.Errorf("reading the config's servers: %w", err)
	}
	for _, s := range servers {
		var srv struct {
			Routes []configRoute `json:"routes"`
		}
		if err := json.Unmarshal(s.value, &srv); err != nil {
			return nil, fmt.Errorf("reading server %s: %w", s.key, err)
		}
		h, _, err := findIn(srv.Routes, r)
		if err != nil {
			return nil, fmt.Errorf("server %s: %w", s.key, err)
		}
		if h != nil {
			return h, nil
		}
	}
	return nil, nil
}

// findIn looks for the handler in routes as Caddy runs them, judging
// routes by their host matchers alone. A route that surely runs (it
// admits the host and has no other matcher) ends its group, and, when
// terminal, everything after it: stop says so.
func findIn(routes []configRoute, r *http.Request) (h json.RawMessage, stop bool, err error) {
	done := make(map[string]bool) // groups whose route surely ran
	for _, rt := range routes {
		if rt.Group != "" && done[rt.Group] {
			continue
		}
		admits, surely, err := rt.admits(r)
		if err != nil {
			return nil, true, err
		}
		if !admits {
			continue
		}
		for _, raw := range rt.Handle {
			var hd struct {
				Handler string        `json:"handler"`
				Routes  []configRoute `json:"routes"`
			}
			if err := json.Unmarshal(raw, &hd); err != nil {
				return nil, true, fmt.Errorf("reading a handler: %w", err)
			}
			switch hd.Handler {
			case "lro_cancel":
				return raw, true, nil
			case "subroute":
				h, stop, err := findIn(hd.Routes, r)
				if h != nil || err != nil || (stop && surely) {
					return h, true, err
				}
			}
		}
		if surely {
			if rt.Group != "" {
				done[rt.Group] = true
			}
			if rt.Terminal {
				return nil, true, nil
			}
		}
	}
	return nil, false, nil
}

// admits reports whether one of the route's matcher sets admits r's host
// (a set without a host matcher admits every host), and whether one does
// with nothing but its host matcher, so that the route surely runs.
func (rt configRoute) admits(r *http.Request) (admits, surely bool, err error) {
	if len(rt.Match) == 0 {
		return true, true, nil
	}
	for _, set := range rt.Match {
		raw, hasHost := set["host"]
		ok := true
		if hasHost {
			var m caddyhttp.MatchHost
			if err := json.Unmarshal(raw, &m); err != nil {
				return false, false, fmt.Errorf("reading a host matcher: %w", err)
			}
			if err := m.Provision(caddy.Context{}); err != nil {
				return false, false, fmt.Errorf("host matcher: %w", err)
			}
			if ok, err = m.MatchWithError(r); err != nil {
				return false, false, fmt.Errorf("host matcher: %w", err)
			}
		}
		if ok {
			admits = true
			surely = surely || len(set) == 0 || (hasHost && len(set) == 1)
		}
	}
	return admits, surely, nil
}

type jsonMember struct {
	key   string
	value json.RawMessage
}

// orderedObject reads a JSON object's members in the document's order
// (Caddy's adapters write servers srv0, srv1, ...); null reads as none.
func orderedObject(raw json.RawMessage) ([]jsonMember, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var out []jsonMember
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, jsonMember{key: t.(string), value: v})
	}
	return out, nil
}

// writeExplanation prints an explanation as plain text, one fact a line;
// indent prefixes every line (a batch's parts). No header, and so no
// credential, is ever printed.
func writeExplanation(w io.Writer, e *explanation, indent string) {
	line := func(label, value string) { fmt.Fprintf(w, "%s%-10s %s\n", indent, label, value) }
	if e.Door == "" || !e.Governed {
		if e.Door != "" {
			writeRecognition(w, e, indent)
		}
		line("decision", e.Note)
		return
	}
	writeRecognition(w, e, indent)
	for i := range e.Parts {
		fmt.Fprintf(w, "%spart %d\n", indent, i+1)
		writeExplanation(w, &e.Parts[i], indent+"  ")
	}
	for _, s := range e.Steps {
		fmt.Fprintf(w, "%s%-12s %s\n", indent, s.Check, s.Outcome)
		if s.Check == "policy" && e.Policy != nil {
			writeEvaluations(w, e.Policy.Evaluations, indent+"  ")
		}
	}
	line("decision", decisionLine(e))
}

func writeRecognition(w io.Writer, e *explanation, indent string) {
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(w, "%s%-10s %s\n", indent, label, value)
		}
	}
	line("door", e.Door)
	line("service", e.Service)
	line("method", e.Method)
	line("operation", e.Operation)
	line("scopes", strings.Join(e.Scopes, " "))
	if e.CallerReason != "" {
		line("reason", strconv.Quote(e.CallerReason))
	}
	line("project", e.UserProject)
}

// writeEvaluations prints every rule's value, in evaluation order; an
// error says how it counted.
func writeEvaluations(w io.Writer, evs []policy.Evaluation, indent string) {
	width := 0
	for _, ev := range evs {
		width = max(width, len(ev.Rule))
	}
	for _, ev := range evs {
		value := fmt.Sprint(ev.Value)
		if ev.Err != nil {
			counts := "false"
			if ev.Effect == policy.Deny {
				counts = "true"
			}
			value = "error (counts as " + counts + "): " + strings.Join(strings.Fields(ev.Err.Error()), " ")
		}
		fmt.Fprintf(w, "%s%-5s %-*s  %s\n", indent, ev.Effect, width, ev.Rule, value)
	}
}

// decisionLine is the decision, its deciding rule, and for a refusal what
// the client gets: the HTTP status (with the gRPC code on the gRPC family's
// doors) and the reason.
func decisionLine(e *explanation) string {
	s := string(e.Decision)
	if e.forwards() {
		if e.LimitDryRun {
			s += " (dry run: limit " + e.LimitRule + " would refuse)"
		}
		if e.Policy != nil && !e.Policy.Allowed {
			return s + " (dry run: rule " + e.PolicyRule + " would deny)"
		}
		if e.PolicyRule != "" {
			s += " (rule " + e.PolicyRule + ")"
		}
		return s
	}
	if e.Decision == audit.RateLimited {
		s += " (limit " + e.LimitRule + ")"
	} else if e.PolicyRule != "" {
		s += " (rule " + e.PolicyRule + ")"
	}
	s += fmt.Sprintf(": %d", e.Status)
	if e.HasGRPCStatus {
		s += fmt.Sprintf(" (grpc-status %d %s)", e.GRPCStatus, code.Code(e.GRPCStatus))
	}
	if e.Reason != "" {
		s += " " + e.Reason
	}
	return s
}

// templateVar is a variable of a path template: {name} or {name=pattern}.
var templateVar = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^}]*))?\}`)

// rpcsOf finds the cancel RPCs the doors govern as m, by asking the
// catalog's own RPC recognition: each RPC field the template has a
// variable for gets a value the variable takes, and the call must come out
// as m on m's first host.
func rpcsOf(m *catalog.Method) []*catalog.RPC {
	host := m.Service
	if len(m.Hosts) > 0 {
		host = m.Hosts[0]
	}
	sample := map[string]string{}
	for _, v := range templateVar.FindAllStringSubmatch(m.Template, -1) {
		value := "x"
		if v[2] != "" {
			value = strings.ReplaceAll(strings.ReplaceAll(v[2], "**", "x"), "*", "x")
		}
		sample[v[1]] = value
	}
	var out []*catalog.RPC
	for _, rpc := range catalog.RPCs() {
		values := make([]string, len(rpc.Fields))
		set := false
		for i, f := range rpc.Fields {
			values[i], set = sample[f.Name], set || sample[f.Name] != ""
		}
		if !set {
			continue
		}
		res, problem := catalog.Default().RecognizeRPC(nil, host, rpc, values)
		if problem == "" && res.Kind == catalog.Listed && res.Method != nil &&
			res.Method.ID == m.ID && res.Method.Template == m.Template {
			out = append(out, rpc)
		}
	}
	return out
}
