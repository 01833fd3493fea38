package credential

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func FuzzExtract(f *testing.F) {
	seeds := []struct{ auth1, auth2, query string }{
		{"Bearer ya29.tok", "", ""},
		{"bearer   ya29.tok", "Bearer ya29.tok", "alt=json"},
		{"", "", "access_token=ya29.tok&fields=a%2Cb+c"},
		{"Basic dTpw", "", "oauth_token=a&bearer_token=a&access%5Ftoken=a"},
		{"Bearer A", "", "access_token=B"},
		{"", "", "x=1;access_token=t&y=%zz&&key=k"},
		{"", "", "access_token=%zz"},
		{"", "", "access_token=a%0Ab"},
		{"Bearer", "", "=&=&access_token"},
	}
	for _, s := range seeds {
		f.Add(s.auth1, s.auth2, s.query)
	}
	f.Fuzz(func(t *testing.T, auth1, auth2, query string) {
		r := &http.Request{
			Method:     http.MethodPost,
			Header:     http.Header{},
			URL:        &url.URL{Path: cancelPath, RawQuery: query},
			RequestURI: cancelPath + "?" + query,
		}
		for _, a := range []string{auth1, auth2} {
			if a != "" {
				r.Header.Add("Authorization", a)
			}
		}
		c, err := Extract(r)
		if err != nil {
			if c.Token != "" {
				t.Fatalf("Extract returned token %q with error %v", c.Token, err)
			}
			return
		}
		if c.Token == "" || !visibleASCII(c.Token) {
			t.Fatalf("Extract returned token %q without error", c.Token)
		}
		MoveToHeader(r, c.Token)
		if got := r.Header.Get("Authorization"); got != "Bearer "+c.Token {
			t.Fatalf("Authorization = %q after MoveToHeader", got)
		}
		_, uriQuery, _ := strings.Cut(r.RequestURI, "?")
		for _, q := range []string{r.URL.RawQuery, uriQuery} {
			// Go's own parser, also splitting on ';', is the independent judge.
			for _, view := range []string{q, strings.ReplaceAll(q, ";", "&")} {
				values, _ := url.ParseQuery(view)
				for _, p := range tokenParams {
					if values.Has(p) {
						t.Fatalf("query %q still holds %s", q, p)
					}
				}
			}
			if !isSubsequence(strings.Split(q, "&"), strings.Split(query, "&")) {
				t.Fatalf("query %q is not the pairs of %q minus some", q, query)
			}
		}
	})
}

// isSubsequence reports whether sub is seq with some elements left out;
// the empty query is a subsequence of any.
func isSubsequence(sub, seq []string) bool {
	if slices.Equal(sub, []string{""}) {
		return true
	}
	for _, s := range sub {
		i := slices.Index(seq, s)
		if i < 0 {
			return false
		}
		seq = seq[i+1:]
	}
	return true
}
