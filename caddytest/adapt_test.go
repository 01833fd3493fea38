package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// Golden files: a Caddyfile, a line of dashes, and the JSON `caddy adapt`
// must produce from it.
func TestCaddyfileAdaptsToGoldenJSON(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, want, ok := strings.Cut(string(b), "\n----------\n")
			if !ok {
				t.Fatalf("%s: no ---------- separator", f)
			}
			caddytest.AssertAdapt(t, caddyfile, "caddyfile", strings.TrimSpace(want))
		})
	}
}

// Bad configuration is refused by `caddy adapt` with a message naming the
// file's line.
func TestCaddyfileErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, block, want string
	}{
		{"unclosed template variable", "template /v1/{name=operations/**:cancel", "Caddyfile:3"},
		{"template without leading slash", "template v1/{name=operations/*}:cancel", "Caddyfile:3"},
		{"unknown subdirective", "frobnicate on", "unrecognized lro_cancel subdirective 'frobnicate'"},
		{"bad duration", "tokeninfo http://127.0.0.1:1/tokeninfo {\n\t\ttimeout soon\n\t}", "Caddyfile:4"},
		{"malformed tokeninfo URL", "tokeninfo ftp://example.com/tokeninfo", "Caddyfile:3"},
		{"introspection without URL", "introspection", "Caddyfile:3"},
		{"bad unlisted mode", "unlisted maybe", "unlisted must be one of"},
		{"bad body mode", "body lenient", "body must be one of"},
		{"cache size not a number", "tokeninfo {\n\t\tcache_size many\n\t}", "Caddyfile:4"},
		{"jwt without key source", "jwt {\n\t\tissuer https://issuer.example\n\t}", "needs a key source"},
		{"jwt with both key sources", "jwt {\n\t\tjwks_url https://issuer.example/jwks\n\t\tjwks_file /etc/jwks.json\n\t}", "exclusive"},
		{"jwt with an unknown algorithm", "jwt {\n\t\tjwks_file /etc/jwks.json\n\t\talgorithms HS256\n\t}", "unsupported algorithm \"HS256\""},
		{"unknown audit stage", "audit {\n\t\tstages received sometimes\n\t}", "unknown stage"},
		{"unknown tokeninfo option", "tokeninfo {\n\t\tretries 3\n\t}", "Caddyfile:4"},
		{"max_in_flight not a number", "tokeninfo {\n\t\tmax_in_flight lots\n\t}", "Caddyfile:4"},
		{"cache_bytes not a size", "tokeninfo {\n\t\tcache_bytes lots\n\t}", "Caddyfile:4"},
		{"policy rule that could run away", "policy {\n\t\tdeny pairs `request.auth.scopes.exists(a, request.auth.scopes.exists(b, a + b == 'x'))`\n\t}", `rule "pairs": the expression may cost up to`},
		{"journal timeout not a duration", "audit {\n\t\tjournal /tmp/j {\n\t\t\ttimeout soon\n\t\t}\n\t}", "Caddyfile:5"},
		{"unknown journal option", "audit {\n\t\tjournal /tmp/j {\n\t\t\tfsync never\n\t\t}\n\t}", "unrecognized journal subdirective"},
		{"unknown audit format", "audit {\n\t\tformat xml\n\t}", "format must be one of"},
		{"policy rule that does not compile", "policy {\n\t\tallow sre `request.auth.principal.endsWith(`\n\t}", "Caddyfile:4"},
		{"policy rule that is not a bool", "policy {\n\t\tdeny who `request.auth.principal`\n\t}", `rule "who"`},
		{"policy rule naming an unknown attribute", "policy {\n\t\tallow sre `request.auth.princpal == 'x'`\n\t}", "Caddyfile:4"},
		{"policy rule on its line, after a good one", "policy {\n\t\tallow ok `true`\n\t\tdeny bad `resource.nam == ''`\n\t}", "Caddyfile:5"},
		{"policy rule without an expression", "policy {\n\t\tallow lonely\n\t}", "Caddyfile:4"},
		{"policy rule named default", "policy {\n\t\tallow default `true`\n\t}", "reserved"},
		{"policy with an unknown subdirective", "policy {\n\t\tpermit x `true`\n\t}", "unrecognized policy subdirective"},
		{"limit count not a number", "limits {\n\t\trule per-principal lots 1h\n\t}", "Caddyfile:4"},
		{"limit count zero", "limits {\n\t\trule per-principal 0 1h\n\t}", "count must be a positive integer"},
		{"limit window not a duration", "limits {\n\t\trule ok 20 1h\n\t\trule per-principal 20 hourly\n\t}", "Caddyfile:5"},
		{"limit on_error unknown", "limits {\n\t\ton_error shrug\n\t\trule r 20 1h\n\t}", "Caddyfile:4"},
		{"limit store unknown", "limits {\n\t\tstore memcached 127.0.0.1:11211\n\t\trule r 20 1h\n\t}", "Caddyfile:4"},
		{"limit redis address without port", "limits {\n\t\tstore redis 127.0.0.1\n\t\trule r 20 1h\n\t}", "Caddyfile:4"},
		{"limit redis unknown option", "limits {\n\t\tstore redis 127.0.0.1:6379 {\n\t\t\tcluster on\n\t\t}\n\t\trule r 20 1h\n\t}", "Caddyfile:5"},
		{"limit key that is not a string", "limits {\n\t\trule r 20 1h `request.auth.scopes`\n\t}", "Caddyfile:4"},
		{"limit key naming an unknown attribute", "limits {\n\t\trule r 20 1h `request.auth.princpal`\n\t}", "undefined field 'princpal'"},
		{"limit key that is dyn", "limits {\n\t\trule r 20 1h `request.auth.claims.hd`\n\t}", "must be a string"},
		{"limit rule named twice", "limits {\n\t\trule r 20 1h\n\t\trule r 5 1m\n\t}", "Caddyfile:5"},
		{"limits without a rule", "limits {\n\t\ton_error allow\n\t}", "needs at least one rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ":8080 {\n\tlro_cancel {\n\t" + tt.block + "\n\t}\n}\n"
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
			if err == nil {
				t.Fatalf("adapt accepted:\n%s", cfg)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}
