package govern

import (
	"net/http"
	"net/url"
	"strings"
)

// Google's system parameters that say why a call is made and who pays for
// it, each as a header (gRPC metadata arrives as the same header; the
// names are canonical, as the request's header map holds them) and a
// query parameter.
const (
	reasonHeader      = "X-Goog-Request-Reason"
	reasonParam       = "$requestReason"
	userProjectHeader = "X-Goog-User-Project"
	userProjectParam  = "$userProject"
)

// Caller returns the request reason and the quota project the caller
// named, from the headers and the query (both separators, keys decoded as
// Google decodes them: %24requestReason is $requestReason); conflict is
// set when either is given more than once with different values.
func Caller(r *http.Request) (reason, userProject string, conflict bool) {
	var rc, uc bool
	for _, v := range r.Header[reasonHeader] {
		reason, rc = agree(reason, v, rc)
	}
	for _, v := range r.Header[userProjectHeader] {
		userProject, uc = agree(userProject, v, uc)
	}
	// Most queries name neither: skip splitting them.
	if q := r.URL.RawQuery; strings.Contains(q, "equestReason") || strings.Contains(q, "serProject") {
		for pair := range strings.FieldsFuncSeq(r.URL.RawQuery, func(c rune) bool { return c == '&' || c == ';' }) {
			k, v, _ := strings.Cut(pair, "=")
			k, kerr := url.QueryUnescape(k)
			v, verr := url.QueryUnescape(v)
			if kerr != nil || verr != nil {
				continue // the door refuses an undecodable query
			}
			switch k {
			case reasonParam:
				reason, rc = agree(reason, v, rc)
			case userProjectParam:
				userProject, uc = agree(userProject, v, uc)
			}
		}
	}
	return reason, userProject, rc || uc
}

// agree adds value v to what is known (have, or nothing yet when have is
// ""), and reports a conflict: one already found, or two different values.
func agree(have, v string, conflict bool) (string, bool) {
	switch {
	case have == "":
		return v, conflict
	case have != v:
		return have, true
	}
	return have, conflict
}

// ReadCaller records the request's reason and quota project on the
// cancel, and refuses it as ambiguous when either is given twice with
// different values (unless the door refuses it already).
func (x *Cancel) ReadCaller(r *http.Request) {
	var conflict bool
	x.Reason, x.UserProject, conflict = Caller(r)
	if conflict && x.Refusal == nil {
		x.Refusal = AmbiguousRequest("The request reason or the user project is given twice with different values.")
	}
}
