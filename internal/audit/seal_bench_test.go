package audit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkSealRecord is the CPU sealing adds to a record: its seq and
// prev, its leaf hash and the tree's update, plus its share of a signed
// checkpoint every 1,000 lines.
func BenchmarkSealRecord(b *testing.B) {
	s, _ := testKeys(b, "bench.example/audit")
	se := newSealer(s)
	j := &Journal{format: FormatJSON, enc: zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), now: time.Now}
	line, err := j.encode(benchRecord())
	if err != nil {
		b.Fatal(err)
	}
	body := line.Bytes()
	var st sealState
	out := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		var h tlog.Hash
		out, h = appendSealed(out[:0], body, st.t.n+1, st.last)
		if err := st.t.add(h, nil); err != nil {
			b.Fatal(err)
		}
		st.last = h
		if st.unsealed++; st.unsealed == defaultCheckpointLines {
			if out, _, err = se.appendCheckpoint(out[:0], &st); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSealedJournalWriteParallel is BenchmarkJournalWriteParallel's
// middle case with a seal: what the fsync-bound journal pays for sealing.
func BenchmarkSealedJournalWriteParallel(b *testing.B) {
	s, _ := testKeys(b, "bench.example/audit")
	for _, sealed := range []bool{false, true} {
		b.Run(fmt.Sprintf("sealed=%v", sealed), func(b *testing.B) {
			var fsyncs atomic.Int64
			opts := JournalOptions{OnSync: func(time.Duration, error) { fsyncs.Add(1) }}
			if sealed {
				opts.Seal = s
			}
			j, err := OpenJournal(filepath.Join(b.TempDir(), "journal"), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			r := benchRecord()
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := j.Write(r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportJournal(b, &fsyncs)
		})
	}
}

// generated journals, by line count, made once per process: writing a
// million sealed lines takes seconds.
var generated = struct {
	sync.Mutex
	paths map[int]string
	dir   string
}{paths: map[int]string{}}

// generatedJournal writes a sealed journal of about n lines (a checkpoint
// every 1,000) as the gateway writes it, of records whose principal is
// one of 100.
func generatedJournal(b *testing.B, n int) string {
	generated.Lock()
	defer generated.Unlock()
	if p, ok := generated.paths[n]; ok {
		return p
	}
	if generated.dir == "" {
		d, err := os.MkdirTemp("", "sealbench")
		if err != nil {
			b.Fatal(err)
		}
		generated.dir = d
	}
	s, v := testKeys(b, "bench.example/audit")
	benchVerifier = v
	path := filepath.Join(generated.dir, fmt.Sprintf("journal-%d", n))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	se := newSealer(s)
	j := &Journal{format: FormatJSON, enc: zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), now: time.Now}
	var st sealState
	var out []byte
	r := benchRecord()
	for i := 0; st.t.n < int64(n); i++ {
		r.AuditID = fmt.Sprintf("5f1c2a9e-3b7d-4e8a-9c61-%012d", i)
		r.Principal = fmt.Sprintf("user%d@example.com", i%100)
		line, err := j.encode(r)
		if err != nil {
			b.Fatal(err)
		}
		var h tlog.Hash
		out, h = appendSealed(out[:0], line.Bytes(), st.t.n+1, st.last)
		line.Free()
		if err := st.t.add(h, nil); err != nil {
			b.Fatal(err)
		}
		st.last = h
		if st.unsealed++; st.unsealed == defaultCheckpointLines || st.t.n == int64(n)-1 {
			if out, _, err = se.appendCheckpoint(out, &st); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Write(out); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	generated.paths[n] = path
	return path
}

var benchVerifier note.Verifier

// peakHeap samples the heap in use while f runs.
func peakHeap(f func()) uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak.Load()
}

// BenchmarkVerify reads a sealed journal of 100,000 and of 1,000,000
// lines: lines/s, and the peak heap, which must not grow with the length.
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			path := generatedJournal(b, n)
			runtime.GC()
			var peak uint64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				peak = max(peak, peakHeap(func() {
					res, err := VerifyFiles([]string{path}, benchVerifier, nil)
					if err != nil || !res.OK || res.Lines != int64(n) {
						b.Fatalf("verify = %+v, %v", res, err)
					}
				}))
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// BenchmarkQuery reads a sealed journal of 1,000,000 lines for one
// principal's records (1% of them), and for every completed record.
func BenchmarkQuery(b *testing.B) {
	const n = 1_000_000
	for _, q := range []struct {
		name string
		q    Query
	}{
		{"principal", Query{Principal: "user7@example.com"}},
		{"all-completed", Query{}},
	} {
		b.Run(q.name, func(b *testing.B) {
			path := generatedJournal(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				matched := 0
				if err := QueryFiles([]string{path}, &q.q, func([]byte, *QueryRecord) error { matched++; return nil }); err != nil {
					b.Fatal(err)
				}
				if matched == 0 {
					b.Fatal("nothing matched")
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if generated.dir != "" {
		_ = os.RemoveAll(generated.dir)
	}
	os.Exit(code)
}
