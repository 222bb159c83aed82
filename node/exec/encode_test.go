// The encoding of a scratch tree as one byte string: a fingerprint the
// tests compare runs by. The node names outputs by UnixFS root instead
// (SPEC 2.5), which node/data builds.
package exec

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/multiformats/go-varint"
)

// File is one regular file of a scratch area: its path below /scratch, with
// "/" between names and no leading "/", and its contents.
type File struct {
	Path string
	Data []byte
}

// EncodeOutput returns the output of a scratch area holding files: the bytes
// whose CID (wire.SumCID) is the job's output CID. Every regular file, in
// increasing order of its path's bytes, is written as
//
//	uvarint(len(path)) || path || uvarint(len(data)) || data
//
// where uvarint is the minimal unsigned LEB128 varint of multiformats, path
// is the file's path below /scratch ("out.txt", "logs/a.txt": "/" between
// names, no leading "/", no "." or ".." names), and data its contents.
// Directories are not written: an empty directory leaves no trace, and an
// empty scratch area encodes as zero bytes. Only contents and paths count,
// never permissions or times, so replicas that write the same files agree.
//
// files must be sorted by Path with no duplicates. EncodeFS encodes a
// Scratch's files the same way.
func EncodeOutput(files []File) []byte {
	size := 0
	for _, f := range files {
		size += varint.UvarintSize(uint64(len(f.Path))) + len(f.Path) + varint.UvarintSize(uint64(len(f.Data))) + len(f.Data)
	}
	out := make([]byte, 0, size)
	for _, f := range files {
		out = appendUvarint(out, uint64(len(f.Path)))
		out = append(out, f.Path...)
		out = appendUvarint(out, uint64(len(f.Data)))
		out = append(out, f.Data...)
	}
	return out
}

// EncodeFS returns EncodeOutput of the regular files of fsys (such as
// Scratch.FS), with their paths below its root, sorted by path bytes: the same
// bytes, so the same output CID. Directories leave no trace; any other kind
// of entry is an error. The whole output is in memory.
func EncodeFS(fsys fs.FS) ([]byte, error) {
	type entry struct {
		path string
		size int64
	}
	var files []entry
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("output: %s is neither a regular file nor a directory (%s)", p, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, entry{p, info.Size()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	size := 0
	for _, f := range files {
		size += varint.UvarintSize(uint64(len(f.path))) + len(f.path) + varint.UvarintSize(uint64(f.size)) + int(f.size)
	}
	out := make([]byte, 0, size)
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f.path)
		if err != nil {
			return nil, err
		}
		out = appendUvarint(out, uint64(len(f.path)))
		out = append(out, f.path...)
		out = appendUvarint(out, uint64(len(data)))
		out = append(out, data...)
	}
	return out, nil
}

// appendUvarint appends the minimal unsigned LEB128 encoding of v, which is
// the multiformats uvarint.
func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// DecodeOutput parses the output encoding of EncodeOutput, and accepts only
// canonical encodings: minimal varints, valid paths in strictly increasing
// order, no file below another file, no trailing bytes. So one set of files
// has exactly one encoding, and one output CID. The returned Data alias b.
func DecodeOutput(b []byte) ([]File, error) {
	var files []File
	isFile := map[string]bool{}
	for off := 0; off < len(b); {
		p, n, err := readField(b[off:])
		if err != nil {
			return nil, fmt.Errorf("output: file %d path at byte %d: %w", len(files), off, err)
		}
		off += n
		data, n, err := readField(b[off:])
		if err != nil {
			return nil, fmt.Errorf("output: file %d (%q) data at byte %d: %w", len(files), p, off, err)
		}
		off += n
		path := string(p)
		if !fs.ValidPath(path) || path == "." {
			return nil, fmt.Errorf("output: file %d: invalid path %q", len(files), path)
		}
		if len(files) > 0 && path <= files[len(files)-1].Path {
			return nil, fmt.Errorf("output: file %d: path %q not after %q", len(files), path, files[len(files)-1].Path)
		}
		for dir := path; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
			if isFile[dir] {
				return nil, fmt.Errorf("output: file %d: %q is below the file %q", len(files), path, dir)
			}
		}
		isFile[path] = true
		files = append(files, File{Path: path, Data: data})
	}
	return files, nil
}

// readField reads a uvarint length and that many bytes.
func readField(b []byte) ([]byte, int, error) {
	size, n, err := varint.FromUvarint(b)
	if err != nil {
		return nil, 0, err
	}
	if size > uint64(len(b)-n) {
		return nil, 0, errors.New("length past the end")
	}
	return b[n : n+int(size)], n + int(size), nil
}
