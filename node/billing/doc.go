// Package billing is the node's statement of account: it reads the usage
// receipts a node keeps (SPEC 6.4), as a provider and as a requester, opens
// and verifies each sealed envelope, and adds up what the node earned per
// customer and spent per provider and operator, per currency, exactly.
//
// Build is pure: it takes copies of the store's records and a window, and
// reads no clock and no file, so the node, the API and the tests build the
// same statement from the same records, and it is safe for concurrent use. Amounts are integers of nano-units
// from the receipts to the totals (math/big past 64 bits), and become
// decimal strings only when written; nothing is ever a float.
//
// # What counts
//
// A receipt is the node's earning when it is the receipt's provider, and its
// spend when it is the receipt's requester (a node that leased to itself
// has both). A receipt is countersigned when its countersignature opens,
// names the receipt's requester and covers these exact envelope bytes; an
// operator bills from those pairs, so every total gives the sum of all the
// receipts and the part countersigned. A receipt that does not open is left
// out and listed in Statement.Skipped with the reason, never guessed at.
package billing
