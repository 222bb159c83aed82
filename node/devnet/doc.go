// Package devnet runs a federation of real cuivre nodes in one process, on
// loopback: each node a libp2p host on QUIC in the private DHT, with its own
// Ed25519 key and bbolt store, all sharing one wazero executor so that a
// module compiles once for the whole process. It is what `cuivre devnet`, the
// demo, the integration tests and the benchmarks start.
//
// The nodes' kinds (labels, capacity, prices) come from a small profile file,
// examples/devnet/profiles.yaml by default (embedded). Node 0 is the first up
// and every other node joins through it; node 0 also serves the local API and
// writes its address, token and key into the devnet's directory, so that
//
//	CUIVRE_DIR=<dir> cuivre job run examples/jobs/hello.yaml
//
// works from another terminal, node 0 acting as the requester.
package devnet
