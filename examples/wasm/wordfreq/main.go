// Command wordfreq is a cuivre workload that turns its standard input into an
// output file: built with GOOS=wasip1 GOARCH=wasm, it counts the words on
// stdin and writes them, most frequent first, to words.txt in its working
// directory: the job's scratch area, which the node returns as the job's
// output. Ties are
// broken by the word itself, so the same input always gives the same bytes
// and replicas agree on the output CID.
package main

import (
	"bufio"
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wordfreq:", err)
		os.Exit(1)
	}
}

func run() error {
	counts := map[string]int{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Split(bufio.ScanWords)
	for sc.Scan() {
		counts[strings.ToLower(sc.Text())]++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading stdin: %w", err)
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
	fmt.Printf("%d distinct words\n", len(words))
	return nil
}
