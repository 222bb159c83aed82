// Command escape is an abusive cuivre workload for tests: it tries to reach
// the host through the filesystem, the environment, the clock and the random
// source, and prints one line per attempt ("<name>: ok ..." or
// "<name>: error ..."). In a cuivre sandbox every host path fails, the
// environment holds only what the job set, and the clock and the random
// source are deterministic fakes, so two runs print the same bytes.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

func main() {
	for _, p := range []string{
		"/etc/passwd",
		"../../etc/passwd",
		"/proc/self/environ",
		"/scratch/../../etc/passwd",
		"/scratch/../etc/hostname",
	} {
		b, err := os.ReadFile(p)
		report("read "+p, fmt.Sprintf("%d bytes", len(b)), err)
	}
	for _, p := range []string{
		"/tmp/cuivre-escape",
		"/cuivre-escape",
		"/scratch/../cuivre-escape",
		"../cuivre-escape",
	} {
		report("write "+p, "", os.WriteFile(p, []byte("escaped"), 0o644))
	}
	entries, err := os.ReadDir("/")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	report("list /", strings.Join(names, ","), err)

	env := os.Environ()
	sort.Strings(env)
	fmt.Printf("env: %s\n", strings.Join(env, " "))
	fmt.Printf("time: %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	var r [8]byte
	_, err = rand.Read(r[:])
	report("random", hex.EncodeToString(r[:]), err)
}

func report(name, detail string, err error) {
	if err != nil {
		fmt.Printf("%s: error %v\n", name, err)
		return
	}
	fmt.Printf("%s: ok %s\n", name, detail)
}
