package devserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dbLock is an exclusive advisory lock (flock) on "<db>.lock", held while a
// server runs on the SQLite file db. The kernel drops it when the process
// dies, so a crashed server never leaves a stale lock behind.
type dbLock struct{ f *os.File }

// lockDB takes the lock of db ("" — an in-memory database — needs none).
func lockDB(db string) (*dbLock, error) {
	if db == "" {
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		return nil, fmt.Errorf("devserver: %w", err)
	}
	path := db + ".lock"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devserver: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("devserver: %s is in use by another embedded Temporal server (a worker -dev or starter demo holds %s): stop it, or pass another --db", db, path)
		}
		return nil, fmt.Errorf("devserver: locking %s: %w", path, err)
	}
	return &dbLock{f: f}, nil
}

// release drops the lock; safe on nil and more than once.
func (l *dbLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
