package demo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cuivre/cuivre/node/devnet"
)

// TestFederation is the customer's side on a 5-node devnet: a job with a
// jurisdiction constraint lands only on a matching provider; a job over every
// price ceiling is not placed, with the reasons; count 3 spread by operator
// lands on 3 operators; killing the provider of a running job gets the job
// re-placed and completed with the right output.
func TestFederation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a federation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Options{N: 5, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	req := d.Requester
	region := map[string]string{}
	operator := map[string]string{}
	for i, p := range d.Providers {
		region[p.ID().String()], operator[p.ID().String()] = d.Profiles[i].Region, d.Profiles[i].Operator
	}
	spec := func(name, body string) string {
		p := filepath.Join(t.TempDir(), "job.yaml")
		hello, err := os.ReadFile("../../examples/wasm/hello.wasm")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(filepath.Dir(p), "hello.wasm"), hello, 0o644)
		os.WriteFile(filepath.Join(filepath.Dir(p), "sieve.wasm"), must(os.ReadFile("../../examples/wasm/sieve.wasm")), 0o644)
		os.WriteFile(p, []byte("version: 1\nname: "+name+"\n"+body), 0o644)
		return p
	}
	run := func(path string) (string, error) { return submit(req, req.Identity(), path, nil) }

	key, err := run(spec("german", "task:\n  module: hello.wasm\n  resources: {cpu: 100m, memory: 32Mi}\nconstraints:\n  - jurisdiction = de\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := req.Wait(ctx, key)
	if err != nil || v.State != "succeeded" || region[v.Slots[0].Provider] != "de-fra" {
		t.Fatalf("jurisdiction: %+v, %v", v, err)
	}

	key, err = run(spec("thrifty", "task:\n  module: hello.wasm\n  resources: {cpu: 100m, memory: 32Mi}\nmax_price: \"0.000000001 EUR\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err = req.Wait(ctx, key)
	if err != nil || v.State != "failed" || !strings.HasPrefix(v.Reason, "not placed") || !strings.Contains(v.Reason, "price above ceiling") {
		t.Fatalf("price ceiling: %+v, %v", v, err)
	}

	key, err = run(spec("fan", "count: 3\ntask:\n  module: hello.wasm\n  resources: {cpu: 100m, memory: 32Mi}\nspread:\n  - {attribute: operator, weight: 100}\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err = req.Wait(ctx, key)
	ops := map[string]bool{}
	for _, s := range v.Slots {
		ops[operator[s.Provider]] = true
	}
	if err != nil || v.State != "succeeded" || len(ops) != 3 {
		t.Fatalf("spread: %+v on operators %v, %v", v, ops, err)
	}

	key, err = run(spec("long", "task:\n  module: sieve.wasm\n  args: [--n, \"3000000\", --rounds, \"8\"]\n  resources: {cpu: 500m, memory: 64Mi, timeout: 2m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	if err := devnet.WaitFor(ctx, 30*time.Second, func() bool {
		v, _ := req.Job(key)
		if len(v.Slots) > 0 && v.Slots[0].State == "running" {
			victim = v.Slots[0].Provider
			return true
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for i, p := range d.Providers {
		if p.ID().String() == victim {
			d.Kill(i)
		}
	}
	v, err = req.Wait(ctx, key)
	stdout, _, _, _, _ := req.Logs(key)
	if err != nil || v.State != "succeeded" || v.Slots[0].Provider == victim || v.Slots[0].Epoch < 2 ||
		!strings.Contains(string(stdout), "216816 primes below 3000000") {
		t.Fatalf("after the provider died: %+v, %v, output %q", v, err, stdout)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
