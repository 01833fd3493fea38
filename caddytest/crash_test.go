package integration

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A gateway killed (SIGKILL) while the upstream holds a cancel leaves its
// received record without a completed one; started again on the same
// journal, it completes it as interrupted, once.
func TestCrashedGatewayCompletesTheInterruptedCancelWhenRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the binary")
	}
	bin := buildCaddy(t)
	dir := t.TempDir()
	journal := filepath.Join(dir, "journal")

	// The upstream holds every cancel until the test ends or the gateway's
	// connection goes away.
	held := make(chan string, 1)
	stop := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case held <- r.URL.Path:
		default:
		}
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(upstream.Close)
	t.Cleanup(func() { close(stop) }) // runs first: Close waits for held requests
	tokeninfo := newFakeTokenInfo(t, defaultGrants())

	port := freePort(t)
	caddyfile := filepath.Join(dir, "Caddyfile")
	config := fmt.Sprintf(`{
	admin off
	http_port %[1]d
	default_bind 127.0.0.1
	auto_https off
	skip_install_trust
	grace_period 1ns
}

http://:%[1]d {
	lro_cancel {
		tokeninfo %[2]s
		audit {
			journal %[3]s
		}
	}
	reverse_proxy %[4]s
}
`, port, tokeninfo.url(), journal, strings.TrimPrefix(upstream.URL, "http://"))
	if err := os.WriteFile(caddyfile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	g := startCaddy(t, bin, dir, caddyfile, port, "first")
	sent := make(chan error, 1)
	go func() {
		req, err := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/v1/operations/crash-1:cancel", port), nil)
		if err != nil {
			sent <- err
			return
		}
		req.Host = "vault.googleapis.com"
		req.Header.Set("Authorization", "Bearer "+tokenVault)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("the held cancel was answered %s", resp.Status)
		}
		sent <- err
	}()
	select {
	case path := <-held:
		if path != "/v1/operations/crash-1:cancel" {
			t.Fatalf("the upstream holds %s", path)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the cancel never reached the upstream; caddy logged:\n%s", g.log())
	}
	// Forwarded, so its received record is on disk.
	recs := readRecordFile(t, journal)
	if len(recs) != 1 || recs[0].str("stage") != "received" || recs[0].str("audit_id") == "" {
		t.Fatalf("with the cancel held the journal holds %v, want its received record alone", recs)
	}
	id := recs[0].str("audit_id")

	g.kill()
	select {
	case err := <-sent:
		if err == nil {
			t.Error("the client got no error from a killed gateway")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the client never saw the gateway die")
	}

	for _, run := range []string{"restarted", "restarted again"} {
		g := startCaddy(t, bin, dir, caddyfile, port, run)
		// The journal is opened, and repaired, before the server listens.
		recs := readRecordFile(t, journal)
		var completed []record
		for _, r := range recs {
			if r.str("stage") == "completed" {
				completed = append(completed, r)
			}
		}
		if len(recs) != 2 || len(completed) != 1 {
			t.Fatalf("%s: the journal holds %v, want the received record and one completed record", run, recs)
		}
		c := completed[0]
		if c.str("audit_id") != id || c.str("decision") != "interrupted" {
			t.Errorf("%s: completed record %v, want audit_id %s and decision interrupted", run, c, id)
		}
		if _, ok := c["status"]; ok {
			t.Errorf("%s: the interrupted record has status %v, want none", run, c["status"])
		}
		for _, k := range []string{"service", "method", "operation", "client_ip", "user_agent", "protocol"} {
			if c.str(k) != recs[0].str(k) {
				t.Errorf("%s: interrupted record has %s %q, its received record %q", run, k, c.str(k), recs[0].str(k))
			}
		}
		logged := strings.Contains(g.log(), `"interrupted":1`)
		if want := run == "restarted"; logged != want {
			t.Errorf("%s: caddy logged the interrupted count: %v, want %v; caddy logged:\n%s", run, logged, want, g.log())
		}
		g.kill()
	}
}

// caddyProcess is the built binary running a config.
type caddyProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// startCaddy runs `caddy run` on the Caddyfile, with its home and config
// directories in dir, and returns once it accepts connections on port.
func startCaddy(t *testing.T, bin, dir, caddyfile string, port int, name string) *caddyProcess {
	t.Helper()
	logPath := filepath.Join(dir, "caddy-"+strings.ReplaceAll(name, " ", "-")+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &caddyProcess{t: t, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.kill)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("caddy (%s) exited before listening:\n%s", name, p.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy (%s) not listening on %d after 30s:\n%s", name, port, p.log())
		}
	}
}

// kill sends SIGKILL, as a crash would, and waits for the process to go.
func (p *caddyProcess) kill() {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Errorf("caddy did not exit after SIGKILL")
	}
}

func (p *caddyProcess) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// freePort is a loopback TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
