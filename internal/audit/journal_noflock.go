//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package audit

// Lock does nothing where flock is unavailable: one writer per file.
func (osFile) Lock() error { return nil }

// Unlock does nothing, like Lock.
func (osFile) Unlock() error { return nil }

// syncDir does nothing: directories cannot be fsynced portably here.
func syncDir(string) error { return nil }
