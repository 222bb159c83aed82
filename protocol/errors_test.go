package protocol

import (
	"errors"
	"testing"

	"github.com/cuivre/cuivre/protocol/pb"
)

func TestErrorWireRoundTrip(t *testing.T) {
	err := Errorf(pb.Code_CODE_PRICE_ABOVE_CEILING, "total %d > %d", 3, 2)
	back := FromPB(ToPB(err))
	if !errors.Is(back, &Error{Code: pb.Code_CODE_PRICE_ABOVE_CEILING}) || back.Error() != err.Error() {
		t.Fatalf("round trip: %v", back)
	}
	if got := CodeOf(errors.New("plain")); got != pb.Code_CODE_INTERNAL {
		t.Fatalf("CodeOf(plain) = %v", got)
	}
	if ToPB(nil) != nil || FromPB(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}
