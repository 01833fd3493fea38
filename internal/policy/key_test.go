package policy

import (
	"strings"
	"testing"
)

func TestKeysYieldStringsOrFailClosed(t *testing.T) {
	in := with(func(in *Input) {
		in.Claims = map[string]any{"hd": "example.com", "n": 3.0}
		in.Name = "operations/export-7"
	})
	for _, tc := range []struct{ expr, want, err string }{
		{DefaultKey, in.Principal, ""},
		{"resource.service", in.Service, ""},
		{"string(request.auth.claims['hd']) + '/' + resource.name.split('/')[1]", "example.com/export-7", ""},
		{"string(request.auth.claims['missing'])", "", "no such key"},
		{"string(request.auth.claims.n)", "", ""}, // a double converts
	} {
		k, err := CompileKey(tc.expr)
		if err != nil {
			t.Fatalf("CompileKey(%q): %v", tc.expr, err)
		}
		got, err := k.Eval(in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.expr, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case tc.want != "" && got != tc.want:
			t.Errorf("%s = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestCompileKeyRefusesWhatIsNotAString(t *testing.T) {
	for expr, want := range map[string]string{
		"request.auth.scopes":    "list(string)",
		"request.auth.claims.hd": "dyn",
		"request.time":           "Timestamp",
		"request.auth.princpal":  "undefined field 'princpal'",
		"  ":                     "empty",
		"resource.name +":        "column",
	} {
		if _, err := CompileKey(expr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CompileKey(%q) = %v, want an error containing %q", expr, err, want)
		}
	}
}

// A key naming one attribute is read without an evaluation; it must say
// what the evaluation would.
func TestPlainKeysReadWhatTheEvaluationWould(t *testing.T) {
	in := with(func(in *Input) { in.ClientIP = "192.0.2.7"; in.Verifier = "jwt" })
	for expr := range plainKeys {
		k, err := CompileKey(expr)
		if err != nil {
			t.Fatalf("CompileKey(%q): %v", expr, err)
		}
		fast, _ := k.Eval(in)
		k.plain = nil
		slow, err := k.Eval(in)
		if err != nil || fast != slow {
			t.Errorf("%s: read %q, evaluated %q (%v)", expr, fast, slow, err)
		}
	}
	// Beyond the policy's bounds, both fail.
	long := with(func(in *Input) { in.Principal = strings.Repeat("a", MaxStringLength+1) })
	k, _ := CompileKey(DefaultKey)
	if _, err := k.Eval(long); err == nil {
		t.Error("a principal beyond the bounds was read as a key")
	}
	k.plain = nil
	if _, err := k.Eval(long); err == nil {
		t.Error("a principal beyond the bounds was evaluated as a key")
	}
}
