package protocol

import "crypto/sha256"

// Protocol IDs, one per exchange (SPEC 6). multistream-select matches IDs
// exactly, so an ID changes only with a new major version, which a peer
// offers beside the old ones while both live (SPEC 10).
//
// They are untyped string constants, so that they convert to go-libp2p's
// protocol.ID where they are used, and this package needs no libp2p.
const (
	OfferID   = "/cuivre/offer/1.0.0"
	LeaseID   = "/cuivre/lease/1.0.0"
	WatchID   = "/cuivre/watch/1.0.0"
	ReceiptID = "/cuivre/receipt/1.0.0"
	ModuleID  = "/cuivre/module/1.0.0"
	BlocksID  = "/cuivre/blocks/1.0.0"
	// WholesaleID is the exchange of slices between a site and a retailer
	// (SPEC 6.7).
	WholesaleID = "/cuivre/wholesale/1.0.0"
)

// DHTPrefix is the protocol prefix of the private Kademlia DHT (SPEC 4.1); with
// go-libp2p-kad-dht it yields the protocol /cuivre/kad/1.0.0.
const DHTPrefix = "/cuivre"

// CapacityNamespace is the DHT value namespace of capacity records (SPEC 4.4):
// the key is "/cuivre-capacity/" followed by the provider's binary peer ID.
const CapacityNamespace = "cuivre-capacity"

// TariffNamespace is the DHT value namespace of wholesale tariffs (SPEC 4.5):
// the key is "/cuivre-tariff/" followed by the site's binary peer ID.
const TariffNamespace = "cuivre-tariff"

// Maximum size in bytes of one framed message on each protocol, length prefix
// excluded (SPEC 7). A larger frame is refused with CODE_TOO_LARGE.
const (
	MaxOfferMsg     = 64 << 10
	MaxLeaseMsg     = 1 << 20
	MaxWatchMsg     = 1 << 20
	MaxReceiptMsg   = 64 << 10
	MaxModuleMsg    = 1<<20 + 4<<10 // a 1 MiB chunk and its header
	MaxBlocksMsg    = 2<<20 + 4<<10 // a block of MaxBlock bytes and its header; a request of MaxBlocksAsked CIDs
	MaxWholesaleMsg = 64 << 10
	MaxRecordSize   = 16 << 10 // a capacity record or tariff envelope in the DHT
)

// Other limits (SPEC 7).
const (
	MaxModuleChunk = 1 << 20  // bytes of module data in one ModuleChunk
	MaxBlock       = 2 << 20  // bytes of one block of a DAG (kubo's limit is 2 MiB too)
	MaxBlocksAsked = 64       // CIDs in one BlockRequest
	MaxLogChunk    = 64 << 10 // bytes of log data in one LogChunk
	MaxLog         = 4 << 20  // bytes of each of a run's streams a provider keeps (SPEC 6.3)
	MaxStdin       = 256 << 10
	NonceSize      = 16
	LeaseIDSize    = 16
	GrantIDSize    = 16
	TariffHashSize = 32 // sha2-256 of a sealed tariff envelope (SPEC 6.7)
)

// MaxMsgSize returns the frame limit of a protocol, or 0 for an unknown one.
// It takes a string or go-libp2p's protocol.ID alike.
func MaxMsgSize[ID ~string](id ID) int {
	switch id {
	case OfferID:
		return MaxOfferMsg
	case LeaseID:
		return MaxLeaseMsg
	case WatchID:
		return MaxWatchMsg
	case ReceiptID:
		return MaxReceiptMsg
	case ModuleID:
		return MaxModuleMsg
	case BlocksID:
		return MaxBlocksMsg
	case WholesaleID:
		return MaxWholesaleMsg
	}
	return 0
}

// SiteLeaseID is the lease ID under which a retailer leases, on the site of
// its slice, a run it sold under the customer's lease ID retail (SPEC 6.8):
// the first 16 bytes of sha2-256 of "cuivre-retail/" and that ID. Its own,
// so that the receipts of the two legs never share a key; derived, so that
// a retry, and an auditor, find it.
func SiteLeaseID(retail []byte) []byte {
	h := sha256.Sum256(append([]byte("cuivre-retail/"), retail...))
	return h[:LeaseIDSize]
}
