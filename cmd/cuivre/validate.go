package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/bench"
	"github.com/cuivre/cuivre/simulations"
)

// validateWarmUp is the jobs of the simulated warm measure left out, as the
// devnet's warm-up (node/bench).
const validateWarmUp = 20

func newBenchValidateCmd() *cobra.Command {
	var (
		o         bench.ValidateOptions
		nodes     string
		out       string
		seeds     int
		measured  string
		calibrate int
		overhead  bool
	)
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Measure placement on devnets of several sizes, cold and warm, and hold the simulator to it",
		Long: `validate starts a devnet of each size in turn (the providers of node/devnet's
profiles and a requester, on loopback), and measures its placement latency,
submission to lease accepted: warm (the devnet's requester, a DHT server,
connections up and lookups cached, jobs one after another) and cold (fresh
requesters of role requester, DHT clients, each placing one job). It also
measures what the simulator's model is given (round trips, a dial, an offer
exchange, the providers' offer and lease service times, a GET_PROVIDERS, the
requester's write before a lease) and traces kad-dht's lookups (hops to the
first holder of a key's records, RPCs, dials).

Then it simulates the same federation, simulations/scenarios/devnetN.yaml,
warm (its one requester, at the devnet's own rate of jobs) and cold (200
requesters in client mode, the first job of each), jobs one after another as
on the devnet, over --seeds seeds, and
prints both side by side with the ratio sim / devnet. Each simulation is
given the costs measured on its own devnet, as the quantiles of the times
measured, and nothing fitted to the placement latencies: these validate the
model. With --calibrate N every simulation is given the costs of the
N-provider devnet instead, which tells how far one machine's costs carry to
other sizes. The scenario files carry the costs of a reference run, for
simulating them alone.`,
		Example: "  cuivre bench validate\n  cuivre bench validate --nodes 20 --warm 100 --cold 10 --out v.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var sizes []int
			for _, s := range strings.Split(nodes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n < 2 {
					return &exitError{code: 2, err: fmt.Errorf("--nodes %q: give sizes of at least 2, separated by commas", nodes)}
				}
				if _, err := simulations.LoadEmbedded(fmt.Sprintf("devnet%d", n)); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--nodes %d: no scenario simulations/scenarios/devnet%d.yaml to compare with", n, n)}
				}
				sizes = append(sizes, n)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.Progress = cmd.ErrOrStderr()
			var before validateReport
			if measured != "" {
				b, err := os.ReadFile(measured)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &before); err != nil {
					return fmt.Errorf("%s: %w", measured, err)
				}
			}
			var rep validateReport
			save := func() error {
				if out == "" {
					return nil
				}
				b, err := json.MarshalIndent(rep, "", "  ")
				if err != nil {
					return err
				}
				return os.WriteFile(out, append(b, '\n'), 0o644)
			}
			for _, n := range sizes {
				var v *bench.Validation
				for _, m := range before.Devnets {
					if m.Nodes == n {
						v = m
					}
				}
				if v == nil && measured != "" {
					continue
				}
				if v == nil {
					o.Nodes = n
					var err error
					if v, err = bench.Validate(ctx, o); err != nil {
						return err
					}
				}
				rep.Devnets = append(rep.Devnets, v)
				if err := save(); err != nil { // after each size: a later one may fail
					return err
				}
			}
			if len(rep.Devnets) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("%s measured none of --nodes %s", measured, nodes)}
			}
			// Each simulation the costs of its own devnet, or those of one
			// devnet of this very session (--calibrate).
			cal := rep.Devnets[0]
			for _, v := range rep.Devnets {
				if v.Nodes == calibrate {
					cal = v
				}
			}
			rep.Calibration = cal.Nodes
			if calibrate == 0 {
				rep.Calibration = 0
			}
			// The one parameter fitted: the requester's overhead, what
			// the warm placements of the calibration devnet (the first, or
			// --calibrate's) take beyond the simulated ones at the median.
			ocal := rep.Devnets[0]
			for _, v := range rep.Devnets {
				if v.Nodes == calibrate {
					ocal = v
				}
			}
			if overhead {
				s, err := simulateDevnet(ocal, fitCosts(ocal), seeds)
				if err != nil {
					return err
				}
				rep.Overhead = max(bench.Percentile(ocal.Warm, 50)-bench.Percentile(s.Warm, 50), 0)
				rep.OverheadFrom = ocal.Nodes
			}
			for _, v := range rep.Devnets {
				costs := fitCosts(cal)
				if calibrate == 0 {
					costs = fitCosts(v) // each size its own: the model alone, no transfer
				}
				costs.overhead = simulations.Cost{Mean: time.Duration(rep.Overhead * float64(time.Millisecond))}
				s, err := simulateDevnet(v, costs, seeds)
				if err != nil {
					return err
				}
				rep.Sims = append(rep.Sims, s)
			}
			if err := save(); err != nil {
				return err
			}
			return rep.write(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&nodes, "nodes", "20,50,100", "devnet sizes, in providers (each needs its scenario devnetN)")
	f.IntVar(&o.Warm, "warm", 200, "warm placements measured on each devnet")
	f.IntVar(&o.Cold, "cold", 20, "fresh requesters, one placement each, on each devnet")
	f.IntVar(&o.Lookups, "lookups", 48, "DHT lookups traced from each of two requesters")
	f.IntVar(&seeds, "seeds", 5, "simulated runs of each measure")
	f.BoolVar(&overhead, "overhead", true, "fit the requester's overhead on the warm placements of the calibration devnet (--calibrate's, or the first)")
	f.IntVar(&calibrate, "calibrate", 0, "give every simulation the costs measured on this devnet size (the first measured if absent); 0: each its own devnet's")
	f.StringVar(&out, "out", "", "also write every measure, as JSON, to this file")
	f.StringVar(&measured, "measured", "", "take the devnets' measures from this file (an --out of before) and simulate only")
	return cmd
}

// validateReport is what validate measured and simulated, size by size.
type validateReport struct {
	Devnets []*bench.Validation `json:"devnets"`
	// Calibration is the size whose costs every simulation was given; 0
	// when each was given its own devnet's.
	Calibration int `json:"calibration,omitempty"`
	// Overhead is the requester's overhead fitted, in ms, on the warm
	// placements of the devnet of OverheadFrom providers.
	Overhead     float64        `json:"overhead_ms"`
	OverheadFrom int            `json:"overhead_from,omitempty"`
	Sims         []simLatencies `json:"sims"`
}

// devnetCosts are what a devnet's measures give the simulator: the round
// trip, and each cost as the quantiles of its measured times.
type devnetCosts struct {
	rtt                                     time.Duration
	hop, dial, sync, offer, lease, overhead simulations.Cost
}

// fitCosts derives the scenario's costs from a devnet's measures: the
// exchanges seen from the requester less the round trip (an offer's; a
// GET_PROVIDERS'), the lease's handler plus the stream's work an offer's
// exchange shows beyond its handler, a dial, a commit of the requester's
// store.
func fitCosts(v *bench.Validation) devnetCosts {
	rtt := v.StreamRTT
	stream := max(bench.Percentile(v.OfferExchange, 50)-bench.Percentile(v.OfferService, 50)-rtt, 0)
	return devnetCosts{
		rtt: time.Duration(rtt * float64(time.Millisecond)),
		hop: costOf(v.DHTRPC, rtt), dial: costOf(v.Dial, 0), sync: costOf(v.RequesterSync, 0),
		offer: costOf(v.OfferExchange, rtt), lease: costOf(v.LeaseService, -stream),
	}
}

// apply gives a devnet scenario these costs.
func (c devnetCosts) apply(sc *simulations.Scenario) {
	for i := range sc.Network.RTT {
		for j := range sc.Network.RTT[i] {
			sc.Network.RTT[i][j] = c.rtt
		}
	}
	sc.Discovery.HopService, sc.Discovery.Dial, sc.Requesters.Sync, sc.Requesters.Overhead = c.hop, c.dial, c.sync, c.overhead
	for i := range sc.Classes {
		sc.Classes[i].ServiceTime, sc.Classes[i].LeaseTime = c.offer, c.lease
	}
}

// costQuantiles are the quantiles of xs (ms) every 5% from the minimum to
// the 95th percentile, then the 99th for the last, each less shift and kept
// above a microsecond. The top percent is left out: a few stalls of a
// shared machine (a fsync of a third of a second) would, interpolated over
// the top twentieth, weigh twenty times what they did.
func costQuantiles(xs []float64, shift float64) []time.Duration {
	if len(xs) == 0 {
		return nil
	}
	var ys []float64
	for _, x := range xs {
		ys = append(ys, max(x-shift, 0.001))
	}
	slices.Sort(ys)
	var q []time.Duration
	for i := range 21 {
		p := float64(i) / 20
		if i == 20 {
			p = 0.99
		}
		y := ys[int(math.Round(p*float64(len(ys)-1)))]
		q = append(q, time.Duration(math.Round(y*1000))*time.Microsecond)
	}
	return q
}

func costOf(xs []float64, shift float64) simulations.Cost {
	return simulations.QuantileCost(costQuantiles(xs, shift))
}

// simLatencies are the simulated placements of one devnet's scenario.
type simLatencies struct {
	Scenario string    `json:"scenario"`
	Warm     []float64 `json:"warm_ms"`
	Cold     []float64 `json:"cold_ms"`
	// Hops is the mean hops to the first holder of the simulated lookups,
	// from the devnet's requester (a server) and from a client; RPCs the
	// queries sent until then, and until a lookup's end.
	Hops, ClientHops                         float64
	RPCs, EndRPCs, ClientRPCs, ClientEndRPCs float64
}

// simulateDevnet runs the devnet's scenario warm, at the devnet's rate of
// jobs, and cold, with fresh client requesters, over seeds seeds.
func simulateDevnet(v *bench.Validation, costs devnetCosts, seeds int) (simLatencies, error) {
	name := fmt.Sprintf("devnet%d", v.Nodes)
	s := simLatencies{Scenario: name}
	for seed := range uint64(seeds) {
		warm, err := simulations.LoadEmbedded(name)
		if err != nil {
			return s, err
		}
		costs.apply(warm)
		warm.Workload.Jobs = validateWarmUp + len(v.Warm)
		if v.WarmRate > 0 {
			// The rest of a devnet job's turn, after its lease: its run,
			// its result, the next submission. The caches' TTLs count in
			// jobs at this pace.
			rest := time.Duration((1/v.WarmRate - mean(v.Warm)/1000) * float64(time.Second))
			warm.Workload.Duration = simulations.Dist{Kind: "fixed", Mean: max(rest, time.Millisecond)}
		}
		r, err := simulations.Run(warm, nil, seed+1, nil)
		if err != nil {
			return s, err
		}
		for _, j := range r.Jobs[min(validateWarmUp, len(r.Jobs)):] {
			if j.Placed >= 0 {
				s.Warm = append(s.Warm, msOf(j.Placed-j.Submitted))
			}
		}
		cold, err := simulations.LoadEmbedded(name)
		if err != nil {
			return s, err
		}
		costs.apply(cold)
		cold.Discovery.Requesters = simulations.ModeClient
		cold.Requesters.Count, cold.Workload.Jobs = 200, 200
		r, err = simulations.Run(cold, nil, seed+1, nil)
		if err != nil {
			return s, err
		}
		first := map[int]bool{}
		for _, j := range r.Jobs {
			if !first[j.Requester] && j.Placed >= 0 {
				first[j.Requester] = true
				s.Cold = append(s.Cold, msOf(j.Placed-j.Submitted))
			}
		}
	}
	s.Hops, s.ClientHops = simulations.KadHops(v.Servers, true), simulations.KadHops(v.Servers, false)
	s.RPCs, s.EndRPCs = simulations.KadRPCs(v.Servers, true)
	s.ClientRPCs, s.ClientEndRPCs = simulations.KadRPCs(v.Servers, false)
	return s, nil
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

// costYAML writes a Cost measured by xs as the scenario files do.
func costYAML(xs []float64, shift float64) string {
	q := costQuantiles(xs, shift)
	if len(q) == 0 {
		return "0"
	}
	var ss []string
	for _, d := range q {
		ss = append(ss, strconv.FormatInt(d.Microseconds(), 10)+"us")
	}
	return "{quantiles: [" + strings.Join(ss, ", ") + "]}"
}

// write prints the costs measured and the scenario values fitted from
// them, the lookups traced, and the latencies side by side.
func (r validateReport) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDERS\tSTREAM RTT\tNEW STREAM\tDIAL\tOFFER EXCHANGE\tOFFER SERVICE\tLEASE SERVICE\tREQUESTER SYNC\tGET_PROVIDERS\tWARM JOBS/S\t")
	for _, v := range r.Devnets {
		fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.0f\t\n", v.Nodes, v.StreamRTT, v.NewStream, bench.Percentile(v.Dial, 50), bench.Percentile(v.OfferExchange, 50),
			bench.Percentile(v.OfferService, 50), bench.Percentile(v.LeaseService, 50), bench.Percentile(v.RequesterSync, 50), bench.Percentile(v.DHTRPC, 50), v.WarmRate)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "(ms, p50; offer and lease service in the providers' handlers during the warm placements)")
	for _, v := range r.Devnets {
		// What the simulator is given, fitted (mean, lognormal shape): the
		// exchanges seen from the requester less the round trip, the
		// lease's handler plus the stream's work an offer's exchange shows
		// beyond its handler.
		rtt := v.StreamRTT
		stream := max(bench.Percentile(v.OfferExchange, 50)-bench.Percentile(v.OfferService, 50)-rtt, 0)
		fmt.Fprintf(w, "\nscenario costs fitted on %d providers:\n", v.Nodes)
		fmt.Fprintf(w, "  network.rtt_ms: %.3f\n", rtt)
		fmt.Fprintf(w, "  discovery.hop_service: %s\n", costYAML(v.DHTRPC, rtt))
		fmt.Fprintf(w, "  discovery.dial: %s\n", costYAML(v.Dial, 0))
		fmt.Fprintf(w, "  requesters.sync: %s\n", costYAML(v.RequesterSync, 0))
		fmt.Fprintf(w, "  classes.service_time: %s\n", costYAML(v.OfferExchange, rtt))
		fmt.Fprintf(w, "  classes.lease_time: %s\n", costYAML(v.LeaseService, -stream))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "PROVIDERS\tFROM\tLOOKUPS\tHOPS\tHOPS (MODEL)\tRPCS\tRPCS (MODEL)\tDIALS\tMS P50\tTO THE END: RPCS\tRPCS (MODEL)\tMS P50\tROUTING TABLE\tCONNECTED\t")
	for i, v := range r.Devnets {
		for _, from := range []string{"server", "client"} {
			var hops, rpcs, dials, msFound, endRPCs, msEnd []float64
			for _, l := range v.Lookups {
				if l.From != from {
					continue
				}
				if l.Found > 0 {
					hops, msFound = append(hops, float64(l.Hops)), append(msFound, l.Ms)
					rpcs, dials = append(rpcs, float64(l.RPCs)), append(dials, float64(l.Dials))
				} else if l.Complete {
					endRPCs, msEnd = append(endRPCs, float64(l.RPCs)), append(msEnd, l.Ms)
				}
			}
			sm := r.Sims[i]
			model, mRPCs, mEnd := sm.Hops, sm.RPCs, sm.EndRPCs
			rt, conn := "", ""
			if from == "client" {
				model, mRPCs, mEnd = sm.ClientHops, sm.ClientRPCs, sm.ClientEndRPCs
				rt, conn = fmt.Sprintf("%.1f", v.RoutingTable), fmt.Sprintf("%.0f%%", 100*v.Connected)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%.2f\t%.2f\t%.1f\t%.1f\t%.1f\t%.2f\t%.1f\t%.1f\t%.2f\t%s\t%s\t\n", v.Nodes, from, len(hops), mean(hops), model,
				mean(rpcs), mRPCs, mean(dials), bench.Percentile(msFound, 50), mean(endRPCs), mEnd, bench.Percentile(msEnd, 50), rt, conn)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "PROVIDERS\tPLACEMENT\tDEVNET N\tP50\tP90\tP99\tMEAN\tSIM N\tP50\tP90\tP99\tMEAN\tSIM/DEVNET P50\tP90\tMEAN\tWITHIN 25%\t")
	for i, v := range r.Devnets {
		s := r.Sims[i]
		for _, m := range []struct {
			name     string
			dev, sim []float64
		}{{"warm", v.Warm, s.Warm}, {"cold", v.Cold, s.Cold}} {
			r50, r90, rm := bench.Percentile(m.sim, 50)/bench.Percentile(m.dev, 50), bench.Percentile(m.sim, 90)/bench.Percentile(m.dev, 90), mean(m.sim)/mean(m.dev)
			ok := "yes"
			if math.Abs(r50-1) > 0.25 || math.Abs(rm-1) > 0.25 {
				ok = "no"
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", v.Nodes, m.name,
				len(m.dev), bench.Percentile(m.dev, 50), bench.Percentile(m.dev, 90), bench.Percentile(m.dev, 99), mean(m.dev),
				len(m.sim), bench.Percentile(m.sim, 50), bench.Percentile(m.sim, 90), bench.Percentile(m.sim, 99), mean(m.sim), r50, r90, rm, ok)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	given := fmt.Sprintf("every simulation given the costs measured on %d providers", r.Calibration)
	if r.Calibration == 0 {
		given = "each simulation given the costs measured on its own devnet"
	}
	if r.OverheadFrom > 0 {
		given += fmt.Sprintf(", and the requester's overhead fitted on %d providers warm, %.2f ms", r.OverheadFrom, r.Overhead)
	}
	_, err := fmt.Fprintf(w, "(ms, submission to lease accepted; within 25%%: the p50 and the mean; %s)\n", given)
	return err
}
