package scheduler

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/cuivre/cuivre/protocol"
)

// TestScripts runs the scenarios in testdata/*.txt, in the style of etcd raft's
// datadriven tests. Each command prints what the core did; go test -rewrite
// regenerates the expected output. The commands:
//
//	provider name=p1 cpu=4 mem=8Gi [scratch=..] [price=(cpu,mem)] [load-factor=N] [labels=(k=v,...)] [executors=(wasm)]
//	job name=j1 [seed=N] [d=N] [policy=..]   with a YAML job spec as input (module: any path)
//	deliver [n=N] [to=p1]  deliver N messages in flight, or all (and what they cause);
//	                    to=: only those to or from p1 (to=dht: the lookups and their answers)
//	drop [n=N] [to=p1]  drop messages in flight (the first N, or all to a provider)
//	queue               list messages in flight
//	tick 500ms          advance the clock, firing due timers
//	kill p1             a provider dies: messages to it are lost from now on
//	partition p1        messages to and from p1 are lost, until heal p1
//	heartbeat           live providers send a heartbeat for each lease they run
//	finish p1 [exit=0] [output=X]  a provider ends its leases with a result
//	result p1 job=j1 epoch=N [output=X]  a provider sends a result for an epoch
//	cancel job=j1
//	status job=j1       the job's status, and each provider asked: its outcome and, if ranked, its scores
//	ledger              every provider's committed and reserved resources
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		if !strings.HasSuffix(path, ".txt") {
			return
		}
		w := newWorld()
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := runCommand(w, d)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			if err := w.checkLedgers(); err != nil {
				t.Fatal(err)
			}
			return out
		})
	})
}

func runCommand(w *world, d *datadriven.TestData) (string, error) {
	arg := func(key, def string) string {
		if a, ok := d.Arg(key); ok && len(a.Vals) > 0 {
			return a.Vals[0]
		}
		return def
	}
	args := func(key string) []string {
		if a, ok := d.Arg(key); ok {
			return a.Vals
		}
		return nil
	}
	job := func() (*simJob, error) {
		name := arg("job", "")
		for _, j := range w.jobs {
			if j.name == name || name == "" && len(w.jobs) == 1 {
				return j, nil
			}
		}
		return nil, fmt.Errorf("no job %q", name)
	}
	switch d.Cmd {
	case "provider":
		cfg, err := providerConfig(arg, args)
		if err != nil {
			return "", err
		}
		if err := w.addProvider(cfg); err != nil {
			return "", err
		}
		return "ok\n", nil
	case "job":
		j, err := testJob(arg("name", "j"), d.Input, "requester")
		if err != nil {
			return "", err
		}
		seed, _ := strconv.ParseUint(arg("seed", "1"), 10, 64)
		dd, _ := strconv.Atoi(arg("d", "0"))
		cfg := Config{D: dd}
		if name := arg("policy", ""); name != "" {
			if cfg.Policy, err = PolicyByName(name); err != nil {
				return "", err
			}
		}
		w.submit(arg("name", "j"), cfg, j, seed)
	case "deliver":
		if to := arg("to", ""); to != "" {
			n, err := strconv.Atoi(arg("n", "-1"))
			if err != nil {
				return "", err
			}
			w.deliverTo(to, n)
		} else if n := arg("n", ""); n != "" {
			k, err := strconv.Atoi(n)
			if err != nil {
				return "", err
			}
			for range k {
				if len(w.queue) > 0 {
					w.deliver(0)
				}
			}
		} else {
			w.deliverAll()
		}
	case "drop":
		to := arg("to", "")
		n, _ := strconv.Atoi(arg("n", "-1"))
		kept := w.queue[:0]
		for _, m := range w.queue {
			if n != 0 && (to == "" || m.to == to) {
				w.logf("dropped %s", describeMessage(m))
				n--
				continue
			}
			kept = append(kept, m)
		}
		w.queue = kept
	case "queue":
		for _, m := range w.queue {
			w.logf("%s", describeMessage(m))
		}
	case "tick":
		if len(d.CmdArgs) != 1 {
			return "", fmt.Errorf("tick takes a duration")
		}
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			return "", err
		}
		w.advance(dur)
	case "kill":
		p := w.provider(d.CmdArgs[0].Key)
		if p == nil {
			return "", fmt.Errorf("no provider %s", d.CmdArgs[0].Key)
		}
		p.dead = true
	case "partition", "heal":
		p := w.provider(d.CmdArgs[0].Key)
		if p == nil {
			return "", fmt.Errorf("no provider %s", d.CmdArgs[0].Key)
		}
		p.cut = d.Cmd == "partition"
	case "heartbeat":
		w.beat()
		w.deliverAll()
	case "finish":
		p := w.provider(d.CmdArgs[0].Key)
		if p == nil {
			return "", fmt.Errorf("no provider %s", d.CmdArgs[0].Key)
		}
		exit, _ := strconv.Atoi(arg("exit", "0"))
		w.finish(p, int32(exit), arg("output", "out"))
		w.deliverAll()
	case "result":
		j, err := job()
		if err != nil {
			return "", err
		}
		epoch, _ := strconv.ParseUint(arg("epoch", "1"), 10, 64)
		st := j.p.Status()
		w.queue = append(w.queue, message{job: j, event: ResultReceived{
			Provider: d.CmdArgs[0].Key, LeaseID: st.Slots[0].LeaseID, Epoch: epoch,
			State: 4, OutputCID: arg("output", "out"),
		}})
		w.deliverAll()
	case "cancel":
		j, err := job()
		if err != nil {
			return "", err
		}
		w.step(j, Cancel{})
		w.deliverAll()
	case "status":
		j, err := job()
		if err != nil {
			return "", err
		}
		st := j.p.Status()
		w.logf("%s", describeStatus(st))
		for _, o := range st.Asked {
			if len(o.Scores) > 0 {
				w.logf("  %s: %s, scored %s", o.Provider, o.Reason, o.Scores)
			} else {
				w.logf("  %s: %s", o.Provider, o.Reason)
			}
		}
	case "ledger":
		for _, p := range w.providers {
			st := p.market.State()
			w.logf("%s: committed cpu=%d mem=%dMi, reserved cpu=%d mem=%dMi, %d leases", p.name,
				st.Committed.CPUMillis, st.Committed.MemoryBytes>>20, st.Reserved.CPUMillis, st.Reserved.MemoryBytes>>20, st.Leases)
		}
	default:
		return "", fmt.Errorf("unknown command %q", d.Cmd)
	}
	out := w.flush()
	if out == "" {
		return "ok\n", nil
	}
	return out + "\n", nil
}

func describeMessage(m message) string {
	if m.event != nil {
		return fmt.Sprintf("-> %s: %T", m.job.name, m.event)
	}
	if m.to == "" {
		return fmt.Sprintf("%s -> dht: %s", m.job.name, kindOf(m.action))
	}
	return fmt.Sprintf("%s -> %s: %s", m.job.name, m.to, kindOf(m.action))
}

// providerConfig builds a market config from a provider command. Prices are in
// nano-EUR per vCPU-second and per GiB-second.
func providerConfig(arg func(string, string) string, args func(string) []string) (MarketConfig, error) {
	name := arg("name", "")
	if name == "" {
		return MarketConfig{}, fmt.Errorf("provider needs a name")
	}
	cpu, err := protocol.ParseCPU(arg("cpu", "4"))
	if err != nil {
		return MarketConfig{}, err
	}
	mem, err := protocol.ParseQuantity(arg("mem", "8Gi"))
	if err != nil {
		return MarketConfig{}, err
	}
	scratch, err := protocol.ParseQuantity(arg("scratch", "100Gi"))
	if err != nil {
		return MarketConfig{}, err
	}
	price := Price{Currency: "EUR", CPUNanosPerSecond: 10_000, MemoryNanosPerGiBSecond: 1_000}
	if p := args("price"); len(p) == 2 {
		price.CPUNanosPerSecond, _ = strconv.ParseUint(p[0], 10, 64)
		price.MemoryNanosPerGiBSecond, _ = strconv.ParseUint(p[1], 10, 64)
	}
	lf, _ := strconv.ParseUint(arg("load-factor", "0"), 10, 32)
	var labels []Label
	for _, kv := range args("labels") {
		k, v, _ := strings.Cut(kv, "=")
		labels = append(labels, Label{k, v})
	}
	if !hasLabel(labels, LabelOperator) {
		labels = append(labels, Label{LabelOperator, name})
	}
	executors := args("executors")
	if executors == nil {
		executors = []string{"wasm"}
	}
	var seed [32]byte
	copy(seed[:], name)
	return MarketConfig{
		Provider: name, Capacity: Resources{cpu, mem, scratch}, Labels: NewLabels(labels...),
		Executors: executors, Pricing: PricePolicy{Base: price, LoadFactorPermille: uint32(lf)}, Seed: seed,
	}, nil
}

func hasLabel(l []Label, key string) bool {
	for _, x := range l {
		if x.Key == key {
			return true
		}
	}
	return false
}
