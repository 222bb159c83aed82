// Command hello is the smallest cuivre workload: built with GOOS=wasip1
// GOARCH=wasm, it greets the name given by --name with $GREETING and counts the
// lines on its standard input. It uses nothing the sandbox does not grant.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

func main() {
	name := flag.String("name", "world", "who to greet")
	flag.Parse()
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "hello"
	}
	lines := 0
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		lines++
	}
	fmt.Printf("%s, %s! (%d lines on stdin)\n", greeting, *name, lines)
}
