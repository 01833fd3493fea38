package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Query selects records of journal files, as ausearch does: every filter
// set must hold. Exact filters compare the whole value; Reason is a
// substring.
type Query struct {
	Since, Until time.Time // on the record's ts, inclusive; zero: unbounded
	Principal    string
	Service      string
	Method       string
	Operation    string
	Decision     string
	AuditID      string
	Reason       string
	// Stage is "completed" (the default when empty), "received" or "all".
	Stage string
}

// QueryRecord is what a query reads of a record line, in either format.
type QueryRecord struct {
	TS          time.Time
	AuditID     string
	Stage       string
	Decision    string
	Status      int
	Service     string
	Method      string
	Operation   string
	Principal   string
	Reason      string
	UserProject string
}

// queryLine is a record line's fields in either format: flat in
// FormatJSON, in the protoPayload in FormatCloudAuditLog.
type queryLine struct {
	TS           float64 `json:"ts"`
	AuditID      string  `json:"audit_id"`
	Stage        string  `json:"stage"`
	Decision     string  `json:"decision"`
	Status       int     `json:"status"`
	Service      string  `json:"service"`
	Method       string  `json:"method"`
	Operation    string  `json:"operation"`
	Principal    string  `json:"principal"`
	Reason       string  `json:"reason"`
	UserProject  string  `json:"user_project"`
	ProtoPayload *struct {
		ServiceName        string `json:"serviceName"`
		ResourceName       string `json:"resourceName"`
		AuthenticationInfo struct {
			PrincipalEmail string `json:"principalEmail"`
		} `json:"authenticationInfo"`
		RequestMetadata struct {
			RequestAttributes struct {
				Reason string `json:"reason"`
			} `json:"requestAttributes"`
		} `json:"requestMetadata"`
		Metadata struct {
			Decision    string  `json:"decision"`
			Method      string  `json:"method"`
			Status      float64 `json:"status"`
			UserProject string  `json:"user_project"`
		} `json:"metadata"`
	} `json:"protoPayload"`
}

// Validate checks the stage.
func (q *Query) Validate() error {
	switch q.Stage {
	case "", string(StageCompleted), string(StageReceived), "all":
		return nil
	}
	return fmt.Errorf("stage must be received, completed or all, not %q", q.Stage)
}

// plain reports whether s is written as itself inside a JSON string, so
// that a line holding the value holds its bytes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// mayMatch is the cheap test before decoding: a line without the bytes of
// an exact filter's value cannot match.
func (q *Query) mayMatch(line []byte) bool {
	if bytes.HasPrefix(line, []byte(checkpointPrefix)) {
		return false
	}
	for _, v := range [...]string{q.AuditID, q.Principal, q.Operation, q.Service, q.Method, q.Decision} {
		if v != "" && plain(v) && !bytes.Contains(line, []byte(v)) {
			return false
		}
	}
	stage := q.Stage
	if stage == "" {
		stage = string(StageCompleted)
	}
	return stage == "all" || bytes.Contains(line, []byte(stage))
}

// Match reads a journal line and reports whether it is a record the query
// selects. Checkpoint lines and lines that are not records never match.
func (q *Query) Match(line []byte) (QueryRecord, bool) {
	if !q.mayMatch(line) {
		return QueryRecord{}, false
	}
	l, err := readQueryLine(line)
	if err != nil || l.AuditID == "" {
		return QueryRecord{}, false
	}
	sec, frac := math.Modf(l.TS)
	r := QueryRecord{
		TS: time.Unix(int64(sec), int64(frac*1e9)).UTC(), AuditID: l.AuditID, Stage: l.Stage,
		Decision: l.Decision, Status: l.Status, Service: l.Service, Method: l.Method,
		Operation: l.Operation, Principal: l.Principal, Reason: l.Reason, UserProject: l.UserProject,
	}
	if p := l.ProtoPayload; p != nil {
		r.Service, r.Operation, r.Principal = p.ServiceName, p.ResourceName, p.AuthenticationInfo.PrincipalEmail
		r.Decision, r.Method, r.Status = p.Metadata.Decision, p.Metadata.Method, int(p.Metadata.Status)
		r.Reason, r.UserProject = p.RequestMetadata.RequestAttributes.Reason, p.Metadata.UserProject
	}
	stage := q.Stage
	if stage == "" {
		stage = string(StageCompleted)
	}
	ok := (stage == "all" || r.Stage == stage) &&
		(q.Since.IsZero() || !r.TS.Before(q.Since)) &&
		(q.Until.IsZero() || !r.TS.After(q.Until)) &&
		(q.Principal == "" || r.Principal == q.Principal) &&
		(q.Service == "" || r.Service == q.Service) &&
		(q.Method == "" || r.Method == q.Method) &&
		(q.Operation == "" || r.Operation == q.Operation) &&
		(q.Decision == "" || r.Decision == q.Decision) &&
		(q.AuditID == "" || r.AuditID == q.AuditID) &&
		(q.Reason == "" || strings.Contains(r.Reason, q.Reason))
	return r, ok
}

// QueryFiles streams the files and calls fn with each line the query
// selects (without its newline) and what it read of it.
func QueryFiles(files []string, q *Query, fn func(line []byte, r *QueryRecord) error) error {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = QueryReader(f, q, fn)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// QueryReader is QueryFiles over one reader.
func QueryReader(r io.Reader, q *Query, fn func(line []byte, r *QueryRecord) error) error {
	var ferr error
	err := eachLine(r, func(_ int64, line []byte, _ bool) bool {
		rec, ok := q.Match(line)
		if ok {
			ferr = fn(line, &rec)
		}
		return ferr == nil
	})
	if err == nil {
		err = ferr
	}
	return err
}

// readQueryLine reads a record line: the flat format's top-level fields
// by scanning (most lines), a line with a protoPayload with encoding/json.
func readQueryLine(line []byte) (queryLine, error) {
	var l queryLine
	cloud, bad := false, false
	err := scanTop(line, func(key, val []byte) bool {
		var to *string
		switch string(key) {
		case `"protoPayload"`:
			cloud = true
			return false
		case `"ts"`:
			ts, err := strconv.ParseFloat(string(val), 64)
			l.TS, bad = ts, err != nil
			return !bad
		case `"status"`:
			n, err := strconv.Atoi(string(val))
			l.Status, bad = n, err != nil
			return !bad
		case `"audit_id"`:
			to = &l.AuditID
		case `"stage"`:
			to = &l.Stage
		case `"decision"`:
			to = &l.Decision
		case `"service"`:
			to = &l.Service
		case `"method"`:
			to = &l.Method
		case `"operation"`:
			to = &l.Operation
		case `"principal"`:
			to = &l.Principal
		case `"reason"`:
			to = &l.Reason
		case `"user_project"`:
			to = &l.UserProject
		default:
			return true
		}
		s, ok := stringValue(val)
		*to, bad = s, !ok
		return ok
	})
	if err == nil && bad {
		err = errNotObject
	}
	if cloud {
		l = queryLine{}
		err = json.Unmarshal(line, &l)
	}
	return l, err
}
