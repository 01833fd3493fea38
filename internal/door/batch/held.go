package batch

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// A batch forwarded unparsed is read whole first, to be scanned; its
// memory is reused for later batches, so that the batches a gateway
// carries (most of them, none a cancel) cost no garbage. The memory goes
// back only when both the handler has returned and the body has been
// closed (the transport closes it once it has sent it, perhaps after the
// handler returned); a body never closed leaves its memory to the
// collector.

// maxPooled bounds the batches whose memory is reused: a rare large batch
// gets memory of its own rather than pinning that much in the pool.
const maxPooled = 1 << 20

var buffers = sync.Pool{New: func() any { return new([]byte) }}

// heldBody is a forwarded batch's body over pooled memory.
type heldBody struct {
	mu     sync.Mutex
	r      bytes.Reader
	closed bool
	buf    *[]byte // nil once disowned: the memory is then never reused
	refs   atomic.Int32
}

var errBodyClosed = errors.New("read of a batch body after it was closed")

// pooledFor returns the pooled memory a body of size bytes is read into,
// or nil when it should have memory of its own.
func pooledFor(size int64) *[]byte {
	if size < 0 || size > maxPooled {
		return nil
	}
	return buffers.Get().(*[]byte)
}

// memoryOf is buf's memory, none for nil.
func memoryOf(buf *[]byte) []byte {
	if buf == nil {
		return nil
	}
	return *buf
}

// newHeldBody returns raw as a request body. When buf is not nil, raw was
// read into its memory (or into larger memory of its own, which the pool
// then keeps instead), and that memory goes back to the pool once the
// caller has released its reference and the body has been closed; a body
// over memory of its own (buf nil) is only closed.
func newHeldBody(raw []byte, buf *[]byte) *heldBody {
	if buf != nil && cap(raw) > cap(*buf) {
		*buf = raw[:0]
	}
	h := &heldBody{buf: buf}
	h.r.Reset(raw)
	h.refs.Store(2)
	return h
}

func (h *heldBody) Read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, errBodyClosed
	}
	return h.r.Read(p)
}

// WriteTo lets io.Copy write the body in one call, as bytes.Reader does.
func (h *heldBody) WriteTo(w io.Writer) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, errBodyClosed
	}
	return h.r.WriteTo(w)
}

// Close ends every read; the memory goes back once the handler is done too.
func (h *heldBody) Close() error {
	h.mu.Lock()
	first := !h.closed
	h.closed = true
	h.mu.Unlock()
	if first {
		h.release()
	}
	return nil
}

// disown keeps the memory out of the pool for good: what was parsed from
// it (parts, records) may outlive the request.
func (h *heldBody) disown() {
	h.mu.Lock()
	h.buf = nil
	h.mu.Unlock()
}

// release drops one reference; the last returns the memory.
func (h *heldBody) release() {
	if h.refs.Add(-1) != 0 {
		return
	}
	h.mu.Lock()
	buf := h.buf
	h.buf = nil
	h.r.Reset(nil)
	h.mu.Unlock()
	if buf != nil {
		buffers.Put(buf)
	}
}
