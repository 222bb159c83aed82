package api

import "github.com/cuivre/cuivre/scheduler"

// Identity is what `cuivre id` shows.
type Identity struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// Peer is one connected peer, as `cuivre peers` shows it.
type Peer struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// NodeStatus is what `cuivre node status` shows.
type NodeStatus struct {
	ID string `json:"id"`
	// Role is what the node does: provider (sells capacity, and buys) or
	// requester (only buys: its market fields are zero).
	Role         string              `json:"role"`
	Capacity     scheduler.Resources `json:"capacity"`
	Committed    scheduler.Resources `json:"committed"`
	Reserved     scheduler.Resources `json:"reserved"`
	Free         scheduler.Resources `json:"free"`
	Leases       int                 `json:"leases"`
	Reservations int                 `json:"reservations"`
	LoadPermille uint32              `json:"load_permille"`
	Draining     bool                `json:"draining"`
	Peers        int                 `json:"peers"`
	DHTPeers     int                 `json:"dht_peers"`
	// Earnings sums the usage receipts in the store, by currency, in
	// nano-units; Countersigned the part the requesters countersigned.
	Earnings      map[string]uint64 `json:"earnings_nanos,omitempty"`
	Countersigned map[string]uint64 `json:"countersigned_nanos,omitempty"`
}

// ProviderView is a provider as `cuivre node list` shows it: what its signed
// capacity record in the DHT claims.
type ProviderView struct {
	ID          string              `json:"id"`
	Labels      map[string]string   `json:"labels"`
	Total       scheduler.Resources `json:"total"`
	Free        scheduler.Resources `json:"free"`
	CPUPerHour  string              `json:"cpu_per_hour"`
	MemPerHour  string              `json:"memory_gib_per_hour"`
	RecordAgeMs int64               `json:"record_age_ms"`
}
