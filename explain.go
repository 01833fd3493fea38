package lrocancel

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/lro-cancel/lro_cancel/internal/audit"
	"github.com/lro-cancel/lro_cancel/internal/credential"
	"github.com/lro-cancel/lro_cancel/internal/door/batch/wire"
	"github.com/lro-cancel/lro_cancel/internal/govern"
	"github.com/lro-cancel/lro_cancel/internal/policy"
	"github.com/lro-cancel/lro_cancel/internal/reading"
)

// identity is who `caddy lro-cancel explain` and `test` say is calling: it
// stands for a verified token, so no verifier is asked.
type identity struct {
	Principal string         `json:"principal,omitempty"`
	Scopes    []string       `json:"scopes,omitempty"`
	Claims    map[string]any `json:"claims,omitempty"`
}

// standInToken is the token of a request that names none: never verified,
// never printed.
const standInToken = "lro-cancel-explain-identity"

// info is the identity as the given verifier would have vouched for it.
func (id identity) info(verifier string) *credential.Info {
	i := &credential.Info{Scopes: id.Scopes, Claims: id.Claims, Verifier: verifier}
	if strings.Contains(id.Principal, "@") {
		i.Email = id.Principal
	} else {
		i.Subject = id.Principal
	}
	return i
}

// explanation is what the handler would do with a request, step by step.
type explanation struct {
	// Door is the front door (the record's protocol); "" when the request
	// is not a cancel at all.
	Door      string
	Governed  bool
	Note      string // why a request is not governed
	Service   string
	Method    string
	Operation string
	Scopes    []string // accepted
	Steps     []govern.Step
	Policy    *policy.Decision
	// Decision is the record's: forwarded, or the refusal's.
	Decision   audit.Decision
	PolicyRule string
	// LimitRule is the limit rule that refuses (or, under dry_run, would).
	LimitRule   string
	LimitDryRun bool
	// Status is the HTTP status the client gets from a refusal (200 for
	// gRPC, whose code is GRPCStatus); 0 when forwarded.
	Status        int
	GRPCStatus    int
	HasGRPCStatus bool
	Reason        string
	// CallerReason and UserProject are the request reason and the quota
	// project the caller named.
	CallerReason, UserProject string
	// Parts are a batch's embedded cancels, explained one by one.
	Parts []explanation
}

// forwards reports whether the handler would let the request go on.
func (e *explanation) forwards() bool {
	return !e.Governed || e.Decision == audit.Forwarded
}

// explain decides on r as the running handler would, through the same
// recognition, doors and core, with the caller's identity given instead
// of verified. It writes no record and calls no verifier.
func (h *Handler) explain(r *http.Request, id identity) explanation {
	// The identity stands for a verified token: a request without one gets
	// a stand-in, so that the doors read it on as they read a request that
	// carries a token (REST reads no body without one). A credential the
	// request does carry is left as it is, and judged as the gateway would.
	if _, err := credential.Extract(r); errors.Is(err, credential.ErrMissing) {
		r.Header.Set("Authorization", "Bearer "+standInToken)
	}
	rd := h.recognizer.reader.Read(r)
	if rd.Door == reading.Batch {
		return h.explainBatch(r, &rd, id)
	}
	return h.explainReading(r, &rd, id)
}

// explainReading explains a request (or a batch part) the reader has read.
func (h *Handler) explainReading(r *http.Request, rd *reading.Reading, id identity) explanation {
	if rd.Door == reading.None {
		return explanation{Note: "not a cancel: passes untouched and unrecorded"}
	}
	x, door := h.recognizer.read(r, rd, h.Body == bodyStrict)
	e := explanation{Door: x.Protocol, Service: x.Service, Method: x.MethodID(), Operation: x.Operation,
		CallerReason: x.Reason, UserProject: x.UserProject}
	if h.core.Passes(&x) {
		e.Note = "unlisted cancel under `unlisted pass`: not governed"
		return e
	}
	e.Governed = true
	rec := govern.NewRecord(r, "explain", &x)
	var t govern.Trace
	den := x.Refusal
	if den == nil {
		den = govern.CredentialRefusal(&x)
	}
	if den != nil {
		t.Steps = append(t.Steps, govern.Step{Check: "request", Outcome: "refused before credentials: " + den.Message})
	} else {
		t.Steps = append(t.Steps, govern.Step{Check: "credentials", Outcome: "given (" + describe(id) + "), not verified"})
		den = h.core.Authorize(r.Context(), &x, &rec, id.info(h.opaqueVerifier()), &t)
	}
	e.Steps, e.Policy, e.Scopes = t.Steps, t.Policy, rec.ScopesAccepted
	if den == nil {
		rec.Decision = audit.Forwarded
	} else {
		// The door writes the refusal as the client would get it.
		w := httptest.NewRecorder()
		door.Refuse(w, govern.Refused(den, &rec), &rec)
		e.Reason = den.Reason
	}
	e.Decision, e.PolicyRule = rec.Decision, rec.PolicyRule
	e.LimitRule, e.LimitDryRun = rec.LimitRule, rec.LimitDryRun
	e.Status, e.GRPCStatus, e.HasGRPCStatus = rec.Status, rec.GRPCStatus, rec.HasGRPCStatus
	return e
}

// explainBatch explains each embedded request of a batch as if sent alone;
// the batch's answer is its first refusal.
func (h *Handler) explainBatch(r *http.Request, rd *reading.Reading, id identity) explanation {
	e := explanation{Door: govern.ProtocolBatch, Governed: true, Decision: audit.Forwarded}
	raw, problem := wire.ReadBody(r, wire.MaxBytes)
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if problem == nil && !reading.MayHoldCancel(raw) {
		return explanation{Note: "a batch whose bytes hold no cancel under any reading: forwarded unparsed and unrecorded"}
	}
	if rd.Refusal != reading.NoRefusal {
		e = h.explainReading(r, rd, id)
		e.Door = govern.ProtocolBatch
		return e
	}
	var parts []wire.Part
	if problem == nil {
		parts, problem = wire.Parse(raw, rd.ContentType, wire.MaxParts)
	}
	if problem != nil {
		e.Decision, e.Status, e.Reason = audit.InvalidRequest, http.StatusBadRequest, "INVALID_BATCH"
		e.Steps = []govern.Step{{Check: "batch", Outcome: problem.Description}}
		return e
	}
	for _, p := range parts {
		alone := p.AsAlone(r)
		rd := h.recognizer.reader.ReadPart(alone, p.Request.Host, r.Host, r.URL.EscapedPath())
		pe := h.explainReading(alone, &rd, id)
		if !pe.Governed {
			continue
		}
		e.Parts = append(e.Parts, pe)
		if !pe.forwards() && e.Decision == audit.Forwarded {
			e.Decision, e.Status, e.Reason, e.PolicyRule = pe.Decision, pe.Status, pe.Reason, pe.PolicyRule
		}
	}
	if len(e.Parts) == 0 {
		return explanation{Note: "a batch without a cancel: passes untouched and unrecorded"}
	}
	return e
}

// opaqueVerifier names the verifier the config sends opaque tokens to: what
// request.auth.verifier says for a given identity.
func (h *Handler) opaqueVerifier() string {
	if h.Introspection != nil {
		return credential.VerifierIntrospection
	}
	return credential.VerifierTokenInfo
}

func describe(id identity) string {
	p := id.Principal
	if p == "" {
		p = "no principal"
	}
	if len(id.Scopes) == 0 {
		return p + ", no scopes"
	}
	return p + ", scopes " + strings.Join(id.Scopes, " ")
}
