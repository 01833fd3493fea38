package govern

import (
	"errors"
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lro-cancel/lro_cancel/internal/audit"
)

// Exchange is one cancel served alone, from its received record to its
// completed one: the record, and what serving it needs, in one
// allocation (the Audit-Id header's value, the writer that records the
// response's status).
type Exchange struct {
	Record  audit.Record
	auditID [1]string
	status  StatusWriter
}

// Forward runs the next handler and records the HTTP status the client
// got: the upstream's, or the error's when a later handler fails.
func (ex *Exchange) Forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return forward(&ex.status, w, r, next, &ex.Record)
}

// Forward is Exchange.Forward for a record served otherwise (a batch's).
func Forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, rec *audit.Record) error {
	return forward(new(StatusWriter), w, r, next, rec)
}

func forward(sw *StatusWriter, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, rec *audit.Record) error {
	*sw = StatusWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := next.ServeHTTP(sw, r)
	rec.UpstreamStatus = sw.Status()
	rec.Status = sw.Status()
	if err != nil {
		rec.UpstreamStatus = 0
		rec.Status = http.StatusInternalServerError
		if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok && he.StatusCode != 0 {
			rec.Status = he.StatusCode
		}
	}
	return err
}

// StatusWriter passes a response through and records its final status
// (informational 1xx answers pass but are not final), as Caddy's own
// response recorder does when it streams.
type StatusWriter struct {
	caddyhttp.ResponseWriterWrapper
	status int
	final  bool
}

// WriteHeader records and writes the status; after the final one, a
// second call is dropped.
func (sw *StatusWriter) WriteHeader(code int) {
	if sw.final {
		return
	}
	sw.status = code
	sw.final = code < 100 || code > 199
	sw.ResponseWriterWrapper.WriteHeader(code)
}

// Write writes the body, with a 200 status when none was written.
func (sw *StatusWriter) Write(b []byte) (int, error) {
	if !sw.final {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriterWrapper.Write(b)
}

// ReadFrom copies the body from r, with a 200 status when none was
// written.
func (sw *StatusWriter) ReadFrom(r io.Reader) (int64, error) {
	if !sw.final {
		sw.WriteHeader(http.StatusOK)
	}
	return sw.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError flushes the response, which sends a 200 status when none was
// written: the record says so too.
func (sw *StatusWriter) FlushError() error {
	if !sw.final {
		sw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(sw.ResponseWriter).Flush()
}

// Status is the status written, 0 when none was.
func (sw *StatusWriter) Status() int { return sw.status }

var _ http.ResponseWriter = (*StatusWriter)(nil)
