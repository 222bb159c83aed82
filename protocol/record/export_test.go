package record

// SealBytes seals an encoded payload under a kind's domain, for the fuzz
// targets that reach the checks behind a valid signature.
var SealBytes = sealBytes
