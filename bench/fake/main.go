// Command fake stands in, on loopback only, for what the load bench's
// gateways talk to: an upstream API server that answers every request 200
// with an empty JSON message, Google's gRPC front end, which answers every
// google.longrunning.Operations/CancelOperation with an empty message, and
// Google's tokeninfo endpoint, which vouches for every token with the Vault
// scope.
//
// It listens on three ports of 127.0.0.1 chosen by the kernel, prints them
// on one line ("upstream=PORT tokeninfo=PORT grpc=PORT") for bench/run.sh to
// read, and serves until it is killed. GET /calls on the tokeninfo port
// answers how many tokens were verified, so the bench can show the token
// cache at work, and GET /conns how many connections were opened to it. The upstream reads every request body to its end and says
// how many bytes it read in the Fake-Body-Bytes header, so the bench can see
// that a large batch reached it whole.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// tokeninfoAnswer is what Google's tokeninfo returns for a valid token that
// holds the scope vault.operations.cancel requires. The principal is on a
// domain the bench's policy (bench/run.sh) lets cancel Vault operations.
var tokeninfoAnswer = []byte(`{"azp":"bench","aud":"bench","sub":"1","email":"bench-runner@ops.example.com",` +
	`"email_verified":"true","scope":"https://www.googleapis.com/auth/ediscovery","expires_in":"3599"}`)

func main() {
	var ls [3]net.Listener
	for i, name := range []string{"upstream", "tokeninfo", "grpc"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatalf("fake: listening for %s: %v", name, err)
		}
		ls[i] = l
	}
	port := func(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }
	fmt.Printf("upstream=%d tokeninfo=%d grpc=%d\n", port(ls[0]), port(ls[1]), port(ls[2]))

	// tokeninfo is as cheap as it can be: no routing, no parsing of the
	// form, one counter; the memory phase sends it 100,000 tokens.
	var verified, conns atomic.Int64
	tokeninfo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/calls" {
			fmt.Fprint(w, strconv.FormatInt(verified.Load(), 10))
			return
		}
		if r.Method == http.MethodGet && r.URL.Path == "/conns" {
			fmt.Fprint(w, strconv.FormatInt(conns.Load(), 10))
			return
		}
		verified.Add(1)
		h := w.Header()
		h["Content-Type"] = []string{"application/json; charset=UTF-8"}
		h["Content-Length"] = []string{strconv.Itoa(len(tokeninfoAnswer))}
		_, _ = w.Write(tokeninfoAnswer)
	})

	gs := grpc.NewServer()
	longrunningpb.RegisterOperationsServer(gs, operations{})

	errs := make(chan error, 3)
	go func() { errs <- http.Serve(ls[0], http.HandlerFunc(answerEmpty)) }()
	// Connections are counted too: a verifier that keeps them alive opens
	// few for many calls.
	ts := &http.Server{Handler: tokeninfo, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	go func() { errs <- ts.Serve(ls[1]) }()
	go func() { errs <- gs.Serve(ls[2]) }()
	log.Fatalf("fake: serving: %v", <-errs)
}

// answerEmpty is the upstream: every request succeeds with an empty message,
// as a cancel does at Google, once its body has been read.
func answerEmpty(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{"2"}
	h["Fake-Body-Bytes"] = []string{strconv.FormatInt(n, 10)}
	_, _ = io.WriteString(w, "{}")
}

// operations is Google's gRPC front end for google.longrunning.Operations:
// every cancel succeeds; the other methods are unimplemented.
type operations struct {
	longrunningpb.UnimplementedOperationsServer
}

func (operations) CancelOperation(context.Context, *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
