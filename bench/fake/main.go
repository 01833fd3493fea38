// Command fake stands in, on loopback only, for what the load bench's
// gateways talk to: an upstream API server that answers every request 200
// with an empty JSON message, and Google's tokeninfo endpoint, which vouches
// for every token with the Vault scope.
//
// It listens on two ports of 127.0.0.1 chosen by the kernel, prints them on
// one line ("upstream=PORT tokeninfo=PORT") for bench/run.sh to read, and
// serves until it is killed. GET /calls on the tokeninfo port answers how
// many tokens were verified, so the bench can show the token cache at work.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// tokeninfoAnswer is what Google's tokeninfo returns for a valid token that
// holds the scope vault.operations.cancel requires.
const tokeninfoAnswer = `{"azp":"bench","aud":"bench","sub":"1","email":"a@b.c","email_verified":"true",` +
	`"scope":"https://www.googleapis.com/auth/ediscovery","expires_in":"3599"}`

func main() {
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("fake: listening for the upstream: %v", err)
	}
	tokeninfo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("fake: listening for tokeninfo: %v", err)
	}
	fmt.Printf("upstream=%d tokeninfo=%d\n",
		upstream.Addr().(*net.TCPAddr).Port, tokeninfo.Addr().(*net.TCPAddr).Port)

	var verified atomic.Int64
	ti := http.NewServeMux()
	ti.HandleFunc("POST /tokeninfo", func(w http.ResponseWriter, _ *http.Request) {
		verified.Add(1)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		fmt.Fprint(w, tokeninfoAnswer)
	})
	ti.HandleFunc("GET /calls", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, strconv.FormatInt(verified.Load(), 10))
	})

	errs := make(chan error, 2)
	go func() { errs <- http.Serve(upstream, http.HandlerFunc(answerEmpty)) }()
	go func() { errs <- http.Serve(tokeninfo, ti) }()
	log.Fatalf("fake: serving: %v", <-errs)
}

// answerEmpty is the upstream: every request succeeds with an empty message,
// as a cancel does at Google.
func answerEmpty(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	fmt.Fprint(w, "{}")
}
