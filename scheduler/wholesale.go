package scheduler

import (
	"slices"
	"time"

	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/protocol/pb"
)

// Slice is capacity a site has granted a retailer at its wholesale tariff
// (SPEC 6.7): a ceiling on what the grantee's offers and leases hold here,
// and capacity the site's own retail never uses while the slice lasts.
type Slice struct {
	ID        string    // the grant's ID
	Grantee   string    // the retailer's peer ID
	Resources Resources // the ceiling
	// Start is when the grantee may use it; the site's own retail is kept
	// off it from the grant on, so that its leases never stand in the way.
	Start time.Time
	End   time.Time // when it ends, and its capacity comes back
	// Notice is the grant's notice period: a withdrawal ends the slice no
	// sooner than Notice after it is made.
	Notice time.Duration
}

// wholesale is what a market holds of its slices. A market has none until
// it grants one, and drops it when nothing refers to slices any more, so
// that a market that sells no slice costs one nil pointer.
type wholesale struct {
	slices []Slice // granted and not ended, in grant order
	// use is what each grantee's live offers and leases hold here.
	use map[string]Resources
	// holds and leases name the grantee of each offer (by nonce) and lease
	// (by ID) made for one.
	holds, leases map[string]string
}

// Grant records a slice granted to s.Grantee (SPEC 6.7). It must fit in
// what the site's own retail has free now, else CODE_SLICE_FULL: a slice is
// never carved out of leases or offers already made. Granting the same
// slice again (same ID and terms) is a no-op; another slice under a held ID
// is CODE_REPLAYED. An empty ID or grantee, or an end not after the start,
// is CODE_MALFORMED; an end not after now, CODE_EXPIRED.
func (m *Market) Grant(now time.Time, s Slice) error {
	m.sweep(now)
	switch {
	case s.ID == "" || s.Grantee == "":
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "slice without an ID or a grantee")
	case !s.Start.Before(s.End):
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "slice %x starts at %s, not before its end %s", s.ID, fmtTime(s.Start), fmtTime(s.End))
	case !now.Before(s.End):
		return protocol.Errorf(pb.Code_CODE_EXPIRED, "slice %x ended at %s, now %s", s.ID, fmtTime(s.End), fmtTime(now))
	}
	if w := m.whole; w != nil {
		if i := w.find(s.ID); i >= 0 {
			if w.slices[i] == s {
				return nil
			}
			return protocol.Errorf(pb.Code_CODE_REPLAYED, "slice %x is already granted here on other terms", s.ID)
		}
	}
	if free := m.free(); !s.Resources.Fits(free) {
		return protocol.Errorf(pb.Code_CODE_SLICE_FULL, "slice of %s asked, %s free to grant", fmtResources(s.Resources), fmtResources(free))
	}
	if m.whole == nil {
		m.whole = &wholesale{use: map[string]Resources{}, holds: map[string]string{}, leases: map[string]string{}}
	}
	m.whole.slices = append(m.whole.slices, s)
	return nil
}

// Withdraw ends the slice with this ID at end, sooner than granted (SPEC
// 6.7). End must be at least the slice's notice after now, else
// CODE_NOTICE_TOO_SHORT; it must be before the slice's end, else
// CODE_MALFORMED, as is a slice not held here. The grantee's leases keep
// running past the new end, as leases do past any slice's end; only new
// offers are refused.
func (m *Market) Withdraw(now time.Time, id string, end time.Time) error {
	m.sweep(now)
	i := -1
	if m.whole != nil {
		i = m.whole.find(id)
	}
	if i < 0 {
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "no slice %x granted here", id)
	}
	s := &m.whole.slices[i]
	switch {
	case end.Before(now.Add(s.Notice)):
		return protocol.Errorf(pb.Code_CODE_NOTICE_TOO_SHORT, "slice %x may end no sooner than its notice of %s from now, %s; asked %s",
			id, s.Notice, fmtTime(now.Add(s.Notice)), fmtTime(end))
	case !end.Before(s.End):
		return protocol.Errorf(pb.Code_CODE_MALFORMED, "slice %x ends at %s already, not after %s", id, fmtTime(s.End), fmtTime(end))
	}
	s.End = end
	return nil
}

// Revoke drops the slice with this ID at once, whatever its notice: for a
// grant the site held but never answered (its store write failed, SPEC
// 6.7: a grant is answered only once stored), which binds no one. A slice
// not held is a no-op.
func (m *Market) Revoke(id string) {
	if m.whole == nil {
		return
	}
	if i := m.whole.find(id); i >= 0 {
		m.whole.slices = slices.Delete(m.whole.slices, i, i+1)
	}
}

// Slices returns the slices held at the last operation that took a time:
// granted and not ended. The caller owns the returned slice.
func (m *Market) Slices() []Slice {
	if m.whole == nil {
		return nil
	}
	return slices.Clone(m.whole.slices)
}

// sliceRoom is what a request for grantee g may hold at now: its started
// slices less what it holds already. None started is
// CODE_SLICE_NOT_STARTED if one is granted, else CODE_SLICE_EXCEEDED (its
// ceiling is nothing).
func (m *Market) sliceRoom(now time.Time, g string) (Resources, *protocol.Error) {
	var ceiling Resources
	granted, started := false, false
	if w := m.whole; w != nil {
		for i := range w.slices {
			if s := &w.slices[i]; s.Grantee == g {
				granted = true
				if !now.Before(s.Start) {
					started = true
					ceiling = ceiling.Add(s.Resources)
				}
			}
		}
	}
	switch {
	case !started && granted:
		return Resources{}, protocol.Errorf(pb.Code_CODE_SLICE_NOT_STARTED, "no slice granted here to %x has started", g)
	case !started:
		return Resources{}, protocol.Errorf(pb.Code_CODE_SLICE_EXCEEDED, "no slice is granted here to %x", g)
	}
	return ceiling.Sub(m.whole.use[g]), nil
}

// withheld is the capacity the site's own retail may not use: the part of
// each grantee's slices, granted and not ended, that its offers and leases
// do not hold already (those are in committed and reserved).
func (w *wholesale) withheld() Resources {
	var out Resources
	for i := range w.slices {
		g := w.slices[i].Grantee
		if slices.IndexFunc(w.slices[:i], func(s Slice) bool { return s.Grantee == g }) >= 0 {
			continue // counted with its grantee's first slice
		}
		var sum Resources
		for j := i; j < len(w.slices); j++ {
			if w.slices[j].Grantee == g {
				sum = sum.Add(w.slices[j].Resources)
			}
		}
		out = out.Add(sum.Sub(w.use[g]))
	}
	return out
}

// hold notes an offer made to grantee g.
func (w *wholesale) hold(nonce, g string, r Resources) {
	w.holds[nonce] = g
	w.use[g] = w.use[g].Add(r)
}

// unhold forgets an offer, if it was made to a grantee, and returns the
// grantee.
func (w *wholesale) unhold(nonce string, r Resources) string {
	g, ok := w.holds[nonce]
	if ok {
		delete(w.holds, nonce)
		w.release(g, r)
	}
	return g
}

// unlease forgets a lease, if it was for a grantee.
func (w *wholesale) unlease(id string, r Resources) {
	if g, ok := w.leases[id]; ok {
		delete(w.leases, id)
		w.release(g, r)
	}
}

func (w *wholesale) release(g string, r Resources) {
	if u := w.use[g].Sub(r); u != (Resources{}) {
		w.use[g] = u
	} else {
		delete(w.use, g)
	}
}

// end drops the slices ended at now, and reports whether nothing is left
// that refers to a slice, so the market can drop w.
func (w *wholesale) end(now time.Time) (empty bool) {
	w.slices = slices.DeleteFunc(w.slices, func(s Slice) bool { return !now.Before(s.End) })
	return len(w.slices) == 0 && len(w.holds) == 0 && len(w.leases) == 0
}

func (w *wholesale) find(id string) int {
	return slices.IndexFunc(w.slices, func(s Slice) bool { return s.ID == id })
}
