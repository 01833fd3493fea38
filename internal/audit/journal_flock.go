//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package audit

import (
	"errors"
	"os"
	"syscall"
)

// Lock takes flock(LOCK_EX), which excludes other descriptors of the file,
// in this process or another.
func (f osFile) Lock() error { return f.flock(syscall.LOCK_EX) }

// Unlock releases the lock taken by Lock.
func (f osFile) Unlock() error { return f.flock(syscall.LOCK_UN) }

func (f osFile) flock(how int) error {
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
