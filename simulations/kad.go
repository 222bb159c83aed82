package simulations

import (
	"cmp"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sync"
)

// The DHT's lookups, as go-libp2p-kad-dht walks them (its query.go and
// routing.go): a Monte Carlo over an XOR key space, run once per federation
// size and kept, from which each simulated lookup draws one walk.
//
// N DHT servers (the providers, and the requesters in server mode) get random
// 64-bit IDs. Each has a routing table of k-buckets: for each common prefix
// length c with its own ID, up to k of the servers whose ID shares exactly c
// leading bits with it, chosen at random. A key's provider records live on the
// k servers closest to it by XOR (those the providers' ADD_PROVIDER reached).
// A lookup starts from the k closest peers of the requester's own table, keeps
// alpha queries in flight to the closest peers heard of and not yet queried,
// and adds the k closest peers of each answer's table; it ends once the beta
// closest peers it knows have all answered, then queries, at once, those of
// the k closest it has not (kad-dht's follow-up). Each query takes one round
// trip, jittered a little so that answers arrive one by one as they do. A
// placement's FindProviders stops as soon as it has what it needs: at the
// first answer from a server holding the records, or at once when the
// requester holds them itself.
//
// What a walk gives the simulator is counted in round trips along the chain
// of queries that led to an answer (the query a response spawned, and so
// on), since queries in flight overlap: hops to the first holder's answer,
// and for a key with too few records, hops to the lookup's end.

// The DHT model's defaults: go-libp2p-kad-dht's bucket size, concurrency
// and resiliency (its amino defaults), and the round trips of a new
// connection before its first stream (QUIC's handshake, then identify).
const (
	DefaultK              = 20
	DefaultAlpha          = 10
	DefaultBeta           = 3
	DefaultDialRoundTrips = 2
)

// kadParams are kad-dht's: its bucket size (and replication) k, its
// concurrency alpha and its resiliency beta.
type kadParams struct {
	k, alpha, beta int
}

// kadWalk is one simulated lookup.
type kadWalk struct {
	// hops is the round trips until the first holder answered: 0 when the
	// requester holds the records itself.
	hops uint8
	// end is the round trips until the lookup ended, its follow-up included:
	// what a lookup of a key with too few records costs.
	end uint8
	// dials and endDials count the queries on those chains to peers outside
	// the requester's routing table, which it must dial first.
	dials, endDials uint8
	// follow is the queries of the follow-up, the end's last round, all in
	// flight at once: it lasts as long as the slowest.
	follow uint8
	// rpcs and endRPCs are the queries sent until the first holder
	// answered, and until the end.
	rpcs, endRPCs uint8
}

// kadModel is the walks drawn for one federation size and requester mode.
type kadModel struct {
	walks []kadWalk
	// rtShare is the mean share of the other servers a server's routing
	// table holds: the peers a requester keeps connections to.
	rtShare float64
}

type kadKey struct {
	n      int
	p      kadParams
	server bool
}

var (
	kadMu     sync.Mutex
	kadModels = map[kadKey]*kadModel{}
)

// kadWalks is how many lookups a model draws.
const kadWalks = 2000

// kadFor returns the model of n DHT servers, the requester being one of them
// (server) or a client outside them; computed once per process and kept.
// It is a function of its arguments alone.
func kadFor(n int, p kadParams, server bool) *kadModel {
	key := kadKey{n, p, server}
	kadMu.Lock()
	defer kadMu.Unlock()
	if m, ok := kadModels[key]; ok {
		return m
	}
	m := newKad(n, p, server)
	kadModels[key] = m
	return m
}

// kadSpace is the servers' IDs, sorted, and the routing tables drawn so far.
type kadSpace struct {
	ids  []uint64
	p    kadParams
	seed uint64
}

func newKad(n int, p kadParams, server bool) *kadModel {
	m := &kadModel{}
	if n < 1 {
		m.walks = []kadWalk{{}}
		return m
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(p.k)<<32|uint64(p.alpha)<<16|uint64(p.beta)))
	sp := &kadSpace{p: p, seed: rng.Uint64()}
	seen := map[uint64]bool{}
	for len(sp.ids) < n {
		id := rng.Uint64()
		if !seen[id] {
			seen[id] = true
			sp.ids = append(sp.ids, id)
		}
	}
	slices.Sort(sp.ids)
	// The routing tables' size, over a few hundred servers.
	if n > 1 {
		var share float64
		probes := min(n, 256)
		for range probes {
			v := sp.ids[rng.IntN(n)]
			share += float64(sp.tableSize(v)) / float64(n-1)
		}
		m.rtShare = share / float64(probes)
	}
	m.walks = make([]kadWalk, kadWalks)
	for i := range m.walks {
		var self uint64
		if server {
			self = sp.ids[rng.IntN(n)]
		} else {
			for self = rng.Uint64(); seen[self]; self = rng.Uint64() {
			}
		}
		m.walks[i] = sp.walk(self, rng.Uint64(), rng)
	}
	return m
}

// cpl is the common prefix length of two IDs.
func cpl(a, b uint64) int { return bits.LeadingZeros64(a ^ b) }

// span returns the range of ids sharing the top l bits of x.
func (sp *kadSpace) span(x uint64, l int) (int, int) {
	if l == 0 {
		return 0, len(sp.ids)
	}
	if l >= 64 {
		lo, _ := slices.BinarySearch(sp.ids, x)
		hi := lo
		if hi < len(sp.ids) && sp.ids[hi] == x {
			hi++
		}
		return lo, hi
	}
	mask := ^uint64(0) << (64 - l)
	lo, _ := slices.BinarySearch(sp.ids, x&mask)
	hi := len(sp.ids)
	if top := x&mask + (1 << (64 - l)); top != 0 { // not the last prefix
		hi, _ = slices.BinarySearch(sp.ids, top)
	}
	return lo, hi
}

// bucket returns the range of the servers in v's bucket c: those sharing
// exactly c leading bits with v.
func (sp *kadSpace) bucket(v uint64, c int) (int, int) {
	flip := v ^ (uint64(1) << (63 - c))
	return sp.span(flip, c+1)
}

// bucketPeers returns the peers of v's bucket c: all of its range, or k of
// them drawn for v and c alone, so that a server's table is the same each
// time a walk reads it.
func (sp *kadSpace) bucketPeers(v uint64, c int, out []uint64) []uint64 {
	lo, hi := sp.bucket(v, c)
	if hi-lo <= sp.p.k {
		return append(out, sp.ids[lo:hi]...)
	}
	r := rand.New(rand.NewPCG(v^sp.seed, uint64(c)))
	// k distinct indices of [lo, hi): Floyd's algorithm.
	chosen := make(map[int]bool, sp.p.k)
	size := hi - lo
	for j := size - sp.p.k; j < size; j++ {
		t := r.IntN(j + 1)
		if chosen[t] {
			t = j
		}
		chosen[t] = true
		out = append(out, sp.ids[lo+t])
	}
	return out
}

// tableSize is the number of peers in v's routing table.
func (sp *kadSpace) tableSize(v uint64) int {
	n := 0
	for c := 0; c < 64 && sp.deeper(v, c); c++ {
		lo, hi := sp.bucket(v, c)
		n += min(hi-lo, sp.p.k)
	}
	return n
}

// deeper says whether any server but v shares at least c leading bits with
// v: whether bucket c or a deeper one may hold a peer.
func (sp *kadSpace) deeper(v uint64, c int) bool {
	lo, hi := sp.span(v, c)
	n := hi - lo
	if i, ok := slices.BinarySearch(sp.ids, v); ok && i >= lo && i < hi {
		n--
	}
	return n > 0
}

// nearest returns the count peers of v's table closest to key, closest first.
func (sp *kadSpace) nearest(v, key uint64, count int) []uint64 {
	c0 := cpl(v, key)
	if c0 == 64 {
		c0 = 63
	}
	var out []uint64
	// Bucket c0 holds the peers that share c0+1 bits with key, then the
	// deeper buckets those that share c0 exactly: all closer than any of a
	// shallower bucket.
	for c := c0; c < 64 && sp.deeper(v, c); c++ {
		out = sp.bucketPeers(v, c, out)
	}
	sortByDistance(out, key)
	for c := c0 - 1; c >= 0 && len(out) < count; c-- {
		more := sp.bucketPeers(v, c, nil)
		sortByDistance(more, key)
		out = append(out, more...)
	}
	return out[:min(len(out), count)]
}

func sortByDistance(ids []uint64, key uint64) {
	slices.SortFunc(ids, byDistance(key))
}

// byDistance orders IDs by their XOR distance to key, closest first.
func byDistance(key uint64) func(a, b uint64) int {
	return func(a, b uint64) int { return cmp.Compare(a^key, b^key) }
}

// closest returns the k servers closest to key: the holders of its records.
func (sp *kadSpace) closest(key uint64) []uint64 {
	l := 64
	lo, hi := sp.span(key, l)
	for hi-lo < sp.p.k && l > 0 {
		l--
		lo, hi = sp.span(key, l)
	}
	ids := slices.Clone(sp.ids[lo:hi])
	sortByDistance(ids, key)
	return ids[:min(len(ids), sp.p.k)]
}

// Peer states of a walk, as kad-dht's qpeerset.
const (
	heard uint8 = iota + 1
	waiting
	queried
)

type walkPeer struct {
	state  uint8
	chain  uint8 // round trips on the chain of queries that reached this peer's answer
	dials  uint8 // of them, to peers outside the requester's table
	inRT   bool
	holder bool
}

type walkEvent struct {
	at   float64
	peer uint64
}

// walk simulates one lookup of key from self.
func (sp *kadSpace) walk(self, key uint64, rng *rand.Rand) kadWalk {
	p := sp.p
	holders := sp.closest(key)
	w := kadWalk{hops: math.MaxUint8}
	if slices.Contains(holders, self) {
		w.hops = 0
	}
	peers := map[uint64]*walkPeer{}
	var known []uint64 // every peer heard of, closest first
	byKey := byDistance(key)
	add := func(id uint64, chain, dials uint8, inRT bool) {
		if id == self || peers[id] != nil {
			return
		}
		peers[id] = &walkPeer{state: heard, chain: chain, dials: dials, inRT: inRT, holder: slices.Contains(holders, id)}
		i, _ := slices.BinarySearchFunc(known, id, byKey)
		known = slices.Insert(known, i, id)
	}
	for _, id := range sp.nearest(self, key, p.k) {
		add(id, 0, 0, true)
	}
	var inflight []walkEvent
	sent := 0
	spawn := func(now float64, chain, dials uint8) {
		n := 0
		for _, id := range known {
			if n+len(inflight) >= p.alpha {
				break
			}
			if pe := peers[id]; pe.state == heard {
				pe.state = waiting
				pe.chain = chain + 1
				pe.dials = dials
				if !pe.inRT {
					pe.dials++
				}
				inflight = append(inflight, walkEvent{at: now + 1 + 0.2*rng.Float64(), peer: id})
				n++
				sent++
			}
		}
	}
	// kad-dht's isLookupTermination (the beta closest known have all
	// answered) and isStarvationTermination (no one left to ask).
	terminated := func() bool {
		for _, id := range known[:min(len(known), p.beta)] {
			if peers[id].state != queried {
				return false
			}
		}
		return true
	}
	starved := func() bool {
		for _, id := range known {
			if st := peers[id].state; st == heard || st == waiting {
				return false
			}
		}
		return true
	}
	spawn(0, 0, 0)
	var lastChain, lastDials uint8
	for len(inflight) > 0 {
		// the earliest answer
		k := 0
		for i := range inflight {
			if inflight[i].at < inflight[k].at {
				k = i
			}
		}
		ev := inflight[k]
		inflight = slices.Delete(inflight, k, k+1)
		pe := peers[ev.peer]
		pe.state = queried
		if pe.holder && w.hops == math.MaxUint8 {
			w.hops, w.dials, w.rpcs = pe.chain, pe.dials, sat8(sent)
		}
		for _, id := range sp.nearest(ev.peer, key, p.k) {
			add(id, pe.chain, pe.dials, false)
		}
		lastChain, lastDials = pe.chain, pe.dials
		if terminated() || starved() {
			break
		}
		spawn(ev.at, pe.chain, pe.dials)
	}
	// The follow-up: the k closest not yet answered, all at once.
	var follow, extra uint8
	for i, id := range known {
		if i >= p.k {
			break
		}
		if pe := peers[id]; pe.state != queried {
			follow++
			if !pe.inRT {
				extra = 1
			}
			if pe.holder && w.hops == math.MaxUint8 {
				w.hops, w.dials, w.rpcs = lastChain+1, lastDials+extra, sat8(sent+int(follow))
			}
		}
	}
	w.end, w.endDials, w.follow, w.endRPCs = lastChain, lastDials, follow, sat8(sent+int(follow))
	if follow > 0 {
		w.end, w.endDials = lastChain+1, lastDials+extra
	}
	if w.hops == math.MaxUint8 { // no holder answered: as a lookup to its end
		w.hops, w.dials, w.rpcs = w.end, w.endDials, w.endRPCs
	}
	return w
}

func sat8(n int) uint8 { return uint8(min(n, math.MaxUint8)) }

// meanHops returns the mean hops to the first holder and to the end.
func (m *kadModel) meanHops() (first, end float64) {
	for _, w := range m.walks {
		first += float64(w.hops)
		end += float64(w.end)
	}
	n := float64(len(m.walks))
	return first / n, end / n
}

// KadHops returns the mean round trips to the first holder of a key's
// records of a lookup among n DHT servers with kad-dht's defaults, from a
// requester that is one of them (server) or a client.
func KadHops(n int, server bool) float64 {
	first, _ := kadFor(n, kadParams{k: DefaultK, alpha: DefaultAlpha, beta: DefaultBeta}, server).meanHops()
	return first
}

// KadRPCs returns the mean queries a lookup among n DHT servers sends until
// the first holder answered, and until its end.
func KadRPCs(n int, server bool) (first, end float64) {
	m := kadFor(n, kadParams{k: DefaultK, alpha: DefaultAlpha, beta: DefaultBeta}, server)
	for _, w := range m.walks {
		first += float64(w.rpcs)
		end += float64(w.endRPCs)
	}
	return first / float64(len(m.walks)), end / float64(len(m.walks))
}
