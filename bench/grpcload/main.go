// Command grpcload is the load bench's gRPC load generator (wrk for
// google.longrunning): for a given time, workers call
// google.longrunning.Operations/CancelOperation through a gateway that
// serves cleartext HTTP/2 (h2c), as Google's client libraries do, with the
// bearer token as authorization metadata and the API host as :authority.
//
//	grpcload -addr 127.0.0.1:PORT -c 32 -conns 2 -d 5s
//
// The workers share -conns connections round-robin. At the end it prints
// one machine-readable line, as bench/wrk.lua does for wrk:
//
//	BENCH requests=N duration_us=N p50_us=N p99_us=N errors=N
//
// requests counts the calls that completed OK, errors the others (the
// first error goes to standard error). Exit status 1 when no call
// succeeded, 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// bearer sends the token as the authorization metadata over a cleartext
// connection, which grpc-go's oauth credentials refuse to do.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// worker is what one worker measured.
type worker struct {
	latencies []time.Duration // of the calls that succeeded
	errors    int
	firstErr  error
}

func main() {
	addr := flag.String("addr", "", "the gateway's address, host:port (cleartext HTTP/2)")
	authority := flag.String("authority", "vault.googleapis.com", "the API host, sent as :authority")
	token := flag.String("token", "ya29.bench", "the OAuth access token")
	name := flag.String("name", "operations/bench-1", "the operation to cancel")
	workers := flag.Int("c", 32, "concurrent workers (calls in flight)")
	conns := flag.Int("conns", 2, "connections the workers share")
	d := flag.Duration("d", 5*time.Second, "how long to send calls")
	timeout := flag.Duration("timeout", 5*time.Second, "the deadline of each call")
	flag.Parse()
	if *addr == "" || flag.NArg() != 0 || *workers < 1 || *conns < 1 || *d <= 0 || *d > time.Hour || *timeout <= 0 {
		flag.Usage()
		os.Exit(2)
	}

	clients := make([]longrunningpb.OperationsClient, *conns)
	for i := range clients {
		// Each connection its own: grpc-go shares nothing between clients.
		cc, err := grpc.NewClient(*addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithAuthority(*authority),
			grpc.WithPerRPCCredentials(bearer(*token)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "grpcload:", err)
			os.Exit(2)
		}
		defer cc.Close()
		cc.Connect()
		clients[i] = longrunningpb.NewOperationsClient(cc)
	}

	req := &longrunningpb.CancelOperationRequest{Name: *name}
	results := make([]worker, *workers)
	start := time.Now()
	stop := start.Add(*d)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func(w *worker, c longrunningpb.OperationsClient) {
			defer wg.Done()
			for time.Now().Before(stop) {
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				t := time.Now()
				_, err := c.CancelOperation(ctx, req)
				cancel()
				if err != nil {
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.latencies = append(w.latencies, time.Since(t))
			}
		}(&results[i], clients[i%len(clients)])
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	errors := 0
	var firstErr error
	for _, w := range results {
		all = append(all, w.latencies...)
		errors += w.errors
		if firstErr == nil {
			firstErr = w.firstErr
		}
	}
	slices.Sort(all)
	fmt.Printf("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
		len(all), elapsed.Microseconds(), percentile(all, 50).Microseconds(), percentile(all, 99).Microseconds(), errors)
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "grpcload: first error:", firstErr)
	}
	if len(all) == 0 {
		os.Exit(1)
	}
}

// percentile returns the p-th percentile of sorted latencies (nearest
// rank), 0 when there are none.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100 // ceil(n*p/100), the nearest rank
	return sorted[max(i-1, 0)]
}
