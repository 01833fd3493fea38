package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the stand-in reads gzip messages, as Google does
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The gRPC methods whose cancels the gateway governs.
const (
	lroCancelMethod     = "/google.longrunning.Operations/CancelOperation"
	gkeCancelMethod     = "/google.container.v1.ClusterManager/CancelOperation"
	gkeBetaCancelMethod = "/google.container.v1beta1.ClusterManager/CancelOperation"
	sqlCancelMethod     = "/google.cloud.sql.v1.SqlOperationsService/Cancel"
	sqlBetaCancelMethod = "/google.cloud.sql.v1beta4.SqlOperationsService/Cancel"
)

// rawCodec hands messages over as the bytes on the wire, so the stand-in
// records exactly what arrived and the raw clients send exactly what the
// test built. Messages are *[]byte.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

// Name makes the raw clients send application/grpc+proto.
func (rawCodec) Name() string { return "proto" }

// grpcCall is what the gRPC stand-in received in one call.
type grpcCall struct {
	Method, Authority, Authorization string
	// Compression is the call's grpc-encoding ("" for identity).
	Compression string
	// Messages are the request messages, decompressed; WireSizes their
	// sizes as they arrived (compressed, without the gRPC frame header).
	Messages  [][]byte
	WireSizes []int
}

type grpcCallKey struct{}

// grpcStandIn stands in for Google's gRPC front end: a real grpc-go
// server that takes any method, records what it received byte for byte,
// and answers an empty message (google.protobuf.Empty: zero bytes), or
// the status set in answer.
type grpcStandIn struct {
	srv    *grpc.Server
	ln     net.Listener
	mu     sync.Mutex
	seen   []grpcCall
	answer atomic.Uint32 // a codes.Code; OK answers Empty
}

func newGRPCStandIn(t testing.TB) *grpcStandIn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &grpcStandIn{ln: ln}
	s.srv = grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(s.handle),
		grpc.StatsHandler(wireSizes{}),
	)
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(s.srv.Stop)
	return s
}

func (s *grpcStandIn) addr() string { return s.ln.Addr().String() }

func (s *grpcStandIn) handle(_ any, stream grpc.ServerStream) error {
	c := stream.Context().Value(grpcCallKey{}).(*grpcCall)
	c.Method, _ = grpc.MethodFromServerStream(stream)
	md, _ := metadata.FromIncomingContext(stream.Context())
	c.Authority = firstOf(md.Get(":authority"))
	c.Authorization = firstOf(md.Get("authorization"))
	var err error
	for {
		var m []byte
		if err = stream.RecvMsg(&m); err != nil {
			break
		}
		c.Messages = append(c.Messages, m)
	}
	s.mu.Lock()
	s.seen = append(s.seen, *c)
	s.mu.Unlock()
	if !errors.Is(err, io.EOF) {
		return err
	}
	if code := codes.Code(s.answer.Load()); code != codes.OK {
		return status.Error(code, "the stand-in answers "+code.String())
	}
	empty := []byte{}
	return stream.SendMsg(&empty)
}

func (s *grpcStandIn) calls() []grpcCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]grpcCall(nil), s.seen...)
}

func (s *grpcStandIn) reset() {
	s.mu.Lock()
	s.seen = nil
	s.mu.Unlock()
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// wireSizes records, per call, the encoding and the size each message had
// on the wire: grpc-go decompresses before the codec sees a message.
type wireSizes struct{}

func (wireSizes) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, grpcCallKey{}, &grpcCall{})
}

func (wireSizes) HandleRPC(ctx context.Context, s stats.RPCStats) {
	c, _ := ctx.Value(grpcCallKey{}).(*grpcCall)
	if c == nil {
		return
	}
	switch s := s.(type) {
	case *stats.InHeader:
		c.Compression = s.Compression
	case *stats.InPayload:
		c.WireSizes = append(c.WireSizes, s.CompressedLength)
	}
}

func (wireSizes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (wireSizes) HandleConn(context.Context, stats.ConnStats)                       {}

// grpcGateway is a gateway that serves h2c and proxies to the gRPC
// stand-in.
type grpcGateway struct {
	*gateway
	standIn *grpcStandIn
}

// startGRPCGateway runs lro_cancel (with the given subdirectives) in front
// of `reverse_proxy h2c://<stand-in>`, on a server speaking h1, h2 and h2c.
func startGRPCGateway(t *testing.T, directive string) *grpcGateway {
	t.Helper()
	s := newGRPCStandIn(t)
	g := startGateway(t, gatewayOptions{
		servers: "protocols h1 h2 h2c",
		site:    "lro_cancel {\n tokeninfo TOKENINFO\n" + directive + "\n}\nreverse_proxy h2c://" + s.addr(),
	})
	return &grpcGateway{gateway: g, standIn: s}
}

// bearerCredentials sends an OAuth token as gRPC's authorization metadata;
// the loopback gateway is cleartext, so it does not insist on TLS.
type bearerCredentials string

func (b bearerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerCredentials) RequireTransportSecurity() bool { return false }

// dialGateway opens a gRPC connection to the gateway as if it were the
// API at authority; token "" sends no credential.
func dialGateway(t testing.TB, authority, token string) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(authority),
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerCredentials(token)))
	}
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", gatewayPort), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// operationsClient is Google's own gRPC client of google.longrunning,
// talking to the gateway as authority.
func operationsClient(t testing.TB, authority, token string) *lroauto.OperationsClient {
	t.Helper()
	c, err := lroauto.NewOperationsClient(context.Background(), option.WithGRPCConn(dialGateway(t, authority, token)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// grpcAnswer is what a gRPC client saw of one call.
type grpcAnswer struct {
	err error
	// auditID is the audit-id response metadata: in the headers, or in
	// the trailers of a trailers-only answer.
	auditID string
}

func auditIDOf(header, trailer metadata.MD) string {
	if id := firstOf(header.Get("audit-id")); id != "" {
		return id
	}
	return firstOf(trailer.Get("audit-id"))
}

// cancelOperation cancels name with Google's client, without its retries
// (a retried UNAVAILABLE would be a second cancel).
func cancelOperation(c *lroauto.OperationsClient, name string) grpcAnswer {
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	var header, trailer metadata.MD
	err := c.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: name},
		gax.WithRetry(func() gax.Retryer { return nil }),
		gax.WithGRPCOptions(grpc.Header(&header), grpc.Trailer(&trailer)))
	return grpcAnswer{err: err, auditID: auditIDOf(header, trailer)}
}

// invokeRaw sends one request message as bytes, for methods without a Go
// client in the module graph (GKE, Cloud SQL).
func invokeRaw(conn *grpc.ClientConn, method string, msg []byte) grpcAnswer {
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	var reply []byte
	var header, trailer metadata.MD
	err := conn.Invoke(ctx, method, &msg, &reply, grpc.ForceCodec(rawCodec{}), grpc.Header(&header), grpc.Trailer(&trailer))
	return grpcAnswer{err: err, auditID: auditIDOf(header, trailer)}
}

// lroCancel is the wire form of google.longrunning.CancelOperationRequest.
func lroCancel(name string) []byte {
	b, err := proto.Marshal(&longrunningpb.CancelOperationRequest{Name: name})
	if err != nil {
		panic(err)
	}
	return b
}

// field is one string field of a hand-built message.
type field struct {
	num   protowire.Number
	value string
}

// message serializes string fields in the order given; a number may
// repeat, as a hostile client would send it.
func message(fields ...field) []byte {
	var b []byte
	for _, f := range fields {
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		b = protowire.AppendString(b, f.value)
	}
	return b
}

// gkeCancel is google.container.v1.CancelOperationRequest (v1beta1 alike):
// project_id 1, zone 2, operation_id 3, name 4; empty fields are left out.
func gkeCancel(projectID, zone, operationID, name string) []byte {
	var fs []field
	for i, v := range []string{projectID, zone, operationID, name} {
		if v != "" {
			fs = append(fs, field{protowire.Number(i + 1), v})
		}
	}
	return message(fs...)
}

// sqlCancel is google.cloud.sql.v1.SqlOperationsCancelRequest (v1beta4
// alike): operation 1, project 2.
func sqlCancel(operation, project string) []byte {
	return message(field{1, operation}, field{2, project})
}

// grpcFrame is one length-prefixed gRPC message; flag 1 says compressed,
// 0x80 a gRPC-Web trailer frame.
func grpcFrame(flag byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flag
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// assertGRPCError checks an error as Google's gRPC clients read it: the
// status code, and the ErrorInfo reason through apierror.FromError.
func assertGRPCError(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the call succeeded, want %s %s", code, reason)
	}
	if got := status.Code(err); got != code {
		t.Errorf("code = %s, want %s (%v)", got, code, err)
	}
	ae, ok := apierror.FromError(err)
	if !ok {
		t.Fatalf("apierror.FromError could not parse %v", err)
	}
	if ae.Reason() != reason {
		t.Errorf("reason = %q, want %q (%v)", ae.Reason(), reason, err)
	}
}

// h2cClient speaks HTTP/2 in cleartext with prior knowledge, as gRPC
// clients do, to send gRPC requests no well-behaved client would build.
func h2cClient(t testing.TB) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &p,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", gatewayPort))
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

// rawGRPCAnswer is a gRPC response as read off HTTP/2.
type rawGRPCAnswer struct {
	httpStatus  int
	contentType string
	auditID     string
	// grpcStatus is -1 when the answer carries none.
	grpcStatus int
	details    *spb.Status
}

// postGRPC sends body as a gRPC request to host's method over h2c (or
// HTTP/1.1 when client says so), with header pairs added.
func postGRPC(t *testing.T, client *http.Client, host, method string, body []byte, header ...string) rawGRPCAnswer {
	t.Helper()
	req := newRequest(t, "POST", apiURL(host, method), "", header...)
	// Of unknown length, as gRPC clients send it: even no message at all
	// ends the stream with a DATA frame (grpc-go's server, the stand-in,
	// would wait forever for the end of a stream its HEADERS ended).
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), -1
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/grpc")
	}
	req.Header.Set("TE", "trailers")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", method, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	// A trailers-only answer carries its status in the headers.
	get := func(k string) string {
		if v := resp.Trailer.Get(k); v != "" {
			return v
		}
		return resp.Header.Get(k)
	}
	a := rawGRPCAnswer{httpStatus: resp.StatusCode, contentType: resp.Header.Get("Content-Type"),
		auditID: resp.Header.Get("Audit-Id"), grpcStatus: -1}
	if s := get("Grpc-Status"); s != "" {
		if a.grpcStatus, err = strconv.Atoi(s); err != nil {
			t.Fatalf("grpc-status %q is not a number", s)
		}
	}
	if bin := get("Grpc-Status-Details-Bin"); bin != "" {
		a.details = decodeStatusDetails(t, bin)
	}
	return a
}

// decodeStatusDetails decodes grpc-status-details-bin: base64 (padded or
// not) of a google.rpc.Status.
func decodeStatusDetails(t testing.TB, bin string) *spb.Status {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(bin, "="))
	if err != nil {
		t.Fatalf("grpc-status-details-bin is not base64: %q: %v", bin, err)
	}
	st := &spb.Status{}
	if err := proto.Unmarshal(b, st); err != nil {
		t.Fatalf("grpc-status-details-bin is not a google.rpc.Status: %v", err)
	}
	return st
}

// reasonMismatch says whether an ErrorInfo reason is not the one wanted:
// want "" accepts any reason, but there must be one.
func reasonMismatch(got, want string) bool {
	return got == "" || want != "" && got != want
}

// errorInfoReason is the reason of a google.rpc.Status's ErrorInfo.
func errorInfoReason(st *spb.Status) string {
	for _, d := range st.GetDetails() {
		info := &errdetails.ErrorInfo{}
		if d.MessageIs(info) && d.UnmarshalTo(info) == nil {
			return info.GetReason()
		}
	}
	return ""
}

// grpcWebTrailers reads a gRPC-Web response body (base64 for the -text
// forms): its data frames are skipped; the trailer frame's
// "name: value\r\n" lines are returned with lower-case names.
func grpcWebTrailers(t testing.TB, body []byte, text bool) map[string]string {
	t.Helper()
	if text {
		var decoded []byte
		// A -text body may be several base64 chunks, each padded.
		for rest := string(body); rest != ""; {
			n := strings.Index(rest, "=")
			chunk := rest
			if n >= 0 {
				for n < len(rest) && rest[n] == '=' {
					n++
				}
				chunk, rest = rest[:n], rest[n:]
			} else {
				rest = ""
			}
			b, err := base64.StdEncoding.DecodeString(chunk)
			if err != nil {
				t.Fatalf("a grpc-web-text body is not base64: %q: %v", body, err)
			}
			decoded = append(decoded, b...)
		}
		body = decoded
	}
	for len(body) >= 5 {
		flag, n := body[0], int(binary.BigEndian.Uint32(body[1:5]))
		if len(body) < 5+n {
			t.Fatalf("a gRPC-Web frame is cut short: %q", body)
		}
		payload := body[5 : 5+n]
		body = body[5+n:]
		if flag&0x80 == 0 {
			continue
		}
		trailers := map[string]string{}
		for _, line := range strings.Split(string(payload), "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				trailers[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		return trailers
	}
	t.Fatalf("no gRPC-Web trailer frame in %q", body)
	return nil
}

// hasNumber says whether a record's field is the number want (not merely
// absent, which num reads as 0).
func (r record) hasNumber(k string, want int) bool {
	f, ok := r[k].(float64)
	return ok && int(f) == want
}

// assertRecord checks the fields of a record that a test names.
func assertRecord(t *testing.T, rec record, want map[string]any) {
	t.Helper()
	for k, v := range want {
		switch v := v.(type) {
		case int:
			if !rec.hasNumber(k, v) {
				t.Errorf("record[%q] = %v, want %d", k, rec[k], v)
			}
		default:
			if rec[k] != v {
				t.Errorf("record[%q] = %v, want %v", k, rec[k], v)
			}
		}
	}
}

// padded is an operation name of n bytes.
func padded(n int) string {
	return "operations/" + strings.Repeat("a", n-len("operations/"))
}
