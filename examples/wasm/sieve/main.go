// Command sieve is a CPU-bound cuivre workload: built with GOOS=wasip1
// GOARCH=wasm, it counts the primes below --n with the sieve of Eratosthenes,
// repeated --rounds times, and prints the count. It reads and writes nothing
// else, so its output depends only on its arguments: replicas agree.
package main

import (
	"flag"
	"fmt"
)

func main() {
	n := flag.Int("n", 10_000_000, "count the primes below n")
	rounds := flag.Int("rounds", 1, "times to repeat the sieve")
	flag.Parse()
	count := 0
	for range *rounds {
		count = sieve(*n)
	}
	fmt.Printf("%d primes below %d\n", count, *n)
}

func sieve(n int) int {
	if n < 3 {
		return 0
	}
	composite := make([]bool, n)
	count := 0
	for i := 2; i < n; i++ {
		if composite[i] {
			continue
		}
		count++
		for j := i * i; j < n; j += i {
			composite[j] = true
		}
	}
	return count
}
