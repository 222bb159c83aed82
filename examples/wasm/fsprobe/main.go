// Command fsprobe is a cuivre workload for tests of the scratch area: it runs
// the commands its arguments spell, in order, and prints one line per step
// ("<step>: ok ..." or "<step>: error ..."). A command that fails to set
// something up exits 1.
//
//	fill PATH BYTES   write BYTES bytes to PATH in 1 MiB writes
//	write PATH TEXT   write TEXT to PATH, making its directories
//	dump PATH         list PATH, a file or a tree: sizes, contents, and the
//	                  last two bytes of each file read after a seek
//	tamper PATH       try every change of PATH and, for a directory, in it
//	copy SRC DST      copy the tree SRC (an input, say) to DST
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"time"
)

func main() {
	args := os.Args[1:]
	for len(args) > 0 {
		cmd := args[0]
		switch {
		case cmd == "fill" && len(args) >= 3:
			n, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil {
				fail(err)
			}
			fill(args[1], n)
			args = args[3:]
		case cmd == "write" && len(args) >= 3:
			if err := os.MkdirAll(path.Dir(args[1]), 0o755); err != nil {
				fail(err)
			}
			report("write "+args[1], "", os.WriteFile(args[1], []byte(args[2]), 0o644))
			args = args[3:]
		case cmd == "dump" && len(args) >= 2:
			dump(args[1])
			args = args[2:]
		case cmd == "tamper" && len(args) >= 2:
			tamper(args[1])
			args = args[2:]
		case cmd == "copy" && len(args) >= 3:
			copyTree(args[1], args[2])
			args = args[3:]
		default:
			fail(fmt.Errorf("usage: fill PATH BYTES | write PATH TEXT | dump PATH | tamper PATH | copy SRC DST, got %q", args))
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fsprobe:", err)
	os.Exit(1)
}

func report(step, detail string, err error) {
	if err != nil {
		fmt.Printf("%s: error %v\n", step, err)
		return
	}
	fmt.Printf("%s: ok %s\n", step, detail)
}

func fill(p string, n int64) {
	f, err := os.Create(p)
	if err != nil {
		fail(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for done := int64(0); done < n; {
		chunk := buf[:min(int64(len(buf)), n-done)]
		if _, err := f.Write(chunk); err != nil {
			fail(err)
		}
		done += int64(len(chunk))
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	fmt.Printf("fill %s: ok %d\n", p, n)
}

func copyTree(src, dst string) {
	var n int64
	err := fs.WalkDir(os.DirFS(src), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		to := path.Join(dst, p)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(path.Join(src, p))
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		w, err := io.Copy(out, in)
		n += w
		if err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		fail(err)
	}
	fmt.Printf("copy %s %s: ok %d\n", src, dst, n)
}

func dump(root string) {
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		full := path.Join(root, p)
		if d.IsDir() {
			fmt.Printf("dump %s: ok dir\n", full)
			return nil
		}
		b, err := os.ReadFile(full)
		if err != nil {
			report("dump "+full, "", err)
			return nil
		}
		content := strconv.Quote(string(b))
		if len(b) > 64 {
			sum := sha256.Sum256(b)
			content = "sha256:" + hex.EncodeToString(sum[:])
		}
		fmt.Printf("dump %s: ok %d %s\n", full, len(b), content)
		if len(b) >= 2 {
			f, err := os.Open(full)
			if err != nil {
				report("tail "+full, "", err)
				return nil
			}
			defer f.Close()
			var tail [2]byte
			if _, err := f.Seek(-2, io.SeekEnd); err != nil {
				report("tail "+full, "", err)
				return nil
			}
			_, err = io.ReadFull(f, tail[:])
			report("tail "+full, strconv.Quote(string(tail[:])), err)
		}
		return nil
	})
	if err != nil {
		report("dump "+root, "", err)
	}
}

// tamper tries to change p, and what is in it if it is a directory. Every
// step should fail on a read-only input.
func tamper(p string) {
	step := func(name string, err error) { report("tamper "+p+" "+name, "", err) }
	try := func(name string, flag int) {
		f, err := os.OpenFile(p, flag, 0o644)
		if err == nil {
			f.Close()
		}
		step(name, err)
	}
	try("open for writing", os.O_WRONLY)
	try("open for reading and writing", os.O_RDWR)
	try("open to append", os.O_WRONLY|os.O_APPEND)
	try("open to truncate", os.O_RDONLY|os.O_TRUNC)
	try("create over", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	step("truncate", os.Truncate(p, 0))
	if f, err := os.Open(p); err == nil {
		step("truncate a read-only descriptor", f.Truncate(0))
		_, err := f.Write([]byte("x"))
		step("write a read-only descriptor", err)
		f.Close()
	}
	step("set times", os.Chtimes(p, time.Unix(1, 0), time.Unix(1, 0)))
	step("unlink", os.Remove(p))
	step("rename away", os.Rename(p, p+".moved"))
	if err := os.WriteFile("fsprobe-decoy", []byte("decoy"), 0o644); err != nil {
		fail(err)
	}
	step("rename onto", os.Rename("fsprobe-decoy", p))
	os.Remove("fsprobe-decoy")

	entries, err := os.ReadDir(p)
	if err != nil {
		return // a file
	}
	step("create inside", os.WriteFile(path.Join(p, "fsprobe-new"), []byte("x"), 0o644))
	step("mkdir inside", os.Mkdir(path.Join(p, "fsprobe-dir"), 0o755))
	if err := os.WriteFile("fsprobe-decoy", []byte("decoy"), 0o644); err != nil {
		fail(err)
	}
	step("rename into", os.Rename("fsprobe-decoy", path.Join(p, "fsprobe-into")))
	os.Remove("fsprobe-decoy")
	for _, e := range entries {
		child := path.Join(p, e.Name())
		if e.IsDir() {
			step("rmdir "+e.Name(), os.Remove(child))
			tamper(child)
		} else {
			step("unlink "+e.Name(), os.Remove(child))
			step("rename out "+e.Name(), os.Rename(child, "fsprobe-out"))
			step("rename within "+e.Name(), os.Rename(child, child+".moved"))
			step("write "+e.Name(), os.WriteFile(child, []byte("overwritten"), 0o644))
			step("truncate "+e.Name(), os.Truncate(child, 0))
			step("set times "+e.Name(), os.Chtimes(child, time.Unix(1, 0), time.Unix(1, 0)))
		}
	}
	step("remove all", os.RemoveAll(p))
}
