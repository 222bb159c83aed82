//go:build !linux

package data

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// syncfs: elsewhere, each file written is synced, then its directory.
const syncfs = false

func syncAll(dir string, written []string) error {
	dirs := map[string]bool{}
	for _, p := range written {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}
