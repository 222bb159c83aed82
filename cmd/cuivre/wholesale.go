package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/api"
	"github.com/cuivre/cuivre/node/config"
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

func newWholesaleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wholesale",
		Short: "Rent slices of a site to other operators, or rent them from a site",
		Long: `A site, such as a publicly funded one, may rent slices of its hardware to other
operators, the retailers, who sell their own service on them, as an incumbent
rents its copper line to competitors (SPEC 4.5, 6.7). The site publishes one
tariff in the DHT for every retailer alike (wholesale.enabled in its config);
a retailer asks for a slice at that tariff, and gets a grant signed by the
site, or a refusal that says why. A slice is paid whole, used or not, and the
site may end it sooner only after the notice its grant carries.

As a site:      tariff, list, withdraw, bill
As a retailer:  sites, request, list, release, evidence
As anyone:      audit (with the evidence retailers present)`,
	}
	cmd.AddCommand(newWholesaleTariffCmd(), newWholesaleSitesCmd(), newWholesaleRequestCmd(), newWholesaleListCmd(), newWholesaleWithdrawCmd(), newWholesaleReleaseCmd(),
		newWholesaleEvidenceCmd(), newWholesaleAuditCmd(), newWholesaleBillCmd())
	return cmd
}

func newWholesaleTariffCmd() *cobra.Command {
	var output format
	cmd := &cobra.Command{
		Use:   "tariff",
		Short: "The tariff the local node publishes as a site",
		Long: `tariff shows the wholesale tariff the local node publishes in the DHT, as every
retailer reads it, and what its live slices hold. A node publishes one when
wholesale.enabled is true in its config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var v api.WholesaleView
			if err := c.Get("/v1/wholesale", &v); err != nil {
				return err
			}
			if v.Tariff == nil {
				return errors.New("this node publishes no wholesale tariff: set wholesale.enabled: true (and labels.jurisdiction) in its config, and restart it")
			}
			return render(cmd.OutOrStdout(), output, v.Tariff, func(tw *tabwriter.Writer, wide bool) { tariffTable(tw, *v.Tariff, wide) })
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

// tariffTable writes one tariff as keys and values.
func tariffTable(tw *tabwriter.Writer, t api.TariffView, wide bool) {
	keyValues(tw, "site", peerID(t.Site, true), "seq", fmt.Sprint(t.Seq), "hash", t.Hash,
		"issued", t.IssuedAt.Local().Format(time.DateTime), "expires", t.ExpiresAt.Local().Format(time.DateTime),
		"price", fmt.Sprintf("%s per vCPU-hour, %s per GiB-hour, %s per GiB out", t.CPUPerHour, t.MemoryGiBPerHour, t.EgressPerGiB),
		"minimum slice", fmt.Sprintf("%s, for %s", resources(t.MinSlice), t.MinPeriod),
		"notice", t.Notice, "capacity", resources(t.Capacity))
	if t.Granted != nil {
		keyValues(tw, "granted", resources(*t.Granted))
	}
	keyValues(tw, "labels", labelsText(t.Labels))
}

func labelsText(l map[string]string) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		kv = append(kv, k+"="+l[k])
	}
	return orNone(strings.Join(kv, ", "))
}

func newWholesaleSitesCmd() *cobra.Command {
	var output format
	cmd := &cobra.Command{
		Use:   "sites JURISDICTION",
		Short: "The sites that publish a tariff under a jurisdiction, and their tariffs",
		Long: `sites looks up the sites announced under the wholesale facet of a jurisdiction
(an ISO 3166-1 alpha-2 code, such as fr) and reads each one's tariff from the
DHT, as every retailer reads it.`,
		Example: "  cuivre wholesale sites fr\n  cuivre wholesale sites fr -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var ts []api.TariffView
			if err := c.Get("/v1/wholesale/sites?jurisdiction="+url.QueryEscape(strings.ToLower(args[0])), &ts); err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), output, ts, func(tw *tabwriter.Writer, wide bool) {
				fmt.Fprintln(tw, "SITE\tCPU/H\tGIB/H\tMIN SLICE\tMIN PERIOD\tNOTICE\tCAPACITY\tLABELS")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", peerID(t.Site, wide), t.CPUPerHour, t.MemoryGiBPerHour,
						resources(t.MinSlice), t.MinPeriod, t.Notice, resources(t.Capacity), labelsText(t.Labels))
				}
			})
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

func newWholesaleRequestCmd() *cobra.Command {
	var (
		output               format
		cpu, memory, scratch string
		start, until         string
		period               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "request SITE",
		Short: "Ask a site for a slice at its published tariff",
		Long: `request asks the site SITE (a peer ID) for a slice of --cpu vCPUs, --memory and
--scratch, from --start (default now) for --for or until --until, at the tariff
it publishes in the DHT (read first, and named by its hash). The site answers
with a grant it signed, which the local node checks is at that tariff and
keeps, or a refusal with its reason: full, below the minimum slice or period,
not allowed, or a tariff changed since it was read (ask again).`,
		Example: "  cuivre wholesale request 12D3KooW... --cpu 2 --memory 4Gi --for 720h\n" +
			"  cuivre wholesale request 12D3KooW... --cpu 4 --memory 16Gi --start 2026-12-07T00:00:00Z --until 2027-01-07T00:00:00Z",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ask := api.SliceAsk{Site: args[0]}
			var err error
			if ask.Resources, err = sliceResources(cpu, memory, scratch); err != nil {
				return err
			}
			from := time.Now()
			if start != "" {
				if ask.Start, err = time.Parse(time.RFC3339, start); err != nil {
					return fmt.Errorf("--start: %w (write it as 2026-12-07T00:00:00Z)", err)
				}
				if ask.Start.After(from) {
					from = ask.Start
				}
			}
			if ask.End, err = endOf("--until", until, "--for", period, from); err != nil {
				return err
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			var g api.GrantView
			if err := c.Do("POST", "/v1/wholesale/slices", ask, &g); err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), output, g, func(tw *tabwriter.Writer, wide bool) { grantTable(tw, g) })
		},
	}
	cmd.Flags().StringVar(&cpu, "cpu", "1", "vCPUs of the slice, such as 2 or 1500m")
	cmd.Flags().StringVar(&memory, "memory", "1Gi", "memory of the slice, such as 4Gi")
	cmd.Flags().StringVar(&scratch, "scratch", "0", "scratch disk of the slice, such as 10Gi")
	cmd.Flags().StringVar(&start, "start", "", "when the slice starts, RFC 3339 (default now)")
	cmd.Flags().DurationVar(&period, "for", 0, "how long the slice lasts, such as 720h")
	cmd.Flags().StringVar(&until, "until", "", "when the slice ends, RFC 3339")
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

// sliceResources reads the sizes of a slice as config.yaml writes them.
func sliceResources(cpu, memory, scratch string) (scheduler.Resources, error) {
	var c config.CPU
	var m, s config.Bytes
	for _, f := range []struct {
		flag, text string
		into       interface{ UnmarshalText([]byte) error }
	}{{"--cpu", cpu, &c}, {"--memory", memory, &m}, {"--scratch", scratch, &s}} {
		if err := f.into.UnmarshalText([]byte(f.text)); err != nil {
			return scheduler.Resources{}, fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	return scheduler.Resources{CPUMillis: c.Millis(), MemoryBytes: uint64(m), ScratchBytes: uint64(s)}, nil
}

// grantTable writes one grant as keys and values.
func grantTable(tw *tabwriter.Writer, g api.GrantView) {
	keyValues(tw, "grant", g.ID, "site", g.Site, "grantee", g.Grantee, "state", g.State,
		"slice", resources(g.Resources), "from", g.Start.Local().Format(time.DateTime), "until", g.End.Local().Format(time.DateTime))
	if g.Withdrawn {
		keyValues(tw, "withdrawn", fmt.Sprintf("granted until %s", g.Granted.Local().Format(time.DateTime)))
	}
	if g.Released {
		keyValues(tw, "released", fmt.Sprintf("granted until %s", g.Granted.Local().Format(time.DateTime)))
	}
	if g.WithdrawalRefused {
		keyValues(tw, "withdrawal refused", "it gave less notice than the grant's, and is kept as proof")
	}
	keyValues(tw, "price", fmt.Sprintf("%s per vCPU-hour, %s per GiB-hour", g.CPUPerHour, g.MemoryGiBPerHour),
		"notice", g.Notice, "cost", g.Cost+" for the whole slice")
}

func newWholesaleListCmd() *cobra.Command {
	return apiGetCmd("list", "The live slices the local node granted as a site and holds as a retailer", "/v1/wholesale",
		func(tw *tabwriter.Writer, v api.WholesaleView, wide bool) {
			fmt.Fprintln(tw, "GRANT\tROLE\tSITE\tGRANTEE\tSTATE\tSLICE\tFROM\tUNTIL\tCOST")
			for _, g := range v.Grants {
				id, until := g.ID, g.End.Local().Format(time.DateTime)
				if !wide {
					id = id[:min(len(id), 8)]
				}
				switch { // the grantee's own word first
				case g.Released:
					until += " (released)"
				case g.Withdrawn:
					until += " (withdrawn)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, g.Role, peerID(g.Site, wide), peerID(g.Grantee, wide), g.State,
					resources(g.Resources), g.Start.Local().Format(time.DateTime), until, g.Cost)
			}
		})
}

func newWholesaleWithdrawCmd() *cobra.Command {
	return shortenCmd(&cobra.Command{
		Use:   "withdraw GRANT",
		Short: "End a slice this site granted sooner, after its notice",
		Long: `withdraw ends the slice of the grant GRANT (its ID, or a prefix that names one
live grant of this node) at --at or --in from now, sooner than granted, and
tells the retailer that holds it (SPEC 6.7). The end must be at least the
grant's notice from now: a withdrawal with less is refused, and nothing is
signed. Leases already running on the slice run to their own end. If the
retailer was not reached, the withdrawal stands and the same command sends
it again.`,
		Example: "  cuivre wholesale withdraw 3f2a9c1e --in 720h",
	}, "site", func(c *api.Client, id string, end time.Time) (api.GrantView, error) {
		var w api.WithdrawView
		if err := c.Do("POST", "/v1/wholesale/slices/"+id+"/withdraw", api.Withdrawal{End: end}, &w); err != nil {
			return api.GrantView{}, err
		}
		if !w.Delivered {
			return w.Grant, fmt.Errorf("the withdrawal is made, but the retailer was not told (%s): run the same command again to send it", w.Error)
		}
		return w.Grant, nil
	})
}

func newWholesaleReleaseCmd() *cobra.Command {
	return shortenCmd(&cobra.Command{
		Use:   "release GRANT",
		Short: "Give a slice back to its site sooner, after its notice",
		Long: `release gives the slice of the grant GRANT (its ID, or a prefix that names one
live slice this node holds) back to its site at --at or --in from now, sooner
than granted (SPEC 6.7). The end must be at least the grant's notice from now,
as the site's withdrawals must: the slice is paid for until then.`,
		Example: "  cuivre wholesale release 3f2a9c1e --in 720h",
	}, "retailer", func(c *api.Client, id string, end time.Time) (g api.GrantView, err error) {
		return g, c.Do("POST", "/v1/wholesale/slices/"+id+"/release", api.Withdrawal{End: end}, &g)
	})
}

// shortenCmd completes cmd, a command that ends sooner a slice this node
// holds in role, named by a grant ID prefix, with do.
func shortenCmd(cmd *cobra.Command, role string, do func(c *api.Client, id string, end time.Time) (api.GrantView, error)) *cobra.Command {
	var (
		output format
		at     string
		in     time.Duration
	)
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		end, err := endOf("--at", at, "--in", in, time.Now())
		if err != nil {
			return err
		}
		c, err := apiClient()
		if err != nil {
			return err
		}
		var v api.WholesaleView
		if err := c.Get("/v1/wholesale", &v); err != nil {
			return err
		}
		id, err := grantByPrefix(v.Grants, role, args[0])
		if err != nil {
			return err
		}
		g, err := do(c, id, end)
		if g.ID != "" {
			if rerr := render(cmd.OutOrStdout(), output, g, func(tw *tabwriter.Writer, wide bool) { grantTable(tw, g) }); rerr != nil {
				return rerr
			}
		}
		return err
	}
	cmd.Flags().StringVar(&at, "at", "", "when the slice ends, RFC 3339")
	cmd.Flags().DurationVar(&in, "in", 0, "how long from now the slice ends, such as 720h")
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

// endOf is when a slice ends, given either as a time (the flag timeFlag,
// RFC 3339) or as a length from from (the flag lengthFlag), not both.
func endOf(timeFlag, at, lengthFlag string, length time.Duration, from time.Time) (time.Time, error) {
	switch {
	case at != "" && length != 0:
		return time.Time{}, fmt.Errorf("give %s or %s, not both", timeFlag, lengthFlag)
	case at != "":
		end, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w (write it as 2027-01-07T00:00:00Z)", timeFlag, err)
		}
		return end, nil
	case length > 0:
		return from.Add(length), nil
	}
	return time.Time{}, fmt.Errorf("say when the slice ends: %s 720h, or %s 2027-01-07T00:00:00Z", lengthFlag, timeFlag)
}

// grantByPrefix returns the ID of the one live grant of this node, in role
// (site or retailer), whose hex ID starts with prefix.
func grantByPrefix(grants []api.GrantView, role, prefix string) (string, error) {
	var found []string
	for _, g := range grants {
		if g.Role == role && strings.HasPrefix(g.ID, strings.ToLower(prefix)) {
			found = append(found, g.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no live slice this node holds as %s has an ID starting %q: see cuivre wholesale list", role, prefix)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q names %d grants: give more of the ID", prefix, len(found))
}

func newWholesaleEvidenceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "evidence SITE",
		Short: "Write what this node presents to an auditor of a site, as JSON",
		Long: `evidence writes, as JSON on standard output, every grant of the site SITE the
local node holds or refused as off its terms, live or ended, each with the
tariff it was asked at and any withdrawal (SPEC 6.7, audit). Hand the file to
whoever audits the site: cuivre wholesale audit SITE FILE.`,
		Example: "  cuivre wholesale evidence 12D3KooW... > evidence.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var ev []record.Evidence
			if err := c.Get("/v1/wholesale/evidence?site="+url.QueryEscape(args[0]), &ev); err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), ev)
		},
	}
	addDataDir(cmd)
	return cmd
}

func newWholesaleAuditCmd() *cobra.Command {
	var output format
	cmd := &cobra.Command{
		Use:   "audit SITE [EVIDENCE...]",
		Short: "Check that a site gave every retailer its published terms, and does not squeeze them",
		Long: `audit reads the site's published tariff and capacity record from the DHT,
through the local node, and checks them and the evidence files retailers
present (written by cuivre wholesale evidence) against SPEC 6.7's rules:

  grant-terms        every grant is at the tariff it names, which the site signed
  withdrawal-notice  every withdrawal gives the grant's notice
  margin-squeeze     the site's own retail price covers its wholesale price plus
                     the retail cost it publishes

Evidence the site did not sign is discarded, not held against it. The command
exits with status 1 when the site fails a rule.`,
		Example: "  cuivre wholesale audit 12D3KooW... retailer-a.json retailer-b.json",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.AuditRequest{Site: args[0], Evidence: []record.Evidence{}}
			for _, f := range args[1:] {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				var ev []record.Evidence
				if err := json.Unmarshal(b, &ev); err != nil {
					return fmt.Errorf("%s: not evidence written by cuivre wholesale evidence: %w", f, err)
				}
				req.Evidence = append(req.Evidence, ev...)
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			var rep record.AuditReport
			if err := c.Do("POST", "/v1/wholesale/audit", req, &rep); err != nil {
				return err
			}
			err = render(cmd.OutOrStdout(), output, rep, func(tw *tabwriter.Writer, wide bool) {
				verdict := "passes"
				if !rep.Pass() {
					verdict = fmt.Sprintf("FAILS (%d findings)", len(rep.Findings))
				}
				keyValues(tw, "site", rep.Site.String(), "grants checked", fmt.Sprint(rep.Grants), "verdict", verdict)
				for _, f := range rep.Findings {
					keyValues(tw, f.Rule, f.Message)
				}
				for _, d := range rep.Discarded {
					keyValues(tw, "discarded", d)
				}
			})
			if err == nil && !rep.Pass() {
				err = fmt.Errorf("the site fails the audit: %d findings", len(rep.Findings))
			}
			return err
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}

func newWholesaleBillCmd() *cobra.Command {
	var output format
	cmd := &cobra.Command{
		Use:   "bill",
		Short: "Bill every retailer the rent of its slices since the last bill",
		Long: `bill makes, for each slice this site granted, a receipt of its rent from the
end of the last bill (or the slice's start) until now or the slice's end, at
the grant's price, used or not (SPEC 4.5, 6.7), and asks the retailer to
countersign it. It first asks again for the bills left unsigned, which it
lists too. A bill the retailer refuses, or that does not reach it, is kept
unsigned: cuivre billing export shows it so, a retailer that does not pay, and
the command exits 1. The daemon does the same every wholesale.bill_every
(default 24h); run this to bill at once.`,
		Example: "  cuivre wholesale bill\n  cuivre wholesale bill -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var bills []api.RentView
			if err := c.Do("POST", "/v1/wholesale/rent", nil, &bills); err != nil {
				return err
			}
			unsigned := 0
			err = render(cmd.OutOrStdout(), output, bills, func(tw *tabwriter.Writer, wide bool) {
				fmt.Fprintln(tw, "GRANT\tRETAILER\tBILL\tFROM\tUNTIL\tAMOUNT\tCOUNTERSIGNED")
				for _, b := range bills {
					signed := "yes"
					if !b.Countersigned {
						signed = "no: " + b.Error
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", b.Grant.ID[:min(len(b.Grant.ID), 8)], peerID(b.Grant.Grantee, wide), b.Epoch,
						b.From.Local().Format(time.DateTime), b.Until.Local().Format(time.DateTime), b.Amount, signed)
				}
				if len(bills) == 0 {
					fmt.Fprintln(tw, "nothing to bill since the last bill")
				}
			})
			for _, b := range bills {
				if !b.Countersigned {
					unsigned++
				}
			}
			if err == nil && unsigned > 0 {
				err = fmt.Errorf("%d bills not countersigned by their retailer", unsigned)
			}
			return err
		},
	}
	addDataDir(cmd)
	addOutput(cmd, &output)
	return cmd
}
