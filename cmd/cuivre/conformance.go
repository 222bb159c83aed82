package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/conformance"
	"github.com/cuivre/cuivre/protocol"
)

// errChecksFailed makes the command exit 1 once the report is printed.
var errChecksFailed = errors.New("conformance checks failed")

func newConformanceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Check an implementation of the cuivre protocol against SPEC.md, on the wire",
		Long: `conformance runs the conformance kit: suites that drive another node only
through the wire, as a third party would, and check what it does against
SPEC.md. Each check prints its outcome, the SPEC section it tests and its
rule; a failure says what was seen. The exit status is 1 if any check fails.`,
	}
	cmd.AddCommand(newConformanceProviderCmd(), newConformanceRequesterCmd())
	return cmd
}

func newConformanceRequesterCmd() *cobra.Command {
	var public bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "requester",
		Short: "Check a requester: offer requests, offer checks, leases, module serving, lost leases, receipts",
		Long: `requester plays three providers, announced in a DHT of their own, for a
requester under test. It prints the multiaddr to bootstrap the requester's
DHT from; have the requester place there one job of engine wasm of at least
40 slots (count), each needing at most 4 vCPUs and 8 GiB. The kit checks the
requester's offer requests and leases. One provider's offers each have one
fault (a total below what the price makes; a record that is not an
envelope, a bad signature, another kind's domain, a payload that does not
decode, another payload type, a provider field not its signer, an expiry past
or too far, a short nonce; a frame over 64 KiB; another provider's offer,
another request's, another job's): the requester must lease none, and decline
those it can read. One run in four bills a nano more than its receipt's
fields make: the requester must not countersign it. The first slot leased goes silent after its first
Status: the requester must cancel it and lease the slot again at a higher
epoch. Other leases fetch the job's module from the requester over
/cuivre/module/1.0.0, report a run (the kit runs no code) and send a receipt,
which must come back countersigned.

The suite ends once every faulty offer was asked, the silent epoch cancelled
and the slot placed again, and every receipt billed right countersigned; or
at --timeout. Its providers then go: the rest of the job is not placed, and
the job fails, as it should.`,
		Example: `  cuivre conformance requester
  cuivre conformance requester --public   # for a requester on another host`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			rep, err := conformance.RunRequester(ctx, conformance.RequesterOptions{Public: public, Ready: func(boot peer.AddrInfo) {
				addrs, _ := peer.AddrInfoToP2pAddrs(&boot)
				fmt.Fprintln(out, "the kit's providers are up; bootstrap the requester's DHT from:")
				for _, a := range addrs {
					fmt.Fprintf(out, "  %s\n", a)
				}
				fmt.Fprintf(out, "then place one job of engine wasm of 40 slots or more (each at most %d millicores, %s); waiting up to %s\n",
					conformance.JobFits.CpuMillis, protocol.FormatBytes(conformance.JobFits.MemoryBytes), timeout)
			}})
			rep.Print(out)
			if err != nil {
				return err
			}
			if len(rep.Failed()) > 0 {
				return fmt.Errorf("%w: %v", errChecksFailed, rep.Failed())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&public, "public", false, "listen on every interface, not loopback, for a requester on another host")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the requester to finish the job")
	return cmd
}

func newConformanceProviderCmd() *cobra.Command {
	var module string
	var timeout time.Duration
	var noDHT bool
	cmd := &cobra.Command{
		Use:   "provider MULTIADDR",
		Short: "Check a provider: offers, leases, declines, cancels, epochs, watch, receipts, limits",
		Long: `provider plays a requester and a customer against the provider at MULTIADDR
(ending in /p2p/<peer ID>): it reads the provider's capacity record and facet
keys from the DHT, asks for offers, leases, declines, cancels and re-leases
at higher epochs, serves the job's module over /cuivre/module/1.0.0, watches
the runs, recomputes each receipt's amount with the formula of SPEC 5.5,
countersigns the receipts, and sends malformed, oversized, wrong-domain,
expired and replayed messages to see them refused with the right codes.

The provider must have room for a few jobs of 100 millicores and 32 MiB.`,
		Example: `  cuivre conformance provider /ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooW...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := peer.AddrInfoFromString(args[0])
			if err != nil {
				return fmt.Errorf("provider address %q: %w (want a multiaddr ending in /p2p/<peer ID>)", args[0], err)
			}
			mod, err := os.ReadFile(module)
			if err != nil {
				return fmt.Errorf("read the module to run: %w (give --module, a WASI command such as examples/wasm/hello.wasm)", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep, err := conformance.RunProvider(ctx, conformance.ProviderOptions{Target: *target, Module: mod, NoDHT: noDHT})
			rep.Print(cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if len(rep.Failed()) > 0 {
				return fmt.Errorf("%w: %v", errChecksFailed, rep.Failed())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&module, "module", "examples/wasm/hello.wasm", "a WASI command that exits 0, which the kit serves and leases")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long the whole suite may take")
	cmd.Flags().BoolVar(&noDHT, "no-dht", false, "skip the DHT checks (capacity record, facet keys)")
	return cmd
}
