package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lroauto "cloud.google.com/go/longrunning/autogen"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/googleapis/gax-go/v2"
	"github.com/googleapis/gax-go/v2/apierror"
	"github.com/redis/go-redis/v9"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	vault "google.golang.org/api/vault/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/lro-cancel/lro_cancel/internal/redistest"
)

// fleetMember is one Caddy process of the built binary, on its own ports,
// its audit records in its own file.
type fleetMember struct {
	*caddyProcess
	port, adminPort int
	audit           string
	caddyfile       string
}

// fleet runs n gateways of the built binary, each with the limits block
// given (STORE stands for the Redis address), in front of one upstream
// that counts what it receives.
type fleet struct {
	t         *testing.T
	members   []*fleetMember
	tokeninfo *fakeTokenInfo
	forwarded atomic.Int64
}

func startFleet(t *testing.T, bin string, limits []string) *fleet {
	t.Helper()
	f := &fleet{t: t, tokeninfo: newFakeTokenInfo(t, defaultGrants())}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.forwarded.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(upstream.Close)
	dir := t.TempDir()
	for i, l := range limits {
		m := &fleetMember{port: freePort(t), adminPort: freePort(t), audit: filepath.Join(dir, fmt.Sprintf("audit-%d.log", i))}
		config := fmt.Sprintf(`{
	admin 127.0.0.1:%[1]d
	http_port %[2]d
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	grace_period 1ns
	metrics
	servers {
		protocols h1 h2 h2c
	}
	log audit {
		output file %[3]s
		format json
		include http.handlers.lro_cancel.audit
	}
}

http://:%[2]d {
	lro_cancel {
		tokeninfo %[4]s
		limits {
			%[5]s
		}
	}
	reverse_proxy %[6]s
}
`, m.adminPort, m.port, m.audit, f.tokeninfo.url(), l, strings.TrimPrefix(upstream.URL, "http://"))
		caddyfile := filepath.Join(dir, fmt.Sprintf("Caddyfile-%d", i))
		if err := os.WriteFile(caddyfile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		m.caddyfile = caddyfile
		m.caddyProcess = startCaddy(t, bin, dir, caddyfile, m.port, fmt.Sprintf("gateway-%d", i))
		f.members = append(f.members, m)
	}
	return f
}

// cancel sends a REST cancel of op with token through member i and
// returns the status, the Retry-After header and the ErrorInfo reason.
func (f *fleet) cancel(i int, token, op string) (int, string, string) {
	req, err := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/v1/operations/%s:cancel", f.members[i].port, op), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Host = "vault.googleapis.com"
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		f.t.Errorf("cancel %s through gateway %d: %v", op, i, err)
		return 0, "", ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	reason := ""
	if resp.StatusCode != 200 {
		reason = decodeError(f.t, b).reason()
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), reason
}

// records waits (bounded) until the fleet's audit files hold n completed
// records and returns them.
func (f *fleet) records(n int) []record {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var completed []record
		for _, m := range f.members {
			for _, r := range readRecordFile(f.t, m.audit) {
				if r.str("stage") == "completed" {
					completed = append(completed, r)
				}
			}
		}
		if len(completed) >= n || time.Now().After(deadline) {
			return completed
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric reads one sample of the limit decisions metric from member i.
func (f *fleet) metric(i int, rule, result string) float64 {
	f.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", f.members[i].adminPort))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf(`caddy_lro_cancel_limit_decisions_total{result=%q,rule=%q} `, result, rule)
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, want); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return n
		}
	}
	return 0
}

const tokenVaultB = "ya29.a0-vault-token-bob-0006"

// Three gateways share one Redis: concurrent cancels of one principal
// spread over them admit exactly the rule's count, fleet-wide; another
// principal has its own quota; Google's REST and gRPC clients read the
// refusal; Redis holds no key in clear; every request has exactly one
// completed record across the fleet.
func TestAFleetSharingRedisAdmitsExactlyTheCount(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the binary and redis-server")
	}
	srv := redistest.Start(t)
	bin := buildCaddy(t)
	// A generous timeout: the test is about exactness, not speed, on a busy machine.
	rules := "store redis " + srv.Addr + " {\n\t\t\t\ttimeout 5s\n\t\t\t}\n\t\t\trule per-principal 7 1h"
	f := startFleet(t, bin, []string{rules, rules, rules})
	f.tokeninfo.grant(tokenVaultB, tokenGrant{Email: principalB, Sub: "2002", Scope: scopeVault})

	const sent = 60
	var wg sync.WaitGroup
	statuses := make([]int, sent)
	retryAfter := make([]string, sent)
	reasons := make([]string, sent)
	for i := range sent {
		wg.Go(func() {
			statuses[i], retryAfter[i], reasons[i] = f.cancel(i%3, tokenVault, fmt.Sprintf("fleet-%d", i))
		})
	}
	wg.Wait()
	admitted := 0
	for i, s := range statuses {
		switch {
		case s == 200:
			admitted++
		case s == 429 && reasons[i] == "CANCEL_RATE_LIMITED":
			if n, err := strconv.Atoi(retryAfter[i]); err != nil || n <= 3500 || n > 3600 {
				t.Errorf("cancel %d: Retry-After %q, want the hour less the seconds since the first admission", i, retryAfter[i])
			}
		default:
			t.Errorf("cancel %d: %d %s, want 200 or 429 CANCEL_RATE_LIMITED", i, s, reasons[i])
		}
	}
	if admitted != 7 || f.forwarded.Load() != 7 {
		t.Fatalf("the fleet admitted %d of %d concurrent cancels (the upstream got %d), want exactly 7", admitted, sent, f.forwarded.Load())
	}

	// Bob's quota is his own.
	for i := range 7 {
		if s, _, r := f.cancel(i%3, tokenVaultB, fmt.Sprintf("bob-%d", i)); s != 200 {
			t.Errorf("bob's cancel %d: %d %s, want 200", i+1, s, r)
		}
	}
	if s, _, _ := f.cancel(0, tokenVaultB, "bob-8"); s != 429 {
		t.Errorf("bob's 8th cancel: %d, want 429", s)
	}

	// Google's REST client reads the refusal: googleapi.Error, then
	// apierror with the QuotaFailure and RetryInfo.
	svc, err := vault.NewService(context.Background(),
		option.WithEndpoint(fmt.Sprintf("http://127.0.0.1:%d/", f.members[1].port)),
		option.WithHTTPClient(&http.Client{Transport: hostTransport{host: "vault.googleapis.com", token: tokenVault}}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Operations.Cancel("operations/rest-client", &vault.CancelOperationRequest{}).Do()
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != 429 {
		t.Fatalf("the REST client got %v, want a googleapi.Error 429", err)
	}
	// The discovery clients wrap the parsed APIError in the googleapi.Error
	// (apierror.FromError of the outer error loses its details).
	var aerr *apierror.APIError
	if !errors.As(err, &aerr) {
		t.Fatalf("the REST client's error %v carries no apierror.APIError", err)
	}
	if aerr.Reason() != "CANCEL_RATE_LIMITED" || aerr.Metadata()["rule"] != "per-principal" {
		t.Errorf("apierror reads %v", aerr)
	}
	if qv := aerr.Details().QuotaFailure.GetViolations(); len(qv) != 1 || qv[0].GetSubject() != "rule:per-principal" {
		t.Errorf("QuotaFailure %v", qv)
	}
	if d := aerr.Details().RetryInfo.GetRetryDelay().AsDuration(); d <= 58*time.Minute || d > time.Hour {
		t.Errorf("RetryInfo %v, want just under the hour", d)
	}

	// Google's gRPC client (cloud.google.com/go/longrunning) gets code 8.
	gerr2 := grpcCancel(t, f.members[2].port, tokenVault, "operations/grpc-client")
	if status := apiErrorOf(t, gerr2); status.GRPCStatus().Code() != codes.ResourceExhausted || status.Reason() != "CANCEL_RATE_LIMITED" ||
		status.Details().QuotaFailure == nil || status.Details().RetryInfo == nil {
		t.Errorf("the gRPC client got %v, want ResourceExhausted CANCEL_RATE_LIMITED with QuotaFailure and RetryInfo", gerr2)
	}

	// Redis holds hashed keys only.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "*").Result()
	if err != nil || len(keys) < 2 {
		t.Fatalf("redis keys %q, %v; want one per principal", keys, err)
	}
	for _, k := range keys {
		if strings.Contains(k, "example.com") || strings.Contains(k, "per-principal") {
			t.Errorf("redis key %q holds the principal or the rule in clear", k)
		}
	}

	// One completed record per request, across the fleet.
	total := sent + 8 + 2
	recs := f.records(total)
	seen := map[string]int{}
	decisions := map[string]int{}
	for _, r := range recs {
		seen[r.str("audit_id")]++
		decisions[r.str("decision")]++
		if r.str("decision") == "rate_limited" && r.str("limit_rule") != "per-principal" {
			t.Errorf("rate_limited record %v does not name the rule", r)
		}
	}
	if len(recs) != total || len(seen) != total {
		t.Errorf("%d completed records with %d audit ids for %d requests", len(recs), len(seen), total)
	}
	if decisions["forwarded"] != 14 || decisions["rate_limited"] != total-14 {
		t.Errorf("decisions %v, want 14 forwarded and %d rate_limited", decisions, total-14)
	}
	var limited float64
	for i := range f.members {
		limited += f.metric(i, "per-principal", "limited")
	}
	if limited != float64(total-14) {
		t.Errorf("the fleet's metric counts %v limited, want %d", limited, total-14)
	}
}

// hostTransport sends every request to the gateway as if to host, with a
// bearer token.
type hostTransport struct{ host, token string }

func (h hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	r.Header.Set("Authorization", "Bearer "+h.token)
	return http.DefaultTransport.RoundTrip(r)
}

// grpcCancel cancels name through the gateway on port with Google's own
// longrunning gRPC client, without its retries.
func grpcCancel(t *testing.T, port int, token, name string) error {
	t.Helper()
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("vault.googleapis.com"),
		grpc.WithPerRPCCredentials(bearerCredentials(token)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := lroauto.NewOperationsClient(context.Background(), option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: name},
		gax.WithRetry(func() gax.Retryer { return nil }))
}

func apiErrorOf(t *testing.T, err error) *apierror.APIError {
	t.Helper()
	aerr, ok := apierror.FromError(err)
	if !ok {
		t.Fatalf("apierror.FromError(%v) failed", err)
	}
	return aerr
}

// Redis killed mid-run: a gateway under on_error deny answers 503
// LIMIT_STORE_UNAVAILABLE and forwards nothing, one under allow forwards
// and records limit_error; each warns once. Redis restarted empty: the
// counts it lost make the limits inexact until a window has passed, which
// on_error deny refuses too; then both recover without a reload.
func TestARedisOutageDeniesOrAllowsAndRecoversByItself(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the binary and redis-server")
	}
	srv := redistest.Start(t)
	bin := buildCaddy(t)
	store := "store redis " + srv.Addr + " {\n\t\t\t\ttimeout 1s\n\t\t\t}\n\t\t\trule per-principal 100 3s\n"
	f := startFleet(t, bin, []string{store + "on_error deny", store + "on_error allow"})
	for i := range 2 {
		if s, _, r := f.cancel(i, tokenVault, "before"); s != 200 {
			t.Fatalf("gateway %d with redis up: %d %s", i, s, r)
		}
	}
	srv.Kill()
	before := f.forwarded.Load()
	for n := range 3 {
		if s, _, r := f.cancel(0, tokenVault, "down-deny-"+strconv.Itoa(n)); s != 503 || r != "LIMIT_STORE_UNAVAILABLE" {
			t.Errorf("deny, redis down: %d %s, want 503 LIMIT_STORE_UNAVAILABLE", s, r)
		}
		if s, _, r := f.cancel(1, tokenVault, "down-allow-"+strconv.Itoa(n)); s != 200 {
			t.Errorf("allow, redis down: %d %s, want 200", s, r)
		}
	}
	if got := f.forwarded.Load() - before; got != 3 {
		t.Errorf("the upstream got %d cancels while redis was down, want the 3 under allow", got)
	}

	srv.Restart()
	// Within 3s of the loss the counts cannot be trusted: deny refuses;
	// then the gateway recovers by itself.
	recovered := false
	var sawLost bool
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		s, _, r := f.cancel(0, tokenVault, "after")
		if s == 200 {
			recovered = true
			break
		}
		if s != 503 || r != "LIMIT_STORE_UNAVAILABLE" {
			t.Fatalf("after the restart: %d %s", s, r)
		}
		sawLost = true
	}
	if !recovered {
		t.Fatal("the deny gateway did not recover within 15s of redis's return")
	}
	if !sawLost {
		t.Error("the first cancels after a restart that lost the counts were admitted; want 503 until a window has passed")
	}
	if s, _, r := f.cancel(1, tokenVault, "after"); s != 200 {
		t.Errorf("the allow gateway after recovery: %d %s", s, r)
	}

	for i, m := range f.members {
		if n := strings.Count(m.log(), "limit store unavailable"); n != 1 {
			t.Errorf("gateway %d warned %d times, want once per outage:\n%s", i, n, m.log())
		}
	}
	recs := f.records(0)
	var allowErr, denyUnavailable int
	for _, r := range recs {
		if r["limit_error"] == true && r.str("decision") == "forwarded" {
			allowErr++
		}
		if r.str("decision") == "limit_store_unavailable" && r.num("status") == 503 {
			denyUnavailable++
		}
	}
	if allowErr < 3 || denyUnavailable < 3 {
		t.Errorf("records: %d forwarded with limit_error, %d limit_store_unavailable; want at least 3 each", allowErr, denyUnavailable)
	}
	if f.metric(0, "per-principal", "store_error") < 3 {
		t.Errorf("the deny gateway's metric counts %v store errors", f.metric(0, "per-principal", "store_error"))
	}
}

// A local store limits one gateway alone; under dry_run nothing is
// refused and the record names the rule that would have.
func TestLocalAndDryRunLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the binary")
	}
	bin := buildCaddy(t)
	f := startFleet(t, bin, []string{"rule per-principal 2 1h", "rule per-principal 2 1h\n\t\t\tdry_run"})
	var got []int
	for i := range 3 {
		s, _, _ := f.cancel(0, tokenVault, "local-"+strconv.Itoa(i))
		got = append(got, s)
	}
	if fmt.Sprint(got) != "[200 200 429]" {
		t.Errorf("local store: %v, want [200 200 429]", got)
	}
	for i := range 3 {
		if s, _, _ := f.cancel(1, tokenVault, "dry-"+strconv.Itoa(i)); s != 200 {
			t.Errorf("dry run cancel %d: %d, want 200", i+1, s)
		}
	}
	recs := f.records(6)
	var wouldRefuse int
	for _, r := range recs {
		if r["limit_dry_run"] == true && r.str("limit_rule") == "per-principal" && r.str("decision") == "forwarded" {
			wouldRefuse++
		}
	}
	if wouldRefuse != 1 {
		t.Errorf("%d dry-run records name the rule that would refuse, want 1", wouldRefuse)
	}
	if n := f.metric(1, "per-principal", "dry_run_limited"); n != 1 {
		t.Errorf("dry_run_limited metric %v, want 1", n)
	}

	// A reload keeps the local counts (the store passes from the old config
	// to the new) and the metric's (one collector per process).
	m := f.members[0]
	run := runCaddy(t, bin, "reload", "--config", m.caddyfile, "--adapter", "caddyfile",
		"--address", fmt.Sprintf("127.0.0.1:%d", m.adminPort), "--force")
	if run.code != 0 {
		t.Fatalf("caddy reload: exit %d: %s", run.code, run.stderr)
	}
	if s, _, _ := f.cancel(0, tokenVault, "after-reload"); s != 429 {
		t.Errorf("after the reload: %d, want 429 (the local counts survive it)", s)
	}
	for result, want := range map[string]float64{"admitted": 2, "limited": 2} {
		if n := f.metric(0, "per-principal", result); n != want {
			t.Errorf("after a reload the %s metric reads %v, want %v (counted before and after it)", result, n, want)
		}
	}
}

// `tls` speaks TLS to the store and verifies its certificate against the
// system's roots (here a test CA, given as SSL_CERT_FILE, which Go reads
// as the system's); the same store without `tls` is unavailable.
func TestTheRedisStoreOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the binary and redis-server")
	}
	dir := t.TempDir()
	ca, cert, key := testCertificates(t, dir)
	t.Setenv("SSL_CERT_FILE", ca) // the Caddy processes inherit it
	srv := redistest.StartTLS(t, cert, key)
	bin := buildCaddy(t)
	f := startFleet(t, bin, []string{
		"store redis " + srv.Addr + " {\n\t\t\t\ttls\n\t\t\t\ttimeout 2s\n\t\t\t}\n\t\t\trule per-principal 1 1h",
		"store redis " + srv.Addr + " {\n\t\t\t\ttimeout 2s\n\t\t\t}\n\t\t\trule per-principal 1 1h",
	})
	if s, _, r := f.cancel(0, tokenVault, "tls-1"); s != 200 {
		t.Errorf("over TLS: %d %s, want 200", s, r)
	}
	if s, _, r := f.cancel(0, tokenVault, "tls-2"); s != 429 {
		t.Errorf("over TLS, the second: %d %s, want 429", s, r)
	}
	if s, _, r := f.cancel(1, tokenVault, "plain"); s != 503 || r != "LIMIT_STORE_UNAVAILABLE" {
		t.Errorf("cleartext to a TLS store: %d %s, want 503 LIMIT_STORE_UNAVAILABLE", s, r)
	}
}

// testCertificates writes a CA and a certificate for 127.0.0.1 it signed,
// and returns the files: the CA, the certificate, its key.
func testCertificates(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lro_cancel test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caTmpl, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER)
}
