// Package specyaml, in the protocol room, holds the helpers for parsing YAML
// documents node by node with line- and column-precise errors (SpecError),
// shared by the job spec parser of package jobspec and the scenario parser of
// the simulator.
//
// A parser embeds a Reader and gives it a Fail function; the Reader reports
// each mistake through it, at the node where it is written, and the parser
// turns it into its own error type. Of cuivre it imports only package
// protocol, for Quote, so that messages quote values one way.
package specyaml
