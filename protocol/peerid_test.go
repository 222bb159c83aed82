package protocol

import (
	"encoding/hex"
	"testing"
)

// TestShortPeerID: the short form is the end of the ID's text, which
// peer.ID.String writes; cmd/cuivre checks it against libp2p on random keys.
func TestShortPeerID(t *testing.T) {
	// 12D3KooWAxPaA4qM1LRjJLT3DqKFtJxP1Fo4XAE56GHnz16goSsQ
	id, err := hex.DecodeString("00240801122010e9eba7dd3a48cdbe1255efd022b21907dbf16347f9b21e7ca3b885c37a982f")
	if err != nil {
		t.Fatal(err)
	}
	if got := ShortPeerID(string(id)); got != "z16goSsQ" {
		t.Errorf("ShortPeerID = %q, want z16goSsQ", got)
	}
	if got := ShortPeerID(""); got != "" {
		t.Errorf("ShortPeerID of nothing = %q", got)
	}
}
