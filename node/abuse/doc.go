// Package abuse, in the node room, holds the tests of what an open
// federation's peers may try against a node: forged records (forgery_test.go),
// and the mutations and the report they share. `make test` runs a smoke of
// each; `make abuse` runs them at full size (CUIVRE_ABUSE=full) and
// CUIVRE_ABUSE_REPORT=path appends their report to a file.
package abuse
