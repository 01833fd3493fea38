//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package audit

import (
	"os"
	"path/filepath"
	"sync"
)

// Lock does nothing where flock is unavailable: one writer per file.
func (osFile) Lock() error { return nil }

// Unlock does nothing, like Lock.
func (osFile) Unlock() error { return nil }

// syncDir does nothing: directories cannot be fsynced portably here.
func syncDir(string) error { return nil }

// writers counts the open journals of this process by path: without
// flock, the writers of one file can only be known within one process,
// which is enough for a reload.
var writers = struct {
	sync.Mutex
	open map[string]int
}{open: map[string]int{}}

// announceWriter registers the journal at path in writers.
func announceWriter(path string) (presence, bool, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, false, err
	}
	writers.Lock()
	defer writers.Unlock()
	writers.open[abs]++
	return registration(abs), writers.open[abs] == 1, nil
}

// registration is a presence in writers.
type registration string

// Share does nothing: a registration never keeps others out.
func (registration) Share() error { return nil }

// Close removes the registration.
func (r registration) Close() error {
	writers.Lock()
	defer writers.Unlock()
	if writers.open[string(r)]--; writers.open[string(r)] == 0 {
		delete(writers.open, string(r))
	}
	return nil
}

// chainLock orders this process's writers of sealed journals: without
// flock, one process is all that can be ordered.
var chainLock sync.Mutex

// flockChain takes (or releases) chainLock.
func flockChain(_ *os.File, lock bool) error {
	if lock {
		chainLock.Lock()
	} else {
		chainLock.Unlock()
	}
	return nil
}
