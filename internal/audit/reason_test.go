package audit

import (
	"encoding/json"
	"testing"
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
