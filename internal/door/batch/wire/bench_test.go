package wire

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkReadBatchWithoutCancel reads what a Python client sends for
// 100 gets: the batch the door must read and then pass untouched.
func BenchmarkReadBatchWithoutCancel(b *testing.B) {
	requests := make([]string, 100)
	for i := range requests {
		requests[i] = pyRequest("GET", "storage.googleapis.com", fmt.Sprintf("/storage/v1/b/bucket/o/object-%03d?alt=json", i), "ya29.bench", nil)
	}
	body := []byte(python(requests...))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, parts, v := Read(bytes.NewReader(body), pyType, MaxBytes, MaxParts); v != nil || len(parts) != 100 {
			b.Fatalf("%d parts, %+v", len(parts), v)
		}
	}
}
