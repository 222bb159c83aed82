package protocol

import (
	"errors"
	"testing"
)

func TestCheckEpoch(t *testing.T) {
	if err := CheckEpoch(2, 1); !errors.Is(err, ErrStaleEpoch) {
		t.Errorf("CheckEpoch(2, 1) = %v, want stale epoch", err)
	}
	if err := CheckEpoch(2, 2); err != nil {
		t.Errorf("CheckEpoch(2, 2) = %v", err)
	}
}
