// Package redistest runs a real redis-server for tests, as net/http/httptest
// runs a real HTTP server: on a free loopback port, in a temporary
// directory, without persistence, stopped when the test ends.
package redistest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	t    testing.TB
	Addr string
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	// args are added to the server's command line (e.g. "--requirepass", "x").
	args []string
	// tls, when set, makes the server speak TLS only, with this
	// certificate and key.
	tls *[2]string
}

// Start runs redis-server with extra command-line arguments, and fails the
// test when it is not installed (CI installs Debian's redis-server) or does
// not answer within 30s.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	return start(t, nil, args)
}

// StartTLS runs redis-server speaking TLS only (no cleartext port), with
// the given PEM certificate and key, not asking clients for theirs.
func StartTLS(t testing.TB, certFile, keyFile string, args ...string) *Server {
	t.Helper()
	return start(t, &[2]string{certFile, keyFile}, args)
}

func start(t testing.TB, tlsFiles *[2]string, args []string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
	}
	s := &Server{t: t, dir: t.TempDir(), args: args, tls: tlsFiles}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	port := []string{"--port", strconv.Itoa(s.port)}
	if s.tls != nil {
		port = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", s.tls[0], "--tls-key-file", s.tls[1], "--tls-auth-clients", "no"}
	}
	args := append(append(port, "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	), s.args...)
	s.cmd = exec.Command("redis-server", args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if s.ping() {
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server exited before answering:\n%s", log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server does not answer after 30s")
		}
	}
}

// ping reports whether the server is up: a PING answers, or, with a
// password required, asks for it.
func (s *Server) ping() bool {
	opts := &redis.Options{Addr: s.Addr, DialTimeout: time.Second, MaxRetries: -1, DisableIdentity: true}
	if s.tls != nil {
		// Only whether it is up: the tests check the certificate.
		opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := c.Ping(ctx).Err()
	return err == nil || strings.Contains(err.Error(), "NOAUTH")
}

// Kill stops the server with SIGKILL, as a crash would; its data, never
// persisted, is gone.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("redis-server did not exit after SIGKILL")
	}
	s.cmd = nil
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// String names the server in test output.
func (s *Server) String() string { return fmt.Sprintf("redis-server on %s", s.Addr) }
