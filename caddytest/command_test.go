package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The `caddy lro-cancel` subcommands of the built binary, run as an
// operator runs them; the binary is built once for all of them.
func TestLroCancelSubcommands(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the binary")
	}
	bin := buildCaddy(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const example = "../examples/policy.Caddyfile"

	t.Run("explain shows each check and rule, and exits 1 on a refusal", func(t *testing.T) {
		res := runCaddy(t, bin, "lro-cancel", "explain", "--config", example,
			"--principal", "eve@contractors.example.com", "--scope", scopeVault,
			"POST", "https://vault.googleapis.com/v1/operations/export-1:cancel")
		res.wantExit(t, 1)
		res.wantLines(t,
			"door       http",
			"service    vault.googleapis.com",
			"method     vault.operations.cancel",
			"operation  operations/export-1",
			"scopes     "+scopeVault,
			"credentials  given (eve@contractors.example.com, scopes "+scopeVault+"), not verified",
			"scope        ok ("+scopeVault+")",
			"body         ok",
			"policy       deny (rule contractors)",
			"  deny  contractors        true",
			"  deny  prod-needs-ticket  false",
			"  allow sre                false",
			"  allow own-exports        true",
			"  allow ml-pipeline        false",
			"decision   denied_by_policy (rule contractors): 403 CANCEL_DENIED_BY_POLICY",
		)
	})

	t.Run("explain exits 0 on what it would forward and on what is not a cancel", func(t *testing.T) {
		res := runCaddy(t, bin, "lro-cancel", "explain", "-c", example,
			"--principal", principalA, "--scope", scopeVault,
			"POST", "https://vault.googleapis.com/v1/operations/export-1:cancel")
		res.wantExit(t, 0)
		res.wantLines(t, "decision   forwarded (rule own-exports)")

		res = runCaddy(t, bin, "lro-cancel", "explain", "-c", example, "GET", "https://vault.googleapis.com/v1/operations/export-1")
		res.wantExit(t, 0)
		res.wantLines(t, "decision   not a cancel: passes untouched and unrecorded")
	})

	t.Run("explain shows an erring rule and a gRPC-Web refusal's code", func(t *testing.T) {
		body := base64.StdEncoding.EncodeToString(grpcFrame(0, lroCancel("projects/prod-ml/locations/us-central1/operations/9")))
		res := runCaddy(t, bin, "lro-cancel", "explain", "-c", example,
			"--principal", "sam@sre.example.com", "--scope", scopeCloud,
			"-H", "Content-Type=application/grpc-web-text", "--body", body,
			"POST", "https://aiplatform.googleapis.com"+lroCancelMethod)
		res.wantExit(t, 1)
		res.wantLines(t,
			"door       grpc-web",
			"method     aiplatform.projects.locations.operations.cancel",
			"decision   denied_by_policy (rule prod-needs-ticket): 200 (grpc-status 7 PERMISSION_DENIED) CANCEL_DENIED_BY_POLICY")
		if !strings.Contains(res.stdout, "  deny  prod-needs-ticket  error (counts as true): ") {
			t.Errorf("the erring rule is not shown with its error:\n%s", res.stdout)
		}
	})

	t.Run("explain never prints a credential", func(t *testing.T) {
		res := runCaddy(t, bin, "lro-cancel", "explain", "-c", example,
			"--principal", principalA, "--scope", scopeVault, "-H", "Authorization=Bearer "+tokenVault,
			"-H", "X-Goog-Api-Key=AIzaSy-secret-key", "-H", "Cookie=SID=secret-cookie",
			"POST", "https://vault.googleapis.com/v1/operations/export-1:cancel?access_token="+tokenCloud)
		for _, secret := range []string{tokenVault, tokenCloud, "AIzaSy-secret-key", "secret-cookie"} {
			if strings.Contains(res.stdout+res.stderr, secret) {
				t.Errorf("the output shows %q:\n%s\n%s", secret, res.stdout, res.stderr)
			}
		}
	})

	t.Run("explain exits 2 on bad usage and bad config", func(t *testing.T) {
		pinned := write("pinned.Caddyfile", "http://vault.googleapis.com {\n\tlro_cancel\n\trespond ok\n}\n")
		badPolicy := write("bad-policy.Caddyfile", ":8080 {\n\tlro_cancel {\n\t\tpolicy {\n\t\t\tallow n `resource.name`\n\t\t}\n\t}\n}\n")
		cancel := "https://vault.googleapis.com/v1/operations/export-1:cancel"
		for _, tt := range []struct {
			name string
			args []string
			want string // on stderr
		}{
			{"no URL", []string{"-c", example, "POST"}, "explain needs <METHOD> <URL>"},
			{"an unknown flag", []string{"-c", example, "--frobnicate", "POST", cancel}, "unknown flag"},
			{"a malformed claim", []string{"-c", example, "--claim", "novalue", "POST", cancel}, "want name=value"},
			{"a missing config file", []string{"-c", filepath.Join(dir, "missing.Caddyfile"), "POST", cancel}, "reading config"},
			{"a host no lro_cancel handler serves", []string{"-c", pinned, "POST",
				"https://androidmanagement.googleapis.com/v1/enterprises/e/devices/d/operations/o:cancel"}, "no lro_cancel handler"},
			{"a policy rule that is not a bool", []string{"-c", badPolicy, "POST", cancel}, "bad-policy.Caddyfile:4"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res := runCaddy(t, bin, append([]string{"lro-cancel", "explain"}, tt.args...)...)
				res.wantExit(t, 2)
				if !strings.Contains(res.stderr, tt.want) {
					t.Errorf("stderr lacks %q:\n%s", tt.want, res.stderr)
				}
			})
		}
		res := runCaddy(t, bin, "lro-cancel", "explain", "-c", pinned, "--principal", principalA, "--scope", scopeVault, "POST", cancel)
		res.wantExit(t, 0)
	})

	t.Run("test passes the example cases, as CI runs it", func(t *testing.T) {
		res := runCaddy(t, bin, "lro-cancel", "test", "--config", example, "../examples/policy-cases.json")
		res.wantExit(t, 0)
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if len(lines) < 9 || lines[len(lines)-1] != strconv.Itoa(len(lines)-1)+" passed, 0 failed" {
			t.Errorf("output:\n%s", res.stdout)
		}
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, "PASS ") {
				t.Errorf("not a pass: %q", l)
			}
		}
	})

	t.Run("test reports what differs and exits 1 on a failed case", func(t *testing.T) {
		cases := write("failing.json", `[
			{"name": "contractors may cancel", "request": {"method": "POST", "url": "https://vault.googleapis.com/v1/operations/export-1:cancel"},
			 "identity": {"principal": "eve@contractors.example.com", "scopes": ["`+scopeVault+`"]},
			 "want": {"decision": "forwarded", "rule": "own-exports"}},
			{"name": "alice may cancel her exports", "request": {"method": "POST", "url": "https://vault.googleapis.com/v1/operations/export-1:cancel"},
			 "identity": {"principal": "alice@example.com", "scopes": ["`+scopeVault+`"]},
			 "want": {"decision": "forwarded"}}]`)
		res := runCaddy(t, bin, "lro-cancel", "test", "-c", example, cases)
		res.wantExit(t, 1)
		want := "FAIL contractors may cancel: decision got denied_by_policy want forwarded; rule got contractors want own-exports\n" +
			"PASS alice may cancel her exports\n" +
			"1 passed, 1 failed\n"
		if res.stdout != want {
			t.Errorf("output:\n%s\nwant:\n%s", res.stdout, want)
		}
	})

	t.Run("test exits 2 on a malformed cases file", func(t *testing.T) {
		cases := write("malformed.json", `[{"name": "x", "request": {"method": "POST", "url": "https://vault.googleapis.com/v1/operations/x:cancel"},
			"want": {"decison": "forwarded"}}]`)
		res := runCaddy(t, bin, "lro-cancel", "test", "-c", example, cases)
		res.wantExit(t, 2)
		if !strings.Contains(res.stderr, "decison") {
			t.Errorf("stderr:\n%s", res.stderr)
		}
		runCaddy(t, bin, "lro-cancel", "test", "-c", example).wantExit(t, 2)
	})

	t.Run("catalog lists a service's methods, as text and as JSON", func(t *testing.T) {
		res := runCaddy(t, bin, "lro-cancel", "catalog", "--service", "vault.googleapis.com")
		res.wantExit(t, 0)
		res.wantLines(t,
			"vault.operations.cancel",
			"  path     POST /v1/{name=operations/**}:cancel",
			"  service  vault.googleapis.com",
			"  scopes   "+scopeVault,
			"  body     empty")
		res = runCaddy(t, bin, "lro-cancel", "catalog", "--service", "vault.mtls.googleapis.com", "--json")
		res.wantExit(t, 0)
		var methods []struct {
			ID, Template string
			Hosts        []string
		}
		if err := json.Unmarshal([]byte(res.stdout), &methods); err != nil || len(methods) != 1 ||
			methods[0].ID != "vault.operations.cancel" || len(methods[0].Hosts) == 0 {
			t.Errorf("catalog --json: %v\n%s", err, res.stdout)
		}
		runCaddy(t, bin, "lro-cancel", "catalog", "--service", "nothing.example.com").wantExit(t, 1)
	})

	t.Run("explain and the gateway agree on every policy decision", func(t *testing.T) {
		explainAgreesWithTheGateway(t, bin, dir)
	})
}

// agreementCase is a request sent through a running gateway and then
// explained for the identity its token has there.
type agreementCase struct {
	name, token, op string
	header          []string
	body            string // REST only
	// web sends the cancel through the gRPC-Web door instead of REST.
	web bool
}

// explainAgreesWithTheGateway sends every request of the policy table
// (policy_test.go), and a few through other doors or refused before the
// policy, through a real gateway; the decision and rule of each record
// become the cases `caddy lro-cancel test` must pass against the
// gateway's own running config, with the identity the fake tokeninfo
// gives each token.
func explainAgreesWithTheGateway(t *testing.T, bin, dir string) {
	byPolicy := map[string][]agreementCase{}
	var order []string
	add := func(policy string, c agreementCase) {
		if _, ok := byPolicy[policy]; !ok {
			order = append(order, policy)
		}
		byPolicy[policy] = append(byPolicy[policy], c)
	}
	for _, c := range policyCases {
		add(c.policy, agreementCase{name: c.name, token: c.token, op: c.op, header: c.header})
	}
	add(policyMain, agreementCase{name: "a gRPC-Web cancel of an own export", token: tokenVault, op: "operations/export-9", web: true})
	add(policyMain, agreementCase{name: "a gRPC-Web cancel no allow rule admits", token: tokenVault, op: "operations/other", web: true})
	add(policyMain, agreementCase{name: "a token without the scope never reaches the policy", token: tokenEmail, op: "operations/export-1"})
	// Claims and the verifier: explain's identity is vouched for by the
	// config's opaque-token verifier, tokeninfo here.
	attributes := "tokeninfo TOKENINFO\n" + policyAttributes
	add(attributes, agreementCase{name: "a tokeninfo claim and the verifier admit", token: tokenVault, op: "operations/x"})
	add(attributes, agreementCase{name: "a gRPC-Web cancel is not the gRPC the protocol rule names", token: tokenVault, op: "operations/x", web: true})
	add(policyMain, agreementCase{name: "a body the method does not take never reaches the policy", token: tokenVault, op: "operations/export-1",
		body: `{"force": true}`, header: []string{"Content-Type", "application/json"}})

	for i, policy := range order {
		g := startGateway(t, gatewayOptions{directive: policy})
		grantPolicyTokens(g)
		config := filepath.Join(dir, "running-"+strconv.Itoa(i)+".json")
		if err := os.WriteFile(config, runningConfig(t), 0o600); err != nil {
			t.Fatal(err)
		}
		var cases []map[string]any
		decisions := map[string]bool{}
		for _, c := range byPolicy[policy] {
			url, body, header := apiURL(vaultHost, "/v1/"+c.op+":cancel"), c.body, c.header
			if c.web {
				url = apiURL(vaultHost, lroCancelMethod)
				body = base64.StdEncoding.EncodeToString(grpcFrame(0, lroCancel(c.op)))
				header = append([]string{"Content-Type", "application/grpc-web-text", "X-Grpc-Web", "1"}, header...)
			}
			resp, _ := g.do(newRequest(t, "POST", url, body, append(bearer(c.token), header...)...))
			rec := g.recordFor(resp.Header.Get("Audit-Id"))
			decisions[rec.str("decision")] = true
			headers := map[string]string{}
			for j := 0; j+1 < len(header); j += 2 {
				headers[header[j]] = header[j+1]
			}
			cases = append(cases, map[string]any{
				"name":     c.name,
				"request":  map[string]any{"method": "POST", "url": url, "headers": headers, "body": body},
				"identity": grantedIdentity(g, c.token),
				"want":     map[string]any{"decision": rec.str("decision"), "rule": rec.str("policy_rule")},
			})
		}
		if policy == policyMain && (!decisions["forwarded"] || !decisions["denied_by_policy"] || !decisions["scope_insufficient"] || !decisions["invalid_body"]) {
			t.Fatalf("the gateway's decisions %v: want forwards, policy, scope and body refusals to agree on", decisions)
		}
		b, err := json.Marshal(cases)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "agreement-"+strconv.Itoa(i)+".json")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		res := runCaddy(t, bin, "lro-cancel", "test", "--config", config, file)
		if res.code != 0 || !strings.HasSuffix(res.stdout, strconv.Itoa(len(cases))+" passed, 0 failed\n") {
			t.Errorf("explain disagrees with the gateway under\n%s\n%s%s", policy, res.stdout, res.stderr)
		}
	}
}

// runningConfig is the JSON config the gateway runs, from its admin API.
func runningConfig(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get("http://localhost:2999/config/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("reading the running config: %d %v", resp.StatusCode, err)
	}
	return b
}

// grantedIdentity is who the fake tokeninfo says a token's holder is: the
// principal and scopes it grants, and the claims it answers with.
func grantedIdentity(g *gateway, token string) map[string]any {
	g.tokeninfo.mu.Lock()
	gr := g.tokeninfo.grants[token]
	g.tokeninfo.mu.Unlock()
	return map[string]any{
		"principal": gr.Email,
		"scopes":    strings.Fields(gr.Scope),
		"claims": map[string]any{
			"azp": "client.apps.googleusercontent.com", "aud": "client.apps.googleusercontent.com",
			"sub": gr.Sub, "scope": gr.Scope, "email": gr.Email, "email_verified": "true", "access_type": "online",
		},
	}
}

// buildCaddy builds ./cmd/caddy, bounded in time.
func buildCaddy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/caddy")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the binary: %v\n%s", err, out)
	}
	return bin
}

type caddyRun struct {
	code           int
	stdout, stderr string
	args           []string
}

// runCaddy runs the binary, bounded in time, in a directory without a
// Caddyfile.
func runCaddy(t *testing.T, bin string, args ...string) caddyRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := caddyRun{stdout: stdout.String(), stderr: stderr.String(), args: args}
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		res.code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running caddy %v: %v", args, err)
	}
	return res
}

func (r caddyRun) wantExit(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Errorf("caddy %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, code, r.stdout, r.stderr)
	}
}

// wantLines checks that stdout holds each line, in this order.
func (r caddyRun) wantLines(t *testing.T, lines ...string) {
	t.Helper()
	rest := strings.Split(r.stdout, "\n")
	for _, want := range lines {
		i := 0
		for i < len(rest) && rest[i] != want {
			i++
		}
		if i == len(rest) {
			t.Errorf("stdout lacks the line %q (in order):\n%s", want, r.stdout)
			return
		}
		rest = rest[i+1:]
	}
}
