// Command grpc-cancel cancels one long-running operation over gRPC with
// Google's own client library (cloud.google.com/go/longrunning), through a
// gateway that serves cleartext HTTP/2 (h2c), such as the demo in
// Caddyfile.example:
//
//	go run ./cmd/grpc-cancel -token ya29.demo-vault operations/export-1
//
// It prints the outcome: OK, or the gRPC code and the ErrorInfo reason
// that apierror.FromError reads from the gateway's refusal. Exit status 1
// when the cancel was refused.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	lroauto "cloud.google.com/go/longrunning/autogen"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// bearer sends the token as the authorization metadata over a cleartext
// connection, which grpc-go's oauth credentials refuse to do: the demo
// gateway listens on loopback only.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

func main() {
	gateway := flag.String("gateway", "127.0.0.1:8080", "the gateway's address (cleartext HTTP/2)")
	host := flag.String("host", "vault.googleapis.com", "the API host, sent as :authority")
	token := flag.String("token", "", "the OAuth access token (none when empty)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: grpc-cancel [flags] <operation name>")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(*host),
	}
	if *token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(*token)))
	}
	conn, err := grpc.NewClient(*gateway, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-cancel:", err)
		os.Exit(2)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := lroauto.NewOperationsClient(ctx, option.WithGRPCConn(conn))
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-cancel:", err)
		os.Exit(2)
	}
	err = client.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: flag.Arg(0)})
	if err == nil {
		fmt.Println("OK")
		return
	}
	st, _ := status.FromError(err)
	fmt.Printf("%s: %s\n", st.Code(), st.Message())
	if ae, ok := apierror.FromError(err); ok && ae.Reason() != "" {
		fmt.Printf("reason: %s (domain %s)\n", ae.Reason(), ae.Domain())
	}
	os.Exit(1)
}
