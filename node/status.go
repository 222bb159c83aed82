package node

import (
	"github.com/cuivre/cuivre/protocol/record"
	"github.com/cuivre/cuivre/scheduler"
)

// Identity is what `cuivre id` shows.
type Identity struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// Identify returns the node's peer ID and its addresses with /p2p/.
func (n *Node) Identify() Identity {
	id := Identity{ID: n.ID().String()}
	for _, a := range n.host.Addrs() {
		id.Addrs = append(id.Addrs, a.String()+"/p2p/"+n.ID().String())
	}
	return id
}

// PeerInfo is one connected peer, as `cuivre peers` shows it.
type PeerInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// Peers returns the connected peers, sorted by ID.
func (n *Node) Peers() []PeerInfo {
	var out []PeerInfo
	for _, p := range n.host.Network().Peers() {
		pi := PeerInfo{ID: p.String()}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr().String())
		}
		out = append(out, pi)
	}
	return out
}

// NodeStatus is what `cuivre node status` shows.
type NodeStatus struct {
	ID           string              `json:"id"`
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

// Status returns the node's market and network state.
func (n *Node) Status() NodeStatus {
	st := n.MarketState()
	out := NodeStatus{
		ID: n.ID().String(), Capacity: st.Capacity, Committed: st.Committed, Reserved: st.Reserved, Free: st.Free,
		Leases: st.Leases, Reservations: st.Reservations, LoadPermille: st.LoadPermille, Draining: st.Draining,
		Peers: len(n.host.Network().Peers()), DHTPeers: n.RoutingTableSize(),
	}
	if n.store == nil {
		return out
	}
	rs, err := n.store.Receipts()
	if err != nil {
		n.log.Warn("read receipts", "err", err)
		return out
	}
	out.Earnings, out.Countersigned = map[string]uint64{}, map[string]uint64{}
	for _, r := range rs {
		rec, err := record.OpenReceipt(r.Envelope)
		if err != nil {
			continue
		}
		a := rec.GetAmount()
		out.Earnings[a.GetCurrency()] += a.GetNanos()
		if len(r.Countersignature) > 0 {
			out.Countersigned[a.GetCurrency()] += a.GetNanos()
		}
	}
	return out
}
