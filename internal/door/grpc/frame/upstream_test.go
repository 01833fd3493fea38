package frame

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// h2cServer serves h over cleartext HTTP/2, as gRPC upstreams and tests do.
func h2cServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func h2cClient() *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

// proxyLikeCaddy forwards to upstream and copies the answer back the way
// Caddy v2.11.9's reverseproxy.(*Handler).finalizeResponse does, so that
// the header map it leaves behind has the forms StatusFromHeader reads.
func proxyLikeCaddy(upstream string, client *http.Client) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.Path, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Header = r.Header.Clone()
		res, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		delete(res.Header, "Trailer") // hop-by-hop
		for k, vv := range res.Header {
			for _, v := range vv {
				w.Header().Add(k, v)
			}
		}
		announced := len(res.Trailer)
		if announced > 0 {
			keys := make([]string, 0, announced)
			for k := range res.Trailer {
				keys = append(keys, k)
			}
			w.Header().Add("Trailer", strings.Join(keys, ", "))
		}
		w.WriteHeader(res.StatusCode)
		_, _ = io.Copy(w, res.Body)
		_ = res.Body.Close() // populates res.Trailer
		if len(res.Trailer) > 0 {
			_ = http.NewResponseController(w).Flush()
		}
		if len(res.Trailer) == announced {
			for k, vv := range res.Trailer {
				for _, v := range vv {
					w.Header().Add(k, v)
				}
			}
			return
		}
		for k, vv := range res.Trailer {
			for _, v := range vv {
				w.Header().Add(http.TrailerPrefix+k, v)
			}
		}
	}
}

func TestStatusFromHeaderAfterCaddysReverseProxy(t *testing.T) {
	grpcBody := frame(0, nil)
	tests := []struct {
		name     string
		upstream http.HandlerFunc
		wantForm string // the header map key the status was left under
		wantCode int
		wantOK   bool
	}{
		{
			name: "a trailers-only answer leaves grpc-status as a header",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.Header().Set("Grpc-Status", "7")
				w.Header().Set("Grpc-Message", "denied")
				w.WriteHeader(http.StatusOK)
			},
			wantForm: "Grpc-Status", wantCode: 7, wantOK: true,
		},
		{
			name: "unannounced trailers, as gRPC servers send them, leave the prefixed key",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(grpcBody)
				w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
				w.Header().Set(http.TrailerPrefix+"Grpc-Message", "")
			},
			wantForm: "Trailer:Grpc-Status", wantCode: 0, wantOK: true,
		},
		{
			name: "announced trailers leave grpc-status as a declared trailer",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(grpcBody)
				w.Header().Set("Grpc-Status", "5")
				w.Header().Set("Grpc-Message", "not found")
			},
			wantForm: "Grpc-Status", wantCode: 5, wantOK: true,
		},
		{
			name: "more trailers than announced leave the prefixed key",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.Header().Set("Trailer", "Grpc-Status")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(grpcBody)
				w.Header().Set("Grpc-Status", "9")
				w.Header().Set(http.TrailerPrefix+"Grpc-Message", "precondition")
			},
			wantForm: "Trailer:Grpc-Status", wantCode: 9, wantOK: true,
		},
		{
			name: "a trailer wins over a grpc-status sent early as a header",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.Header().Set("Grpc-Status", "0")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(grpcBody)
				w.Header().Set(http.TrailerPrefix+"Grpc-Status", "14")
			},
			wantForm: "Trailer:Grpc-Status", wantCode: 14, wantOK: true,
		},
		{
			name: "an announced trailer wins over a grpc-status sent early as a header",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.Header().Set("Trailer", "Grpc-Status")
				w.Header().Set("Grpc-Status", "0")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(grpcBody)
				w.Header().Set("Grpc-Status", "13")
			},
			wantForm: "Grpc-Status", wantCode: 13, wantOK: true,
		},
		{
			name: "an error page without grpc-status gives no status",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "upstream down", http.StatusServiceUnavailable)
			},
		},
		{
			name: "a malformed grpc-status gives no status",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/grpc")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(grpcBody)
				w.Header().Set(http.TrailerPrefix+"Grpc-Status", "OK")
			},
			wantForm: "Trailer:Grpc-Status",
		},
		{
			name: "a negative grpc-status gives no status",
			upstream: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Grpc-Status", "-1")
			},
			wantForm: "Grpc-Status",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := h2cServer(t, tt.upstream)
			type seen struct {
				code  int
				ok    bool
				forms []string
			}
			gateway := make(chan seen, 1)
			proxy := proxyLikeCaddy(upstream.URL, h2cClient())
			front := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				proxy(w, r)
				var s seen
				s.code, s.ok = StatusFromHeader(w.Header())
				for k := range w.Header() {
					if strings.EqualFold(strings.TrimPrefix(k, http.TrailerPrefix), "Grpc-Status") {
						s.forms = append(s.forms, k)
					}
				}
				gateway <- s
			}))

			res, err := h2cClient().Post(front.URL+"/google.longrunning.Operations/CancelOperation", "application/grpc", bytes.NewReader(frame(0, cancelMsg)))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			got := <-gateway

			if tt.wantForm != "" && !contains(got.forms, tt.wantForm) {
				t.Errorf("the proxy left grpc-status under %q, want %q", got.forms, tt.wantForm)
			}
			if got.code != tt.wantCode || got.ok != tt.wantOK {
				t.Errorf("StatusFromHeader = %d, %v; want %d, %v", got.code, got.ok, tt.wantCode, tt.wantOK)
			}
			// What the client read, as a gRPC client reads it: the trailer
			// if there is one, else the trailers-only header.
			clientSaw := res.Header.Get("Grpc-Status")
			if vv := res.Trailer.Values("Grpc-Status"); len(vv) > 0 {
				clientSaw = vv[len(vv)-1]
			}
			if code, ok := parseCode(clientSaw); tt.wantOK && (code != got.code || !ok) {
				t.Errorf("the client read grpc-status %q, the gateway %d", clientSaw, got.code)
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func trailerFrame(block string) []byte { return frame(0x80, []byte(block)) }

func TestWebStatusRecorder(t *testing.T) {
	okTrailer := trailerFrame("grpc-status: 0\r\ngrpc-message: \r\n")
	denied := trailerFrame("grpc-status: 7\r\ngrpc-message: denied\r\n")
	longDetails := "grpc-status-details-bin: " + strings.Repeat("A", 100_000) + "\r\ngrpc-status: 7\r\n"
	tests := []struct {
		name   string
		text   bool
		header map[string]string // response headers set before the body
		after  map[string]string // header map entries set after the body (trailers)
		status int               // HTTP status, 200 when 0
		body   []byte
		code   int
		ok     bool
	}{
		{name: "a trailer frame after a message gives its status", body: cat(frame(0, []byte("\x0a\x02ok")), okTrailer), code: 0, ok: true},
		{name: "a trailer frame alone gives its refusal", body: denied, code: 7, ok: true},
		{name: "trailer keys are matched case-insensitively", body: trailerFrame("Grpc-Status: 5\r\n"), code: 5, ok: true},
		{name: "the block's last line may lack its CRLF", body: trailerFrame("grpc-message: x\r\ngrpc-status: 9"), code: 9, ok: true},
		{name: "the last of repeated grpc-status lines counts", body: trailerFrame("grpc-status: 1\r\ngrpc-status: 2\r\n"), code: 2, ok: true},
		{name: "a long details line is skipped, not kept", body: trailerFrame(longDetails), code: 7, ok: true},
		{name: "a compressed data frame is skipped", body: cat(frame(1, gz(t, []byte("\x0a\x02ok"))), okTrailer), code: 0, ok: true},
		{name: "empty data frames are skipped", body: cat(frame(0, nil), frame(0, nil), denied), code: 7, ok: true},
		{name: "text frames padded one by one are decoded", text: true, body: b64(frame(0, []byte("\x0a\x02ok")), denied), code: 7, ok: true},
		{name: "text in one chunk is decoded", text: true, body: b64(cat(frame(0, []byte("\x0a\x02ok")), denied)), code: 7, ok: true},
		{name: "a trailers-only answer gives the header's status", header: map[string]string{"Grpc-Status": "16"}, body: nil, code: 16, ok: true},
		{name: "HTTP trailers count when there is no trailer frame", body: frame(0, nil), after: map[string]string{"Trailer:Grpc-Status": "14"}, code: 14, ok: true},
		{name: "the trailer frame wins over a header status", header: map[string]string{"Grpc-Status": "2"}, body: okTrailer, code: 0, ok: true},
		{name: "a truncated trailer frame gives no status", body: denied[:len(denied)-3]},
		{name: "a trailer frame without grpc-status gives no status", body: trailerFrame("grpc-message: hm\r\n")},
		{name: "a malformed grpc-status gives no status", body: trailerFrame("grpc-status: OK\r\n")},
		{name: "a malformed trailer frame does not fall back to the header", header: map[string]string{"Grpc-Status": "0"}, body: trailerFrame("grpc-status: OK\r\n")},
		{name: "bytes after the trailer frame make the status unknown", body: cat(denied, frame(0, nil))},
		{name: "a compressed trailer frame gives no status", body: frame(0x81, gz(t, []byte("grpc-status: 0\r\n")))},
		{name: "an unknown frame flag gives no status", body: cat(frame(0x02, nil), denied)},
		{name: "a content-encoded body is not read", header: map[string]string{"Content-Encoding": "gzip"}, body: gz(t, denied)},
		{name: "text that is not base64 gives no status", text: true, body: []byte("gAAAAA!!")},
		{name: "an error page gives no status", status: http.StatusServiceUnavailable, body: []byte("<html>unavailable</html>")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(t *testing.T, splits []int) {
				t.Helper()
				rec := httptest.NewRecorder()
				r := NewWebStatusRecorder(rec, tt.text)
				for k, v := range tt.header {
					r.Header().Set(k, v)
				}
				r.WriteHeader(cmp.Or(tt.status, http.StatusOK))
				prev := 0
				for _, at := range append(splits, len(tt.body)) {
					if n, err := r.Write(tt.body[prev:at]); n != at-prev || err != nil {
						t.Fatalf("Write = %d, %v", n, err)
					}
					// Passed through at once, byte for byte.
					if !bytes.Equal(rec.Body.Bytes(), tt.body[:at]) {
						t.Fatalf("after writing %d bytes the client has %d different ones", at, rec.Body.Len())
					}
					prev = at
				}
				for k, v := range tt.after {
					r.Header()[k] = []string{v}
				}
				if rec.Code != cmp.Or(tt.status, http.StatusOK) {
					t.Errorf("client got HTTP %d", rec.Code)
				}
				if code, ok := r.Status(); code != tt.code && tt.ok || ok != tt.ok {
					t.Errorf("Status() = %d, %v with writes split at %v; want %d, %v", code, ok, splits, tt.code, tt.ok)
				}
			}
			run(t, nil)
			// Byte by byte (in strides for the long body), and in two
			// writes split at each point of the first 200 bytes.
			stride := max(1, len(tt.body)/1000)
			var many []int
			for i := stride; i < len(tt.body); i += stride {
				many = append(many, i)
			}
			run(t, many)
			for i := 1; i < len(tt.body) && i < 200; i++ {
				run(t, []int{i})
			}
		})
	}
}

// deadlineWriter is a ResponseWriter with a capability the recorder does
// not have itself.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	deadline time.Time
}

func (d *deadlineWriter) SetWriteDeadline(t time.Time) error { d.deadline = t; return nil }

func TestWebStatusRecorderKeepsTheWriterReachable(t *testing.T) {
	t.Run("Flush reaches the wrapped writer", func(t *testing.T) {
		rec := httptest.NewRecorder()
		NewWebStatusRecorder(rec, false).Flush()
		if !rec.Flushed {
			t.Error("the wrapped writer was not flushed")
		}
	})
	t.Run("ResponseController reaches the wrapped writer through Unwrap", func(t *testing.T) {
		d := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
		when := time.Unix(1700000000, 0)
		if err := http.NewResponseController(NewWebStatusRecorder(d, true)).SetWriteDeadline(when); err != nil {
			t.Fatal(err)
		}
		if !d.deadline.Equal(when) {
			t.Errorf("deadline %v, want %v", d.deadline, when)
		}
	})
	t.Run("a streamed answer reaches the client before the handler returns", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := NewWebStatusRecorder(w, false)
			rw.Header().Set("Content-Type", "application/grpc-web+proto")
			_, _ = rw.Write(frame(0, []byte("\x0a\x02ok")))
			rw.Flush()
			<-release
			_, _ = rw.Write(trailerFrame("grpc-status: 0\r\n"))
		}))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		defer srv.Close()
		defer close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		first := make([]byte, headerLen+4)
		if _, err := io.ReadFull(res.Body, first); err != nil {
			t.Fatalf("the first frame did not arrive before the handler finished: %v", err)
		}
	})
}

// discardWriter is the cheapest ResponseWriter, so that a benchmark
// measures the recorder.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header       { return d.h }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}

func BenchmarkWebStatusRecorder(b *testing.B) {
	// A forwarded cancel's answer: google.protobuf.Empty, then OK.
	answer := cat(frame(0, nil), trailerFrame("grpc-status: 0\r\ngrpc-message: \r\n"))
	for _, bc := range []struct {
		name string
		text bool
		body []byte
	}{
		{"grpc-web", false, answer},
		{"grpc-web-text", true, b64(frame(0, nil), answer[headerLen:])},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				r := NewWebStatusRecorder(w, bc.text)
				_, _ = r.Write(bc.body)
				if code, ok := r.Status(); !ok || code != 0 {
					b.Fatalf("status %d, %v", code, ok)
				}
			}
		})
	}
}
