package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node"
	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/billing"
	"github.com/cuivre/cuivre/node/devnet"
	"github.com/cuivre/cuivre/node/exec/exectest"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// TestBillingExport: real nodes on loopback (a devnet of two providers of
// two operators, and its requester, each serving its API) run jobs; then
// `cuivre billing export` on each node, in JSON and CSV, adds up exactly to
// the receipts read back from the stores once the nodes are closed, per
// customer, provider, operator and currency, all and countersigned; and
// --since and --until split the receipts at a time between two batches.
// Between the batches the second provider changes its currency and its
// operator label: the spend rows keep the operator of the offer each lease
// took, not the provider's label of the moment.
func TestBillingExport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a federation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{N: 2, Dir: t.TempDir(), CacheDir: exectest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			dn.Close()
		}
	})
	// The requester's API and key in dn.Dir, each provider's API in a dir
	// of its own: every node is a `--data-dir` the CLI can export from.
	dirs := map[string]string{} // peer ID -> its API's dir
	var apis []*api.API
	a, err := dn.Serve()
	if err != nil {
		t.Fatal(err)
	}
	apis, dirs[dn.Requester.ID().String()] = append(apis, a), dn.Dir
	for _, p := range dn.Providers {
		dir := t.TempDir()
		a, err := p.ServeAPI("127.0.0.1:0", dir)
		if err != nil {
			t.Fatal(err)
		}
		apis, dirs[p.ID().String()] = append(apis, a), dir
	}
	closeAll := func() {
		for _, a := range apis {
			a.Close(ctx)
		}
		closed = true
		if err := dn.Close(); err != nil {
			t.Fatal(err)
		}
	}

	specs := t.TempDir()
	if err := os.WriteFile(filepath.Join(specs, "hello.wasm"), exectest.Module(t, "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	jobs := 0
	runJob := func(region, cpu, memory string) {
		t.Helper()
		jobs++
		spec := filepath.Join(specs, fmt.Sprintf("job%d.yaml", jobs))
		writeFile(t, spec, fmt.Sprintf("version: 1\nname: bill%d\ntask:\n  module: hello.wasm\n  args: [--name, n%d]\n  resources: {cpu: %s, memory: %s}\n"+
			"constraints:\n  - region = %s\n", jobs, jobs, cpu, memory, region))
		if out, err := run(t, "job", "run", "--data-dir", dn.Dir, spec); err != nil || !strings.Contains(out, fmt.Sprintf("hello, n%d!", jobs)) {
			t.Fatalf("job %d on %s: %v\n%s", jobs, region, err, out)
		}
	}
	// settled waits until the requester holds a countersigned receipt of
	// every job run so far and each provider holds its receipts
	// countersigned too: what the countersignatures' delivery, behind the
	// results, leaves once it is done.
	settled := func() {
		t.Helper()
		err := devnet.WaitFor(ctx, 2*time.Minute, func() bool {
			spent := statementOf(t, dn.Requester)
			earned := 0
			for _, p := range dn.Providers {
				for _, r := range statementOf(t, p).Rows {
					if !r.Countersigned {
						return false
					}
					earned++
				}
			}
			return len(spent.Rows) >= jobs && earned == len(spent.Rows)
		})
		if err != nil {
			t.Fatalf("the receipts of %d jobs were not all countersigned: %v", jobs, err)
		}
	}

	runJob("fr-par", "500m", "64Mi")
	runJob("fr-par", "250m", "32Mi")
	runJob("fr-lyo", "1", "128Mi")
	settled()
	// Every receipt of the first batch ended before cut, as its result came
	// back before; every one of the second starts after, as its lease is
	// made after.
	cut := time.Now()
	lyo := dn.Profiles[1]
	newOperator := lyo.Operator + "-chf"
	err = dn.Providers[1].Reprice(scheduler.PricePolicy{Base: scheduler.Price{Currency: "CHF", CPUNanosPerSecond: 13_000, MemoryNanosPerGiBSecond: 1_700}},
		scheduler.NewLabels(scheduler.Label{Key: "region", Value: lyo.Region}, scheduler.Label{Key: "jurisdiction", Value: lyo.Region[:2]},
			scheduler.Label{Key: "operator", Value: newOperator}))
	if err != nil {
		t.Fatal(err)
	}
	runJob("fr-lyo", "500m", "64Mi")
	runJob("fr-par", "750m", "96Mi")
	settled()

	// What the CLI exports, from each node, whole and split at cut.
	since, until := cut.Format(time.RFC3339Nano), cut.Format(time.RFC3339Nano)
	type exports struct{ all, since, until billing.Statement }
	got := map[string]exports{}
	for id, dir := range dirs {
		e := exports{all: export(t, dir), since: export(t, dir, "--since", since), until: export(t, dir, "--until", until)}
		if d := cmp.Diff(totalsOf(e.all), csvTotals(t, dir)); d != "" {
			t.Errorf("node %s: the CSV's totals are not the JSON's (-json +csv):\n%s", id, d)
		}
		if out, err := run(t, "billing", "export", "--data-dir", dir); err != nil || !strings.Contains(out, "Totals by currency") {
			t.Errorf("node %s: the table: %v\n%s", id, err, out)
		}
		got[id] = e
	}
	closeAll()

	// The stores, read back on their own.
	operatorOf := func(prov string, endedMs uint64, latest bool) string {
		if !latest {
			return billing.UnknownOperator // a lease placed again: its slot kept the later epoch's offer
		}
		for i, p := range dn.Providers {
			if p.ID().String() == prov {
				if i == 1 && protocol.FromUnixMs(endedMs).After(cut) {
					return newOperator
				}
				return dn.Profiles[i].Operator
			}
		}
		return "not a provider of the devnet"
	}
	nodes := append([]*node.Node{dn.Requester}, dn.Providers...)
	for i, n := range nodes {
		rs := readReceipts(t, filepath.Join(dn.Dir, fmt.Sprintf("node-%d", i), node.StateFile))
		id, e := n.ID().String(), got[n.ID().String()]
		for _, c := range []struct {
			name string
			st   billing.Statement
			keep func(endedMs uint64) bool
		}{
			{"whole", e.all, func(uint64) bool { return true }},
			{"--since " + since, e.since, func(ms uint64) bool { return !protocol.FromUnixMs(ms).Before(cut) }},
			{"--until " + until, e.until, func(ms uint64) bool { return protocol.FromUnixMs(ms).Before(cut) }},
		} {
			want := expectTotals(t, rs, string(n.ID()), operatorOf, c.keep)
			if d := cmp.Diff(want, totalsOf(c.st)); d != "" {
				t.Errorf("node %s, %s: the export's totals are not the store's receipts' (-store +export):\n%s", id, c.name, d)
			}
			if len(c.st.Skipped) > 0 {
				t.Errorf("node %s, %s: receipts skipped: %+v", id, c.name, c.st.Skipped)
			}
		}
		if i == 0 && (len(e.since.Rows) < 2 || len(e.until.Rows) < 3) {
			t.Errorf("the requester's spend split at cut: %d rows since, %d until; want the 2 jobs after and the 3 before", len(e.since.Rows), len(e.until.Rows))
		}
	}
	if cur := currencies(got[dn.Requester.ID().String()].all); cur != "CHF EUR" {
		t.Errorf("the requester spent in %q, want CHF and EUR", cur)
	}
}

// statementOf is a node's whole statement, from the node in this process.
func statementOf(t *testing.T, n *node.Node) billing.Statement {
	t.Helper()
	st, err := n.Billing(billing.Window{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// export runs `cuivre billing export -o json` on a node's data dir.
func export(t *testing.T, dir string, args ...string) billing.Statement {
	t.Helper()
	out, err := run(t, append([]string{"billing", "export", "--data-dir", dir, "-o", "json"}, args...)...)
	if err != nil {
		t.Fatalf("billing export %v: %v\n%s", args, err, out)
	}
	var st billing.Statement
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("billing export %v: %v\n%s", args, err, out)
	}
	return st
}

// sums is what the test compares of a total: its receipts, all and
// countersigned, in nano-units.
type sums struct {
	Receipts           int
	All, Countersigned string
}

func totalsOf(st billing.Statement) map[string]sums {
	m := map[string]sums{}
	for _, x := range st.Totals {
		m[fmt.Sprintf("%s by %s %s in %s", x.Side, x.By, x.Key, x.Currency)] = sums{x.Receipts, x.AllNanos, x.CountersignedNanos}
	}
	return m
}

// csvTotals reads the totals of `cuivre billing export -o csv`.
func csvTotals(t *testing.T, dir string) map[string]sums {
	t.Helper()
	out, err := run(t, "billing", "export", "--data-dir", dir, "-o", "csv")
	if err != nil {
		t.Fatalf("billing export -o csv: %v\n%s", err, out)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("billing export -o csv: %v\n%s", err, out)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	m := map[string]sums{}
	for _, r := range recs[1:] {
		if r[col["kind"]] != "total" {
			continue
		}
		by := r[col["by"]]
		key := r[col["currency"]]
		if by != "currency" {
			key = r[col[by]]
		}
		n, _ := strconv.Atoi(r[col["receipts"]])
		m[fmt.Sprintf("%s by %s %s in %s", r[col["side"]], by, key, r[col["currency"]])] = sums{n, r[col["amount_nanos"]], r[col["countersigned_nanos"]]}
	}
	return m
}

// readReceipts opens a closed node's store and returns its receipts.
func readReceipts(t *testing.T, path string) []store.Receipt {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, err := st.Receipts()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// expectTotals adds up the receipts of a store as a statement must, on its
// own: self's earnings per customer and currency, its spend per provider,
// operator and currency, of those kept. A requester knows the operator of
// a lease's newest epoch only: its slot keeps that offer's labels.
func expectTotals(t *testing.T, rs []store.Receipt, self string, operatorOf func(prov string, endedMs uint64, latest bool) string, keep func(uint64) bool) map[string]sums {
	t.Helper()
	type acc struct {
		n       int
		all, cs big.Int
	}
	accs := map[string]*acc{}
	add := func(k string, nanos uint64, countersigned bool) {
		a := accs[k]
		if a == nil {
			a = &acc{}
			accs[k] = a
		}
		a.n++
		a.all.Add(&a.all, new(big.Int).SetUint64(nanos))
		if countersigned {
			a.cs.Add(&a.cs, new(big.Int).SetUint64(nanos))
		}
	}
	newest := map[string]uint64{} // lease ID -> its newest epoch billed
	for _, r := range rs {
		newest[r.LeaseID] = max(newest[r.LeaseID], r.Epoch)
	}
	for _, r := range rs {
		rc, err := record.OpenReceipt(r.Envelope)
		if err != nil {
			t.Fatalf("receipt %s: %v", hex.EncodeToString([]byte(r.LeaseID)), err)
		}
		if !keep(rc.EndedAtMs) {
			continue
		}
		cs := false
		if len(r.Countersignature) > 0 {
			c, err := record.OpenCountersignature(r.Countersignature)
			cs = err == nil && bytes.Equal(c.Requester, rc.Requester)
		}
		cur, nanos := rc.GetAmount().GetCurrency(), rc.GetAmount().GetNanos()
		prov, req := peer.ID(rc.Provider).String(), peer.ID(rc.Requester).String()
		if string(rc.Provider) == self {
			add("earnings by customer "+req+" in "+cur, nanos, cs)
			add("earnings by currency "+cur+" in "+cur, nanos, cs)
		}
		if string(rc.Requester) == self {
			add("spend by provider "+prov+" in "+cur, nanos, cs)
			add("spend by operator "+operatorOf(prov, rc.EndedAtMs, r.Epoch == newest[r.LeaseID])+" in "+cur, nanos, cs)
			add("spend by currency "+cur+" in "+cur, nanos, cs)
		}
	}
	m := map[string]sums{}
	for k, a := range accs {
		m[k] = sums{a.n, a.all.String(), a.cs.String()}
	}
	return m
}

// currencies lists the currencies of a statement's spend, sorted.
func currencies(st billing.Statement) string {
	var out []string
	for _, x := range st.Totals {
		if x.Side == billing.Spend && x.By == "currency" {
			out = append(out, x.Currency)
		}
	}
	return strings.Join(out, " ")
}

// TestBillingExportBadInput: a bound that is neither a date nor an RFC 3339
// time, an empty window and an unknown -o are refused with exit code 1 and
// what to write instead, before the command looks for a daemon.
func TestBillingExportBadInput(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday"}, `--since "yesterday": write a date (2026-12-01, UTC) or an RFC 3339 time`},
		{[]string{"--until", "2026-12-32"}, `--until "2026-12-32": write a date`},
		{[]string{"--since", "2026-12-02", "--until", "2026-12-01"}, "is not before --until"},
		{[]string{"-o", "xml"}, `"xml" for "-o, --output" flag: use table, wide, csv, json, yaml`},
	} {
		cmd := cuivre(t, append([]string{"billing", "export", "--data-dir", none}, c.args...)...)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "daemon") {
			t.Errorf("billing export %v: exit %d, output %q; want exit 1 saying %q", c.args, cmd.ProcessState.ExitCode(), out, c.want)
		}
	}
}
