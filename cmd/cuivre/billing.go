package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cuivre/cuivre/node/billing"
)

func newBillingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "billing",
		Short: "Statements of what the local node earned and spent, from its usage receipts",
	}
	cmd.AddCommand(newBillingExportCmd())
	return cmd
}

func newBillingExportCmd() *cobra.Command {
	var since, until string
	out := billingFormat("table")
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the statement of the receipts the local node keeps, as a table, CSV, JSON or YAML",
		Long: `export builds a statement from the usage receipts in the local node's store
(SPEC 6.4), through its daemon's API, each receipt's signature verified:

  earnings  the node as a provider: one row per receipt (lease, epoch, job,
            customer, start and end, CPU and memory reserved, amount), then
            totals per customer and per currency;
  spend     the node as a customer: one row per receipt with its provider and
            the operator label of the offer leased ("(unknown)" once the node
            no longer holds that offer), then totals per provider, per
            operator and per currency.

Amounts are exact, in decimal with their currency. A receipt its customer has
not countersigned is shown and marked; every total gives the sum of all the
receipts and the part countersigned, which is what an operator bills from.

--since and --until select receipts by when their run ended: a date
(2026-12-01, UTC) or an RFC 3339 time; --since is inclusive, --until
exclusive, and a date as --until includes that whole day.

-o csv writes one table for a spreadsheet: a row of kind "receipt" per
receipt, then a row of kind "total" per total ("by" says over what: customer,
provider, operator or currency). Its amounts are decimals without their
currency, which has its own column, and again as integers of nano-units.
-o json writes the statement as GET /v1/billing answers it: rows and totals,
amounts as strings of nano-units and as decimals; -o yaml the same with the
same keys. -o wide is the table with whole peer and lease IDs.`,
		Example: "  cuivre billing export\n  cuivre billing export --since 2026-12-01 --until 2026-12-31 -o csv > december.csv\n" +
			"  cuivre billing export --since 2026-12-01T08:00:00+01:00 -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := billing.ParseWindow(since, until)
			if err != nil {
				return err
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			var st billing.Statement
			if err := c.Get("/v1/billing?"+w.Query().Encode(), &st); err != nil {
				return err
			}
			if out == "yaml" {
				return writeYAML(cmd.OutOrStdout(), st)
			}
			return billing.Write(cmd.OutOrStdout(), billing.Format(out), st)
		},
	}
	addDataDir(cmd)
	cmd.Flags().StringVar(&since, "since", "", "receipts that ended at or after this date or RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "receipts that ended before this RFC 3339 time, or by the end of this date")
	cmd.Flags().VarP(&out, "output", "o", "table, wide, csv, json or yaml")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(billingFormats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// billingFormat is billing export's -o: the statement's own formats, and
// yaml as every command writes it.
type billingFormat string

var billingFormats = append(slices.Clone(billing.Formats), "yaml")

func (f *billingFormat) String() string { return string(*f) }
func (f *billingFormat) Type() string   { return "format" }

func (f *billingFormat) Set(s string) error {
	if !slices.Contains(billingFormats, s) {
		return fmt.Errorf("use %s", strings.Join(billingFormats, ", "))
	}
	*f = billingFormat(s)
	return nil
}
