package abuse

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	p2precord "github.com/libp2p/go-libp2p/core/record"
	envpb "github.com/libp2p/go-libp2p/core/record/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
	"github.com/cuivre/cuivre/protocol/record"
)

// FlipBits returns a copy of env with 1 to 3 random bits flipped anywhere in
// it: the envelope's framing, its key, payload type, payload or signature.
func FlipBits(rng *rand.Rand, env []byte) []byte {
	out := slices.Clone(env)
	for range 1 + rng.IntN(3) {
		i := rng.IntN(len(out) * 8)
		out[i/8] ^= 1 << (i % 8)
	}
	return out
}

// SwapField sets one field of msg, chosen at random among those whose value
// differs in other, to other's value, and returns the field's name (empty if
// the two messages hold the same values). msg is changed in place.
func SwapField(rng *rand.Rand, msg, other proto.Message) string {
	m, o := msg.ProtoReflect(), other.ProtoReflect()
	var differ []protoreflect.FieldDescriptor
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Get(fd).Equal(o.Get(fd)) {
			differ = append(differ, fd)
		}
	}
	if len(differ) == 0 {
		return ""
	}
	fd := differ[rng.IntN(len(differ))]
	if o.Has(fd) {
		m.Set(fd, o.Get(fd))
	} else {
		m.Clear(fd)
	}
	return string(fd.Name())
}

// Splice returns env with its payload replaced by msg's canonical encoding
// and everything else, signature included, kept: a record changed by
// someone without the signer's key.
func Splice(env []byte, msg proto.Message) ([]byte, error) {
	var e envpb.Envelope
	if err := proto.Unmarshal(env, &e); err != nil {
		return nil, err
	}
	payload, err := protocol.Canonical(msg)
	if err != nil {
		return nil, err
	}
	e.Payload = payload
	return proto.Marshal(&e)
}

// domainRecord is an encoded payload to seal under any domain and payload
// type, as a peer that misuses a key would.
type domainRecord struct {
	domain  string
	codec   []byte
	payload []byte
}

func (r domainRecord) Domain() string                 { return r.domain }
func (r domainRecord) Codec() []byte                  { return r.codec }
func (r domainRecord) MarshalRecord() ([]byte, error) { return r.payload, nil }
func (r domainRecord) UnmarshalRecord([]byte) error   { return fmt.Errorf("seal only") }

// SealAs seals msg's canonical encoding with key under a signing domain and
// payload type of its choosing.
func SealAs(key crypto.PrivKey, domain string, codec []byte, msg proto.Message) ([]byte, error) {
	payload, err := protocol.Canonical(msg)
	if err != nil {
		return nil, err
	}
	env, err := p2precord.Seal(domainRecord{domain, codec, payload}, key)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// OtherDomain returns a domain and payload type that are not kind's own:
// another kind's domain with its payload type, another kind's domain with
// kind's payload type, kind's domain with another kind's payload type, or a
// domain of no kind.
func OtherDomain(rng *rand.Rand, kind record.Kind) (domain string, codec []byte) {
	var others []record.Kind
	for _, k := range record.Kinds() {
		if k != kind {
			others = append(others, k)
		}
	}
	o := others[rng.IntN(len(others))]
	switch rng.IntN(4) {
	case 0:
		return o.Domain(), o.PayloadType()
	case 1:
		return o.Domain(), kind.PayloadType()
	case 2:
		return kind.Domain(), o.PayloadType()
	}
	return "cuivre-" + kind.String() + "-v2", kind.PayloadType()
}

// Outcome is what the checks made of one mutated record.
type Outcome int

// The outcomes.
const (
	Refused   Outcome = iota // refused, with a code
	Identical                // accepted, and what it says is the original's: not a forgery
	Accepted                 // accepted and not the original: a forgery that got through
)

// Tally counts the outcomes of mutations by record and kind of mutation,
// and the refusals by code. It is not safe for concurrent use.
type Tally struct {
	rows map[string]*row
}

type row struct {
	n, identical, accepted int
	codes                  map[pb.Code]int
}

// Add counts one mutation of record by kind, with its outcome and, for a
// refusal, its code.
func (t *Tally) Add(rec, kind string, out Outcome, code pb.Code) {
	if t.rows == nil {
		t.rows = map[string]*row{}
	}
	k := rec + "\x00" + kind
	r := t.rows[k]
	if r == nil {
		r = &row{codes: map[pb.Code]int{}}
		t.rows[k] = r
	}
	r.n++
	switch out {
	case Identical:
		r.identical++
	case Accepted:
		r.accepted++
	default:
		r.codes[code]++
	}
}

// Totals returns the mutations counted, the identical ones and the forgeries
// accepted.
func (t *Tally) Totals() (n, identical, accepted int) {
	for _, r := range t.rows {
		n, identical, accepted = n+r.n, identical+r.identical, accepted+r.accepted
	}
	return n, identical, accepted
}

// Write prints the table: one line per record and mutation kind, with the
// refusals by code.
func (t *Tally) Write(w io.Writer) {
	fmt.Fprintf(w, "%-8s %-10s %9s %9s %9s  %s\n", "record", "mutation", "n", "accepted", "identical", "refused by code")
	for _, k := range slices.Sorted(maps.Keys(t.rows)) {
		r := t.rows[k]
		rec, kind, _ := strings.Cut(k, "\x00")
		var codes []string
		for _, c := range slices.Sorted(maps.Keys(r.codes)) {
			codes = append(codes, fmt.Sprintf("%s %d", strings.TrimPrefix(c.String(), "CODE_"), r.codes[c]))
		}
		fmt.Fprintf(w, "%-8s %-10s %9d %9d %9d  %s\n", rec, kind, r.n, r.accepted, r.identical, strings.Join(codes, ", "))
	}
	n, id, acc := t.Totals()
	fmt.Fprintf(w, "%-8s %-10s %9d %9d %9d\n", "total", "", n, acc, id)
}
