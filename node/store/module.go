package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/cuivre/cuivre/node/store/storepb"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/wire"
)

// ModuleInfo is the index entry of a cached module.
type ModuleInfo struct {
	CID      cid.Cid
	Size     int64
	Added    time.Time
	LastUsed time.Time // when Module last read it, to the minute
}

// touchEvery bounds how often Module rewrites a module's LastUsed: an index
// write is an fsync, and a read path should not pay one each time.
const touchEvery = time.Minute

// tmpPrefix names the files PutModule writes before renaming them; Open
// removes the ones a crash left behind.
const tmpPrefix = ".tmp-"

func (s *Store) initModuleDir() error {
	dir := s.opts.ModuleDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store %s: module dir: %w", s.path, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store %s: module dir: %w", s.path, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("store %s: remove a partial module: %w", s.path, err)
			}
		}
	}
	return nil
}

func (s *Store) modulePath(c cid.Cid) string {
	return filepath.Join(s.opts.ModuleDir, c.String())
}

func checkModuleCID(c cid.Cid) error {
	if !c.Defined() {
		return protocol.Errorf(protocol.CodeMalformed, "module cid is undefined")
	}
	return nil
}

// PutModule stores a module's bytes under its CID, which they must hash to
// (wire.SumCID), else CODE_MODULE_MISMATCH; larger than
// Options.MaxModuleSize is CODE_TOO_LARGE. The file is written, synced and
// renamed into place, and the directory synced, before the index entry
// commits, so an indexed module is always a whole file. Storing a module
// already held does nothing.
func (s *Store) PutModule(c cid.Cid, data []byte) error {
	if err := checkModuleCID(c); err != nil {
		return fmt.Errorf("put module: %w", err)
	}
	if int64(len(data)) > s.opts.MaxModuleSize {
		return fmt.Errorf("put module %s: %w", c, protocol.Errorf(protocol.CodeTooLarge, "%d bytes, more than the %d allowed", len(data), s.opts.MaxModuleSize))
	}
	if got := wire.SumCID(data); !got.Equals(c) {
		return fmt.Errorf("put module %s: %w", c, protocol.Errorf(pb.Code_CODE_MODULE_MISMATCH, "the bytes hash to %s", got))
	}
	if ok, err := s.HasModule(c); err != nil || ok {
		return err
	}
	if err := writeFileSync(s.opts.ModuleDir, c.String(), data); err != nil {
		return fmt.Errorf("put module %s: %w", c, err)
	}
	now := s.opts.Now()
	return s.Update(func(tx *Tx) error {
		b := tx.bucket(bucketModules)
		if b.Get(c.Bytes()) != nil {
			return nil // another writer indexed it meanwhile
		}
		v, err := proto.Marshal(&storepb.Module{Cid: c.Bytes(), Size: uint64(len(data)), AddedAtMs: msOf(now), LastUsedAtMs: msOf(now)})
		if err != nil {
			return fmt.Errorf("put module %s: encode: %w", c, err)
		}
		return b.Put(c.Bytes(), v)
	})
}

// writeFileSync writes data to dir/name so that a crash leaves either no file
// or the whole one: a temporary file, fsync, rename, fsync of the directory.
func writeFileSync(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func decodeModule(k, v []byte) (ModuleInfo, error) {
	var m storepb.Module
	if err := proto.Unmarshal(v, &m); err != nil {
		return ModuleInfo{}, fmt.Errorf("module %x: decode: %w", k, err)
	}
	c, err := cid.Cast(k)
	if err != nil || string(m.Cid) != string(k) {
		return ModuleInfo{}, fmt.Errorf("module %x: bad index entry: the store is damaged", k)
	}
	return ModuleInfo{CID: c, Size: int64(m.Size), Added: timeOf(m.AddedAtMs), LastUsed: timeOf(m.LastUsedAtMs)}, nil
}

func (s *Store) moduleInfo(c cid.Cid) (m ModuleInfo, err error) {
	err = s.View(func(tx *Tx) error {
		v := tx.bucket(bucketModules).Get(c.Bytes())
		if v == nil {
			return fmt.Errorf("module %s: %w", c, ErrNotFound)
		}
		m, err = decodeModule(c.Bytes(), v)
		return err
	})
	return m, err
}

// Module returns a copy of a module's bytes, or an error wrapping ErrNotFound.
// It checks them against the CID on every read (a few ms for a few MiB): a
// file damaged or changed on disk is removed, with its index entry, and reads
// as not found, so the caller fetches the module again.
func (s *Store) Module(c cid.Cid) ([]byte, error) {
	if err := checkModuleCID(c); err != nil {
		return nil, fmt.Errorf("module: %w", err)
	}
	info, err := s.moduleInfo(c)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.modulePath(c))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errors.Join(fmt.Errorf("module %s: indexed but its file is gone: %w", c, ErrNotFound), s.DeleteModule(c))
	case err != nil:
		return nil, fmt.Errorf("module %s: %w", c, err)
	case int64(len(data)) != info.Size || !wire.SumCID(data).Equals(c):
		return nil, errors.Join(fmt.Errorf("module %s: its file is damaged and was removed: %w", c, ErrNotFound), s.DeleteModule(c))
	}
	if now := s.opts.Now(); now.Sub(info.LastUsed) >= touchEvery {
		err := s.Update(func(tx *Tx) error {
			b := tx.bucket(bucketModules)
			v := b.Get(c.Bytes())
			if v == nil {
				return nil
			}
			var m storepb.Module
			if err := proto.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("module %s: decode: %w", c, err)
			}
			m.LastUsedAtMs = msOf(now)
			v, err := proto.Marshal(&m)
			if err != nil {
				return fmt.Errorf("module %s: encode: %w", c, err)
			}
			return b.Put(c.Bytes(), v)
		})
		if err != nil {
			return nil, err
		}
	}
	return data, nil
}

// HasModule reports whether a module is indexed and its file is there. It
// does not read the bytes: Module checks them.
func (s *Store) HasModule(c cid.Cid) (bool, error) {
	if !c.Defined() {
		return false, nil
	}
	if _, err := s.moduleInfo(c); errors.Is(err, ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	switch _, err := os.Stat(s.modulePath(c)); {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("module %s: %w", c, err)
	}
	return true, nil
}

// Modules returns the index of the module cache, in key order (by binary
// CID), for a caller that evicts by LastUsed.
func (s *Store) Modules() ([]ModuleInfo, error) {
	var out []ModuleInfo
	err := s.View(func(tx *Tx) error {
		return tx.bucket(bucketModules).ForEach(func(k, v []byte) error {
			m, err := decodeModule(k, v)
			if err == nil {
				out = append(out, m)
			}
			return err
		})
	})
	return out, err
}

// DeleteModule removes a module from the cache: the index entry first, then
// the file, so a crash between leaves an orphan file (harmless: the next
// PutModule of that CID replaces it), never an entry without its file.
// Deleting a module not held does nothing.
func (s *Store) DeleteModule(c cid.Cid) error {
	if !c.Defined() {
		return nil
	}
	if err := s.Update(func(tx *Tx) error { return tx.bucket(bucketModules).Delete(c.Bytes()) }); err != nil {
		return fmt.Errorf("delete module %s: %w", c, err)
	}
	if err := os.Remove(s.modulePath(c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete module %s: %w", c, err)
	}
	return nil
}
