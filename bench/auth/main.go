// Command auth is the load bench's external authorization service, the
// sub-request target of Caddy's forward_auth and nginx's auth_request: the
// smallest thing that checks a bearer token the way a gateway with a warm
// token cache would, so that the bench compares lro_cancel with the usual
// "proxy + auth service" shape at its cheapest.
//
// GET /check answers 200 with the principal in X-Auth-User when the
// request's bearer token is in its in-memory map (only "ya29.bench"), and
// 401 otherwise. It listens on a port of 127.0.0.1 chosen by the kernel,
// prints it on one line ("auth=PORT") for bench/run.sh to read, and serves
// until it is killed.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
)

// principals is the token cache: token to principal.
var principals = map[string]string{
	"ya29.bench": "bench-runner@ops.example.com",
}

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("auth: listening: %v", err)
	}
	fmt.Printf("auth=%d\n", l.Addr().(*net.TCPAddr).Port)
	log.Fatalf("auth: serving: %v", http.Serve(l, http.HandlerFunc(check)))
}

// check answers whether the request's bearer token is known.
func check(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	principal, known := principals[token]
	if !ok || !known || r.URL.Path != "/check" {
		w.Header()["Content-Length"] = []string{"0"}
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h := w.Header()
	h["X-Auth-User"] = []string{principal}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusOK)
}
