// Package batch is the HTTP batch front door: Google's multipart/mixed
// batch (POST /batch, /batch/<api>/<version>), each part of which carries
// one embedded HTTP/1.1 request that is governed as if it had been sent
// alone. Package wire reads the batch; this package governs it.
package batch

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/catalog"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/door/batch/wire"
	"github.com/lro-cancel/lro_cancel/internal/door/rest"
	"github.com/lro-cancel/lro_cancel/internal/govern"
	"github.com/lro-cancel/lro_cancel/internal/reading"
)

// ReadPart reads one embedded request, as if it had been sent alone, for
// the core: named is the host the part names itself ("" when none); ok is
// false when it is not a governed cancel.
type ReadPart func(alone *http.Request, named string) (x govern.Cancel, ok bool)

// governed is one embedded cancel with its record and, when refused, its
// denial.
type governed struct {
	part wire.Part
	rec  audit.Record
	den  *govern.Denial
}

// Serve governs a batch. Its bytes are read (at most wire.MaxBytes) and scanned
// once: a batch that holds no cancel under any reading
// (reading.MayHoldCancel) is forwarded as it is, unparsed. Otherwise every
// embedded cancel is decided as if it had
// been sent alone and gets its own record (audit id "<id>#<n>", protocol
// batch). When all pass, the batch is forwarded byte for byte; when any is
// refused, nothing is forwarded and the batch is answered with the first
// refusal, naming its part. A batch the gateway cannot read for certain is
// refused whole; one without a cancel passes untouched and unrecorded.
//
// service is the API the batch itself is addressed to, for the record of a
// batch refused whole; contentType is the content type Google's front end
// reads ($ct, else Content-Type). A batch the reader refused (refusal) is
// refused whole, unread.
func Serve(core *govern.Core, service, contentType string, refusal *govern.Denial, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, read ReadPart) error {
	start := time.Now()
	// Read sees one Content-Type and the raw bytes: a second Content-Type,
	// or a whole-body encoding, would let the upstream read another batch.
	// An encoded body cannot be scanned: refused first.
	if rest.HasContentEncoding(r.Header) {
		return refuseUnreadable(core, service, w, r, govern.AuditID(r), &wire.Problem{Description: "A batch request's body must not be encoded (Content-Encoding)."}, start)
	}
	buf := pooledFor(r.ContentLength)
	raw, problem := wire.ReadBodyInto(r, wire.MaxBytes, memoryOf(buf))
	held := newHeldBody(raw, buf)
	r.Body = held
	// Scanned, not parsed: bytes that hold no cancel under any reading are
	// forwarded after one pass, however the batch is framed.
	if problem == nil && !reading.MayHoldCancel(raw) {
		err := next.ServeHTTP(w, r)
		held.release()
		return err
	}
	held.disown()
	id := govern.AuditID(r)
	switch {
	case refusal != nil:
		return refuse(core, service, w, r, id, refusal, 0, start)
	case len(r.Header.Values("Content-Type")) > 1:
		return refuseUnreadable(core, service, w, r, id, &wire.Problem{Description: "A batch request carries more than one Content-Type."}, start)
	case problem != nil:
		return refuseUnreadable(core, service, w, r, id, problem, start)
	}
	parts, problem := wire.Parse(raw, contentType, wire.MaxParts)
	if problem != nil {
		return refuseUnreadable(core, service, w, r, id, problem, start)
	}

	var cancels []governed
	for _, p := range parts {
		req := p.AsAlone(r)
		x, ok := read(req, p.Request.Host)
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
func refuseUnreadable(core *govern.Core, service string, w http.ResponseWriter, r *http.Request, id string, p *wire.Problem, start time.Time) error {
	return refuse(core, service, w, r, id, govern.InvalidRequest("INVALID_BATCH", p.Description), p.Part, start)
}

// refuse answers a batch refused whole with den: never forwarded, one
// record for the batch itself; part, when not 0, names the offending part.
func refuse(core *govern.Core, service string, w http.ResponseWriter, r *http.Request, id string, den *govern.Denial, part int, start time.Time) error {
	credential.Scrub(r)
	x := govern.Cancel{
		Protocol: govern.ProtocolBatch, Service: service, Host: catalog.NormalizeHost(r.Host),
		Refusal: den,
	}
	rec := govern.NewRecord(r, id, &x)
	w.Header().Set("Audit-Id", id)
	defer core.Complete(&rec, start)
	den = core.Check(r.Context(), &x, &rec)
	if part > 0 {
		den.Metadata["part"] = strconv.Itoa(part)
	}
	rest.WriteEnvelope(w, den)
	rec.Status = den.HTTPStatus()
	return nil
}

// partName names a part in a refusal: its Content-ID, else its position.
func partName(p wire.Part) string {
	if id := strings.TrimSpace(p.ContentID); id != "" {
		return id
	}
	return strconv.Itoa(p.Index)
}
