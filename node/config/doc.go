// Package config is the daemon's configuration: the settings of one provider
// node (listen addresses, bootstrap peers, NAT traversal, the local API, the
// metrics address, the capacity it sells, its prices and labels, executor
// limits and logging), how they are read (flag > CUIVRE_* environment >
// config.yaml > default), how they are checked, and the data directory that
// `cuivre init` creates: a commented config.yaml and the node's Ed25519
// identity.key.
//
// Config is a plain struct written in YAML. Start from Default (the zero Config
// does not validate, and says why field by field); Load layers a file, the
// environment and flags over it and validates the result; Market turns it into
// the scheduler's MarketConfig once the daemon knows its peer ID and the
// resources Detect found.
//
// Nothing here is safe for concurrent mutation, and nothing needs to be: a
// Config is a value, copied freely; reloading (SIGHUP) builds a new one.
package config
