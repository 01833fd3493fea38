package batch

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/door/rest"
	"github.com/lro-cancel/lro_cancel/internal/govern"
)

// The bounds of what is read of a batch to a governed host.
const (
	MaxBytes = 10 << 20
	MaxParts = 1000
)

// Recognize reports whether r is a batch to a host the catalog governs
// (under the pinned services, when there are any). It does not allocate.
func Recognize(cat *catalog.Catalog, services []string, r *http.Request) bool {
	if !catalog.ContainsBatch(r.URL.Path) {
		return false
	}
	path := r.URL.EscapedPath()
	if len(services) == 0 {
		return cat.IsBatch(r.Host, path)
	}
	for _, s := range services {
		if cat.IsBatch(s, path) {
			return true
		}
	}
	return false
}

// ReadPart reads one embedded request, as if it had been sent alone, for
// the core: ok is false when it is not a governed cancel.
type ReadPart func(r *http.Request) (x govern.Cancel, ok bool)

// governed is one embedded cancel with its record and, when refused, its
// denial.
type governed struct {
	part Part
	rec  audit.Record
	den  *govern.Denial
}

// Serve governs a batch: every embedded cancel is decided as if it had
// been sent alone and gets its own record (audit id "<id>#<n>", protocol
// batch). When all pass, the batch is forwarded byte for byte; when any is
// refused, nothing is forwarded and the batch is answered with the first
// refusal, naming its part. A batch the gateway cannot read for certain is
// refused whole; one without a cancel passes untouched and unrecorded.
//
// service is the API the batch itself is addressed to, for the record of a
// batch refused whole.
func Serve(core *govern.Core, service string, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, read ReadPart) error {
	start := time.Now()
	id := govern.AuditID(r)
	// Read sees one Content-Type and the raw bytes: a second Content-Type,
	// or a whole-body encoding, would let the upstream read another batch.
	switch {
	case len(r.Header.Values("Content-Type")) > 1:
		return refuseUnreadable(core, service, w, r, id, &Problem{Description: "A batch request carries more than one Content-Type."}, start)
	case rest.HasContentEncoding(r.Header):
		return refuseUnreadable(core, service, w, r, id, &Problem{Description: "A batch request's body must not be encoded (Content-Encoding)."}, start)
	}
	raw, parts, problem := Read(r.Body, r.Header.Get("Content-Type"), MaxBytes, MaxParts)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if problem != nil {
		return refuseUnreadable(core, service, w, r, id, problem, start)
	}

	var cancels []governed
	for _, p := range parts {
		req := p.AsAlone(r)
		x, ok := read(req)
		if !ok {
			continue
		}
		x.Protocol = govern.ProtocolBatch
		g := governed{part: p, rec: govern.NewRecord(req, id+"#"+strconv.Itoa(p.Index), &x)}
		g.den = core.Check(req.Context(), &x, &g.rec)
		cancels = append(cancels, g)
	}
	if len(cancels) == 0 {
		return next.ServeHTTP(w, r)
	}
	w.Header().Set("Audit-Id", id)
	defer func() {
		for i := range cancels {
			core.Complete(&cancels[i].rec, start)
		}
	}()

	for _, g := range cancels {
		if g.den == nil {
			continue
		}
		g.den.Metadata["part"] = partName(g.part)
		rest.WriteEnvelope(w, g.den)
		for i := range cancels {
			cancels[i].rec.Status = g.den.HTTPStatus()
			if cancels[i].den == nil {
				cancels[i].rec.Decision = audit.BatchRefused
			}
		}
		return nil
	}

	// Every embedded cancel passed: the upstream gets the batch as the
	// client sent it, and each record the status the client got.
	first := &cancels[0].rec
	err := govern.Forward(w, r, next, first)
	for i := range cancels[1:] {
		cancels[i+1].rec.Status, cancels[i+1].rec.UpstreamStatus = first.Status, first.UpstreamStatus
	}
	return err
}

// refuseUnreadable answers a batch the gateway cannot read for certain:
// 400, never forwarded, one record for the batch itself.
func refuseUnreadable(core *govern.Core, service string, w http.ResponseWriter, r *http.Request, id string, p *Problem, start time.Time) error {
	x := govern.Cancel{
		Protocol: govern.ProtocolBatch, Service: service, Host: catalog.NormalizeHost(r.Host),
		Refusal: govern.InvalidRequest("INVALID_BATCH", p.Description),
	}
	rec := govern.NewRecord(r, id, &x)
	w.Header().Set("Audit-Id", id)
	defer core.Complete(&rec, start)
	den := core.Check(r.Context(), &x, &rec)
	if p.Part > 0 {
		den.Metadata["part"] = strconv.Itoa(p.Part)
	}
	rest.WriteEnvelope(w, den)
	rec.Status = den.HTTPStatus()
	return nil
}

// partName names a part in a refusal: its Content-ID, else its position.
func partName(p Part) string {
	if id := strings.TrimSpace(p.ContentID); id != "" {
		return id
	}
	return strconv.Itoa(p.Index)
}
