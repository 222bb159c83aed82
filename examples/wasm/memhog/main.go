// Command memhog is an abusive cuivre workload for tests: it allocates
// --chunk MiB at a time, touches every page and keeps it, until the sandbox
// refuses to grow its memory. It prints how much it holds to stderr after each
// chunk.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	chunk := flag.Int("chunk", 1, "MiB allocated per step")
	flag.Parse()
	var held [][]byte
	for i := 1; ; i++ {
		b := make([]byte, *chunk<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i)
		}
		held = append(held, b)
		fmt.Fprintf(os.Stderr, "holding %d MiB\n", i**chunk)
	}
}
