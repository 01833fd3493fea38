package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// The adversarial suite's transports. Every shape is sent exactly as the
// table writes it: over HTTP/1.1 the request is written on a raw TCP
// connection (Go's client would normalise a method, a target or a header);
// over h2c, TLS HTTP/2 and HTTP/3 through Go's clients, with the target in
// URL.Opaque so that it goes on the wire as written.

// tlsPort is where the adversarial gateway serves TLS: HTTP/1.1, HTTP/2
// and, over UDP, HTTP/3.
const tlsPort = 9443

// advTransport sends one shape and returns the answer.
type advTransport struct {
	name string
	// raw: the transport writes the request itself, so shapes Go's clients
	// cannot send (an absolute-form target, bytes a URL does not hold) run
	// on it alone.
	raw  bool
	send func(t *testing.T, s advShape) (*http.Response, []byte)
	// proto is the HTTP major version every answer must come over.
	proto int
}

func advTransports(t *testing.T) []advTransport {
	tlsConfig := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"} // the gateway's internal CA
	var h2 http.Protocols
	h2.SetHTTP2(true)
	tlsH2 := &http.Transport{
		Protocols:       &h2,
		TLSClientConfig: tlsConfig.Clone(),
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", tlsPort))
		},
	}
	t.Cleanup(tlsH2.CloseIdleConnections)
	h3 := &http3.Transport{
		TLSClientConfig: tlsConfig.Clone(),
		Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, fmt.Sprintf("127.0.0.1:%d", tlsPort), tc, qc)
		},
	}
	t.Cleanup(func() { _ = h3.Close() })
	h2c := h2cClient(t)
	return []advTransport{
		{name: "http1", raw: true, proto: 1, send: sendRawHTTP1},
		{name: "h2c", proto: 2, send: clientSender(h2c, "http", gatewayPort)},
		{name: "h2-tls", proto: 2, send: clientSender(&http.Client{Timeout: 5 * time.Second, Transport: tlsH2}, "https", tlsPort)},
		{name: "h3", proto: 3, send: clientSender(&http.Client{Timeout: 5 * time.Second, Transport: h3}, "https", tlsPort)},
	}
}

// sendRawHTTP1 writes the shape on a fresh TCP connection as an HTTP/1.1
// request, byte for byte: request line, Host, the headers in name order
// (a repeated header on lines of its own), Content-Length, and the body.
func sendRawHTTP1(t *testing.T, s advShape) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", gatewayPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	body := s.bytes()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", s.Method, s.Target, s.Host)
	for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
		for _, v := range s.Headers[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	b.Write(body)
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	return resp, got
}

// clientSender sends shapes with a Go client to the gateway's port; the
// target goes in URL.Opaque and RawQuery, which Go's clients put on the
// wire unchanged, and the Host is the shape's.
func clientSender(c *http.Client, scheme string, port int) func(*testing.T, advShape) (*http.Response, []byte) {
	return func(t *testing.T, s advShape) (*http.Response, []byte) {
		t.Helper()
		path, query, hasQuery := strings.Cut(s.Target, "?")
		u := &url.URL{Scheme: scheme, Host: fmt.Sprintf("localhost:%d", port), Opaque: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
		body := s.bytes()
		req, err := http.NewRequest(s.Method, scheme+"://localhost/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL = u
		req.Host = s.Host
		for k, vs := range s.Headers {
			req.Header[k] = slices.Clone(vs)
		}
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		if isGRPCContentType(firstOf(s.Headers["Content-Type"])) {
			// As gRPC clients send it: of unknown length, trailers wanted.
			req.ContentLength, req.GetBody = -1, nil
			req.Header.Set("TE", "trailers")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s (Host %s): %v", s.Method, s.Target, s.Host, err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the answer's body: %v", err)
		}
		return resp, got
	}
}

func isGRPCContentType(ct string) bool {
	ct = strings.ToLower(ct)
	return ct == "application/grpc" || ct == "application/grpc+proto"
}

// startAdversarialGateway runs one Caddy for every transport: plain HTTP
// (h1, h2c) on gatewayPort and TLS with the internal CA (h1, h2, h3) on
// tlsPort, both in front of the HTTP fake upstream, gRPC (application/grpc)
// going to the gRPC stand-in so that a gRPC stream that is no cancel can
// pass end to end. Its own storage keeps the internal CA out of the
// machine's shared Caddy data.
func startAdversarialGateway(t *testing.T) (*gateway, *grpcStandIn) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs a real Caddy")
	}
	g := &gateway{
		t:         t,
		upstream:  newFakeUpstream(t),
		tokeninfo: newFakeTokenInfo(t, defaultGrants()),
		dir:       t.TempDir(),
	}
	standIn := newGRPCStandIn(t)
	config := fmt.Sprintf(`{
	admin localhost:2999
	http_port %[1]d
	https_port %[2]d
	grace_period 1ns
	skip_install_trust
	storage file_system %[3]s/storage
	servers :%[1]d {
		protocols h1 h2 h2c
	}
	servers :%[2]d {
		protocols h1 h2 h3
	}
	log default {
		output file %[3]s/default.log
		exclude http.handlers.lro_cancel.audit http.log.access
	}
	log audit {
		output file %[3]s/audit.log
		format json
		include http.handlers.lro_cancel.audit
	}
}

(gateway) {
	lro_cancel {
		tokeninfo %[4]s
	}
	@grpc header_regexp Content-Type ^application/grpc(\+proto)?$
	reverse_proxy @grpc h2c://%[5]s
	reverse_proxy %[6]s
}

http://:%[1]d {
	import gateway
}

https://localhost:%[2]d, https://:%[2]d {
	tls internal
	import gateway
}
`, gatewayPort, tlsPort, g.dir, g.tokeninfo.url(), standIn.addr(), g.upstream.addr())
	g.tester = caddytest.NewTester(t)
	g.tester.InitServer(config, "caddyfile")
	if t.Failed() {
		t.FailNow() // caddytest reports a config that did not load, and goes on
	}
	return g, standIn
}

// auditTail reads the audit log as it grows, once per line.
type auditTail struct {
	path    string
	offset  int64
	partial []byte
	recs    []record
}

func (a *auditTail) poll(t *testing.T) {
	t.Helper()
	f, err := os.Open(a.path)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	a.offset += int64(len(b))
	b = append(a.partial, b...)
	end := bytes.LastIndexByte(b, '\n')
	a.partial = slices.Clone(b[end+1:])
	for _, line := range bytes.Split(b[:end+1], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		a.recs = append(a.recs, parseRecord(t, line))
	}
}

// completed returns the completed records of an audit id and of its batch
// parts (<id>#<n>).
func (a *auditTail) completed(id string) []record {
	var out []record
	for _, r := range a.recs {
		if aid := r.str("audit_id"); r.str("stage") == "completed" && (aid == id || strings.HasPrefix(aid, id+"#")) {
			out = append(out, r)
		}
	}
	return out
}

// wait polls (bounded) until an audit id has a completed record, then
// once more for any second one, and returns them.
func (a *auditTail) wait(t *testing.T, id string) []record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.poll(t)
		if len(a.completed(id)) > 0 {
			time.Sleep(20 * time.Millisecond)
			a.poll(t)
			return a.completed(id)
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newAuditTail(g *gateway) *auditTail { return &auditTail{path: filepath.Join(g.dir, "audit.log")} }

func parseRecord(t testing.TB, line []byte) record {
	t.Helper()
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("an audit line is not JSON: %q: %v", line, err)
	}
	return r
}
