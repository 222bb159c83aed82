package protocol

import "math/big"

// base58 is the alphabet of base58btc, in which a peer ID is written.
const base58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// ShortPeerID is the one short form of a peer ID, in tables and messages:
// the last 8 characters of its text, the base58btc of its bytes. Every
// Ed25519 peer ID's text begins 12D3KooW, so its end is what tells peers
// apart; 8 characters are 47 bits, unique enough among the peers a node
// meets, and a table shows the whole ID when asked (-o wide). id is the
// ID's bytes, as the protocol's and the scheduler's types hold it.
func ShortPeerID(id string) string {
	if id == "" {
		return ""
	}
	// The last 8 digits of a number in base 58 are those of its remainder
	// by 58^8: no need to write out the whole ID.
	n := new(big.Int).SetBytes([]byte(id))
	n.Mod(n, new(big.Int).Exp(big.NewInt(58), big.NewInt(8), nil))
	r := n.Int64()
	b := make([]byte, 8)
	for i := range b {
		b[len(b)-1-i] = base58[r%58]
		r /= 58
	}
	return string(b)
}
