// Package node is the cuivre daemon: the libp2p host, the DHT, the stream
// handlers of each protocol, the executors, the store, the local HTTP API and the
// metrics. It drives the scheduler with real time and real messages.
package node
