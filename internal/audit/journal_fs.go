package audit

import (
	"errors"
	"fmt"
	"os"
)

// file is the part of an *os.File the journal uses; tests substitute one
// that fails on demand.
type file interface {
	Write(p []byte) (int, error)
	ReadAt(p []byte, off int64) (int, error)
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	// Lock takes an exclusive advisory lock on the whole file, waiting
	// for it; Unlock releases it.
	Lock() error
	Unlock() error
	Close() error
}

// fileSystem is how the journal opens its file, makes directory entries
// durable and tells other writers of the file that it has it open.
type fileSystem struct {
	open    func(path string) (file, error)
	syncDir func(dir string) error
	// announce registers a writer of the journal at path until the
	// presence is closed. alone reports that no other writer, in this
	// process or another, had it open; the presence then keeps others
	// from announcing themselves until Share.
	announce func(path string) (p presence, alone bool, err error)
}

// presence is a writer's announcement that it has a journal open.
type presence interface {
	// Share lets other writers announce themselves.
	Share() error
	// Close withdraws the announcement.
	Close() error
}

var osFileSystem = fileSystem{open: openAppend, syncDir: syncDir, announce: announceWriter}

// osFile is a journal file: an append-only descriptor for writing and a
// read-only one of the same file for checking its tail. Lock and Unlock
// are per platform.
type osFile struct {
	*os.File
	r *os.File
}

// openAppend opens path for appending, creating it readable and writable
// by its owner only: audit records name principals and operations.
func openAppend(path string) (file, error) {
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	r, err := os.Open(path)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	f := osFile{File: w, r: r}
	wfi, werr := w.Stat()
	rfi, rerr := r.Stat()
	if err := errors.Join(werr, rerr); err != nil {
		_ = f.Close()
		return nil, err
	}
	if !os.SameFile(wfi, rfi) {
		_ = f.Close()
		return nil, fmt.Errorf("%s was replaced while opening it", path)
	}
	return f, nil
}

// ReadAt reads through the read-only descriptor.
func (f osFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }

// Close closes both descriptors.
func (f osFile) Close() error { return errors.Join(f.File.Close(), f.r.Close()) }
