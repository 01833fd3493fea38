package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector is a loopback TCP log collector, as `output net` feeds one.
type collector struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	conns []net.Conn
	done  sync.WaitGroup
}

func startCollector(t *testing.T, addr string) *collector {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{ln: ln}
	c.done.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			c.done.Go(func() {
				sc := bufio.NewScanner(conn)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for sc.Scan() {
					c.mu.Lock()
					c.lines = append(c.lines, sc.Text())
					c.mu.Unlock()
				}
			})
		}
	})
	return c
}

func (c *collector) stop() {
	c.ln.Close()
	c.mu.Lock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.done.Wait()
}

// received counts the completed records whose operation has prefix.
func (c *collector) received(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, `"stage":"completed"`) && strings.Contains(l, `"operation":"operations/`+prefix) {
			n++
		}
	}
	return n
}

// Records leave an instance through Caddy's `output net` writer. This test
// stops the collector and starts it again to show what that costs: records
// written while it is down go to Caddy's standard error, except the first,
// which the kernel accepted into the dead connection and which is lost;
// Caddy redials at most every 10 s, so records keep going to standard
// error until then. The journal holds every record throughout.
func TestNetCollectorOutageLosesOnlyWhatTheREADMESays(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs a real Caddy")
	}
	col := startCollector(t, "127.0.0.1:0")
	addr := col.ln.Addr().String()
	journal := filepath.Join(t.TempDir(), "audit.journal")
	g := startGateway(t, gatewayOptions{
		directive: "audit {\n journal " + journal + "\n}",
		logs:      "log collector {\n output net tcp/" + addr + " {\n soft_start\n }\n format json\n include http.handlers.lro_cancel.audit\n }",
	})
	send := func(prefix string, n int) {
		for i := range n {
			path := fmt.Sprintf("/v1/operations/%s-%d:cancel", prefix, i)
			if resp, _ := g.do(newRequest(t, "POST", apiURL("vault.googleapis.com", path), "", bearer(tokenVault)...)); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}

	send("up", 10)
	eventually(t, "the collector receives every record", func() bool { return col.received("up") == 10 })

	col.stop()
	stderr := captureStderr(t)
	send("down", 10)
	time.Sleep(200 * time.Millisecond)
	spilled := strings.Count(stderr.text(), `"operation":"operations/down`)
	lost := 10 - spilled
	t.Logf("collector down: %d of 10 records went to standard error, %d lost", spilled, lost)
	if lost > 1 {
		t.Errorf("%d records lost while the collector was down, want at most the one in the dead connection", lost)
	}

	col = startCollector(t, addr)
	defer col.stop()
	time.Sleep(10*time.Second + 500*time.Millisecond) // Caddy's redial interval
	send("back", 10)
	stderr.restore()
	eventually(t, "the collector receives records again after Caddy redials", func() bool { return col.received("back") == 10 })

	// A completed record joins the journal's next group commit, a moment
	// after its response: wait for it (bounded), as a reader of the
	// journal would.
	completed := func() int {
		n := 0
		for _, r := range readRecordFile(t, journal) {
			if r.str("stage") == "completed" {
				n++
			}
		}
		return n
	}
	eventually(t, "the journal holds all 30 completed records", func() bool { return completed() >= 30 })
	if n := completed(); n != 30 {
		t.Errorf("the journal holds %d completed records, want exactly 30", n)
	}
}

// stderrCapture collects what the process writes to standard error.
type stderrCapture struct {
	orig *os.File
	w    *os.File
	buf  bytes.Buffer
	mu   sync.Mutex
	done chan struct{}
}

func captureStderr(t *testing.T) *stderrCapture {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &stderrCapture{orig: os.Stderr, w: w, done: make(chan struct{})}
	os.Stderr = w
	go func() {
		defer close(c.done)
		b := make([]byte, 32<<10)
		for {
			n, err := r.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			c.mu.Unlock()
			if err == io.EOF || err != nil {
				return
			}
		}
	}()
	t.Cleanup(c.restore)
	return c
}

func (c *stderrCapture) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *stderrCapture) restore() {
	if os.Stderr == c.w {
		os.Stderr = c.orig
		c.w.Close()
		<-c.done
	}
}
