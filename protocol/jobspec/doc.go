// Package jobspec, in the protocol room, reads the job document a customer
// writes, in YAML or JSON (SPEC 5): ParseJobSpecFile checks it strictly, with
// errors located by file, line and column, and JobSpec.Job turns it into the
// canonical pb.Job, which package protocol validates.
//
// It is apart from package protocol so that the wire contract, which the
// scheduler imports, carries no YAML parser.
package jobspec
