// Command loop is an abusive cuivre workload for tests: it spins forever
// without calling the host, so only a deadline enforced inside the runtime
// (wazero's WithCloseOnContextDone) can stop it. With --sleep it sleeps
// forever instead, an hour at a time, inside the host's poll_oneoff.
package main

import (
	"flag"
	"time"
)

var sink uint64

func main() {
	sleep := flag.Bool("sleep", false, "sleep instead of spinning")
	flag.Parse()
	for i := uint64(0); ; i++ {
		if *sleep {
			time.Sleep(time.Hour)
		}
		sink += i * i
	}
}
