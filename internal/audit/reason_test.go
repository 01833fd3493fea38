package audit

import (
	"encoding/json"
	"testing"
	"time"
)

// The caller's reason and quota project are recorded in both formats, the
// reason where Google's own audit logs put it, and a query finds them.
func TestTheRequestReasonIsRecordedWhereGooglePutsIt(t *testing.T) {
	r := completed("why-1")
	r.Decision, r.Status = DeniedByPolicy, 403
	r.Reason, r.UserProject = "CHG-1234: stuck job", "prod-billing"

	var flat map[string]any
	if err := json.Unmarshal([]byte(encodeLine(t, r)), &flat); err != nil {
		t.Fatal(err)
	}
	if flat["reason"] != r.Reason || flat["user_project"] != r.UserProject {
		t.Fatalf("json record: reason %v, user_project %v", flat["reason"], flat["user_project"])
	}

	line := cloudLine(t, r)
	_, al := cloudEntryOf(t, line)
	if got := al.GetRequestMetadata().GetRequestAttributes().GetReason(); got != r.Reason {
		t.Fatalf("requestMetadata.requestAttributes.reason = %q, want %q", got, r.Reason)
	}
	md := al.GetMetadata().GetFields()
	if md["user_project"].GetStringValue() != r.UserProject || md["reason"] != nil {
		t.Fatalf("metadata = %v, want user_project and no second reason", md)
	}

	for _, l := range [][]byte{[]byte(encodeLine(t, r)), line} {
		got, ok := (&Query{Reason: "CHG-1234", Decision: "denied_by_policy"}).Match(trimNL(l))
		if !ok || got.Reason != r.Reason || got.UserProject != r.UserProject || got.Principal != r.Principal {
			t.Fatalf("query of %.60s... = %+v, %v", l, got, ok)
		}
	}
}

func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// Query's scanner reads what encoding/json reads, whatever the values hold.
func TestQueryReadsRecordsAsEncodingJSONDoes(t *testing.T) {
	for _, r := range []*Record{
		completed("plain"),
		func() *Record {
			r := completed(`q"uote\back`)
			r.Principal, r.Operation = "ü@exämple.com", "operations/{\"x\":[1,2]}"
			r.Reason, r.UserProject = "CHG-1\n\ttab \u2028 \\u0041", "p"
			return r
		}(),
	} {
		line := trimNL([]byte(encodeLine(t, r)))
		got, err := readQueryLine(line)
		if err != nil {
			t.Fatal(err)
		}
		var want queryLine
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("scanned %+v\nencoding/json %+v", got, want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"audit_id":}`, `{"audit_id":"x"`, `{"ts":"soon","audit_id":"x"}`, `{"a":{"b":"}"}`} {
		if _, err := readQueryLine([]byte(bad)); err == nil {
			t.Errorf("readQueryLine(%q) read a record", bad)
		}
	}
}

// FuzzQueryLine: query's scanner answers every line, never panics.
func FuzzQueryLine(f *testing.F) {
	f.Add([]byte(`{"level":"info","ts":1.5,"audit_id":"a","stage":"completed","status":200,"protoPayload":{"x":[1,{"y":"\""}]}}`))
	f.Add([]byte(`{"audit_id":"\u00e9\\","nested":[[[{}]]]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		_, _ = (&Query{Reason: "x", Since: time.Unix(1, 0)}).Match(line)
		_, _ = readQueryLine(line)
	})
}
