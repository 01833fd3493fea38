package govern

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The status a forwarded cancel's record gets is the final status the
// client got, however the next handler wrote it.
func TestExchangeForwardRecordsTheFinalStatus(t *testing.T) {
	for _, tc := range []struct {
		name       string
		next       caddyhttp.HandlerFunc
		wantStatus int // the record's and the client's
		wantUp     int // the record's upstream status
		wantBody   string
	}{
		{"WriteHeader", func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusAccepted)
			return nil
		}, http.StatusAccepted, http.StatusAccepted, ""},
		{"Write without a status is 200", func(w http.ResponseWriter, _ *http.Request) error {
			_, err := w.Write([]byte("{}"))
			return err
		}, http.StatusOK, http.StatusOK, "{}"},
		{"io.Copy into the writer (ReadFrom) is 200", func(w http.ResponseWriter, _ *http.Request) error {
			if _, ok := w.(io.ReaderFrom); !ok {
				return errors.New("the writer has no ReadFrom")
			}
			_, err := io.Copy(w, strings.NewReader("{}"))
			return err
		}, http.StatusOK, http.StatusOK, "{}"},
		{"an informational answer is not the final one", func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusConflict)
			return nil
		}, http.StatusConflict, http.StatusConflict, ""},
		{"a second final status is dropped", func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusOK)
			return nil
		}, http.StatusNotFound, http.StatusNotFound, ""},
		{"a handler error is the error's status, no upstream status", func(http.ResponseWriter, *http.Request) error {
			return caddyhttp.Error(http.StatusBadGateway, errors.New("upstream down"))
		}, http.StatusBadGateway, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			ex := &Exchange{}
			err := ex.Forward(w, httptest.NewRequest("POST", "/", nil), tc.next)
			if tc.wantUp == 0 && err == nil {
				t.Fatal("the handler's error was not returned")
			}
			if ex.Record.Status != tc.wantStatus || ex.Record.UpstreamStatus != tc.wantUp {
				t.Errorf("record status %d, upstream %d; want %d, %d", ex.Record.Status, ex.Record.UpstreamStatus, tc.wantStatus, tc.wantUp)
			}
			// httptest's recorder keeps a 1xx as its Code.
			if tc.wantUp != 0 && !strings.HasPrefix(tc.name, "an informational") && (w.Code != tc.wantStatus || w.Body.String() != tc.wantBody) {
				t.Errorf("client got %d %q, want %d %q", w.Code, w.Body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

// The writer unwraps to the client's, so http.ResponseController (which
// reverse_proxy flushes through) reaches it.
func TestStatusWriterUnwraps(t *testing.T) {
	w := httptest.NewRecorder()
	ex := &Exchange{}
	_ = ex.Forward(w, httptest.NewRequest("POST", "/", nil), caddyhttp.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) error {
		if err := http.NewResponseController(rw).Flush(); err != nil {
			t.Errorf("Flush through the writer: %v", err)
		}
		return nil
	}))
	if !w.Flushed || ex.Record.Status != http.StatusOK {
		t.Errorf("flushed %v, record status %d; want a flush and 200", w.Flushed, ex.Record.Status)
	}
}
