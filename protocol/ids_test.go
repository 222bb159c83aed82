package protocol

import "testing"

// protocolID stands in for go-libp2p's protocol.ID, a string type.
type protocolID string

func TestMaxMsgSize(t *testing.T) {
	if got := MaxMsgSize(OfferID); got != MaxOfferMsg {
		t.Errorf("MaxMsgSize(OfferID) = %d, want %d", got, MaxOfferMsg)
	}
	if got := MaxMsgSize(protocolID(ModuleID)); got != MaxModuleMsg {
		t.Errorf("MaxMsgSize of a typed ModuleID = %d, want %d", got, MaxModuleMsg)
	}
	if got := MaxMsgSize("/cuivre/unknown/1.0.0"); got != 0 {
		t.Errorf("MaxMsgSize of an unknown protocol = %d, want 0", got)
	}
}
