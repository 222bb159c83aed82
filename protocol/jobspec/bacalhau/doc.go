// Package bacalhau, in the protocol room, converts a Bacalhau v1 job spec
// (YAML or JSON, with a wasm engine) into a cuivre job spec, for customers
// who come from Bacalhau: Convert returns the cuivre document and, one by
// one, what of the Bacalhau job it could not carry over and why.
//
// It reads the job as Bacalhau's models package defines it (Job, Task,
// SpecConfig, InputSource, ResourcesConfig, TimeoutConfig,
// LabelSelectorRequirement), with the wasm engine's parameters of both
// shapes Bacalhau has had: EntryModule an input source (v1.2 to v1.5) or the
// target of one (later).
package bacalhau
