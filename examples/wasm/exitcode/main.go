// Command exitcode is a cuivre workload for tests: it writes a line to stdout
// and one to stderr, then exits with the status given by --code.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	code := flag.Int("code", 0, "exit status")
	flag.Parse()
	fmt.Println("exiting with", *code)
	fmt.Fprintln(os.Stderr, "this goes to stderr")
	os.Exit(*code)
}
