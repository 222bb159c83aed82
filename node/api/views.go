package api

import "github.com/cuivre/cuivre/scheduler"

// Identity is what `cuivre id` shows: the peer ID, the addresses to
// bootstrap from (each ending in /p2p/<ID>), and what the node knows of its
// reachability.
type Identity struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
	Reach Reach    `json:"reach"`
}

// Reach is what a node knows of its own reachability.
type Reach struct {
	// Reachability is public, private or unknown: whether peers can dial
	// the node directly (AutoNAT, or the configured override).
	Reachability string `json:"reachability"`
	// Announced are the addresses the node gives the federation.
	Announced []string `json:"announced"`
	// Listen are the addresses it listens on, on its interfaces.
	Listen []string `json:"listen"`
	// Observed are the addresses peers see it at (behind a NAT, the
	// router's).
	Observed []string `json:"observed,omitempty"`
	// Relayed are its addresses through a relay, held while it is not
	// reachable.
	Relayed []string `json:"relayed,omitempty"`
	// Reachable and Unreachable are the addresses AutoNAT v2 confirmed
	// dialable and not.
	Reachable   []string `json:"reachable,omitempty"`
	Unreachable []string `json:"unreachable,omitempty"`
	// RelayService says whether it relays for peers behind NATs now.
	RelayService bool `json:"relay_service"`
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
	Reach        Reach               `json:"reach"`
	// Earnings sums the usage receipts in the store, by currency, in
	// nano-units; Countersigned the part the requesters countersigned.
	Earnings      map[string]uint64 `json:"earnings_nanos,omitempty"`
	Countersigned map[string]uint64 `json:"countersigned_nanos,omitempty"`
	// Wholesale is the node's slices: granted as a site, held as a
	// retailer (SPEC 6.7); left out when it has neither a tariff nor a
	// grant.
	Wholesale *WholesaleStatus `json:"wholesale,omitempty"`
}

// WholesaleStatus sums a node's live slice grants.
type WholesaleStatus struct {
	Site    bool                `json:"site"` // it publishes a tariff
	Granted scheduler.Resources `json:"granted"`
	Grants  int                 `json:"grants"` // live grants it made
	Held    scheduler.Resources `json:"held"`
	Holds   int                 `json:"holds"` // live grants it holds
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
