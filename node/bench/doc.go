// Package bench is the node room's benchmark: it starts a devnet and
// measures the federation on this machine together with the floor it stands
// on (a raw libp2p stream, a raw DHT lookup on the same mesh), so that the
// figures hold as ratios on a noisy shared machine. It also drives the
// scheduler's core alone and a daemon in its own process. `cuivre bench`
// runs it and adds the simulator's figures.
package bench
