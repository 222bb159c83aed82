// Command wordfreq is a cuivre workload that turns text into an output file:
// built with GOOS=wasip1 GOARCH=wasm, it counts the words of the files and
// directories named by its arguments (an input the job mounts, say), or of
// its standard input if none is named, and writes them, most frequent first,
// to words.txt in its working directory: the job's scratch area, which the
// node returns as the job's output. Files are read in path order and ties
// are broken by the word itself, so the same input always gives the same
// bytes and replicas agree on the output CID.
package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wordfreq:", err)
		os.Exit(1)
	}
}

// count adds the words of r to counts.
func count(counts map[string]int, r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		counts[strings.ToLower(sc.Text())]++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

func run() error {
	counts := map[string]int{}
	files := 0
	for _, root := range os.Args[1:] {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			files++
			return count(counts, f, path)
		})
		if err != nil {
			return err
		}
	}
	if len(os.Args) < 2 {
		if err := count(counts, os.Stdin, "stdin"); err != nil {
			return err
		}
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.SortFunc(words, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})

	f, err := os.Create("words.txt")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, word := range words {
		fmt.Fprintf(w, "%d %s\n", counts[word], word)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing words.txt: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if files > 0 {
		fmt.Printf("%d distinct words in %d files\n", len(words), files)
	} else {
		fmt.Printf("%d distinct words\n", len(words))
	}
	return nil
}
