package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/scheduler"
)

// Conversions between the Go records and their storepb form. Times are stored
// as Unix milliseconds, 0 for the zero time, as on the wire (SPEC 2.3), so a
// time reads back truncated to the millisecond, in UTC. Durations are stored
// as whole milliseconds.

func msOf(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	ms := t.UnixMilli()
	if ms <= 0 {
		return 0
	}
	return uint64(ms)
}

func timeOf(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return protocol.FromUnixMs(ms)
}

func durationMs(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d.Milliseconds())
}

func resourcesToPB(r scheduler.Resources) *pb.Resources {
	return &pb.Resources{CpuMillis: r.CPUMillis, MemoryBytes: r.MemoryBytes, ScratchBytes: r.ScratchBytes}
}

func resourcesFromPB(r *pb.Resources) scheduler.Resources {
	return scheduler.Resources{CPUMillis: r.GetCpuMillis(), MemoryBytes: r.GetMemoryBytes(), ScratchBytes: r.GetScratchBytes()}
}

func priceToPB(p scheduler.Price) *pb.Price {
	return &pb.Price{
		Currency:                p.Currency,
		CpuNanosPerSecond:       p.CPUNanosPerSecond,
		MemoryNanosPerGibSecond: p.MemoryNanosPerGiBSecond,
		EgressNanosPerGib:       p.EgressNanosPerGiB,
	}
}

func priceFromPB(p *pb.Price) scheduler.Price {
	return scheduler.Price{
		Currency:                p.GetCurrency(),
		CPUNanosPerSecond:       p.GetCpuNanosPerSecond(),
		MemoryNanosPerGiBSecond: p.GetMemoryNanosPerGibSecond(),
		EgressNanosPerGiB:       p.GetEgressNanosPerGib(),
	}
}

func amountToPB(a scheduler.Amount) *pb.Amount {
	return &pb.Amount{Currency: a.Currency, Nanos: a.Nanos}
}

func amountFromPB(a *pb.Amount) scheduler.Amount {
	return scheduler.Amount{Currency: a.GetCurrency(), Nanos: a.GetNanos()}
}

func errorToPB(e *protocol.Error) *pb.Error {
	if e == nil {
		return nil
	}
	return &pb.Error{Code: e.Code, Message: e.Msg}
}

func errorFromPB(e *pb.Error) *protocol.Error {
	if e == nil {
		return nil
	}
	return &protocol.Error{Code: e.Code, Msg: e.Message}
}

// clone returns a copy of b, nil for an empty b: for bytes read straight out
// of bbolt's memory map, which are only valid inside their transaction.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// orNil returns b, or nil for an empty b, so that an empty field reads back
// as nil whatever went in. proto.Unmarshal copies bytes fields out of its
// input, so a decoded record never aliases bbolt's memory map.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// leaseKey is a lease's key in the leases and receipts buckets: the 16-byte
// lease ID, then the epoch, big-endian, so that keys sort by ID then epoch.
func leaseKey(id string, epoch uint64) []byte {
	k := make([]byte, 0, protocol.LeaseIDSize+8)
	k = append(k, id...)
	return binary.BigEndian.AppendUint64(k, epoch)
}

func splitLeaseKey(k []byte) (string, uint64, error) {
	if len(k) != protocol.LeaseIDSize+8 {
		return "", 0, fmt.Errorf("lease key is %d bytes, want %d: the store is damaged", len(k), protocol.LeaseIDSize+8)
	}
	return string(k[:protocol.LeaseIDSize]), binary.BigEndian.Uint64(k[protocol.LeaseIDSize:]), nil
}

// checkLeaseKey checks a lease ID and epoch as SPEC 2.3 and 6.2 define them.
func checkLeaseKey(id string, epoch uint64) error {
	if len(id) != protocol.LeaseIDSize {
		return protocol.Errorf(protocol.CodeMalformed, "lease id is %d bytes, want %d", len(id), protocol.LeaseIDSize)
	}
	if epoch == 0 {
		return protocol.Errorf(protocol.CodeMalformed, "lease %x has epoch 0: epochs start at 1", id)
	}
	return nil
}

func validLeaseState(s pb.LeaseState) bool {
	return s > pb.LeaseState_LEASE_STATE_UNSPECIFIED && s <= pb.LeaseState_LEASE_STATE_EXPIRED
}
