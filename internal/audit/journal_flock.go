//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes flock(LOCK_EX), which excludes other descriptors of the file,
// in this process or another.
func (f osFile) Lock() error { return f.flock(syscall.LOCK_EX) }

// Unlock releases the lock taken by Lock.
func (f osFile) Unlock() error { return f.flock(syscall.LOCK_UN) }

func (f osFile) flock(how int) error { return flock(f.File, how) }

// announceWriter holds a flock on <path>.lock for as long as the journal
// is open: shared, so that every writer of the file holds one, and
// exclusive only while the first writer completes the records a crash
// interrupted. A writer that finds it taken waits for that to end.
func announceWriter(path string) (presence, bool, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return lockFile{f}, true, nil
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		err = flock(f, syscall.LOCK_SH)
	}
	if err != nil {
		_ = f.Close()
		return nil, false, fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	return lockFile{f}, false, nil
}

// lockFile is a presence: closing it releases its flock.
type lockFile struct{ *os.File }

// Share turns the exclusive flock into a shared one.
func (l lockFile) Share() error { return flock(l.File, syscall.LOCK_SH) }

// flock applies flock(2) to f, retrying when a signal interrupts it.
func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if !errors.Is(ferr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// syncDir fsyncs a directory so that a file created or renamed in it
// survives a crash. File systems that cannot sync a directory say EINVAL
// or ENOTSUP; there is nothing more to do on them.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// flockChain takes (or releases) the exclusive flock of a sealed journal's
// chain record, which orders the writers of its path across rotations.
func flockChain(f *os.File, lock bool) error {
	if lock {
		return flock(f, syscall.LOCK_EX)
	}
	return flock(f, syscall.LOCK_UN)
}
