package p2p

import (
	"net/netip"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/time/rate"

	"github.com/cuivre/cuivre/protocol"
)

// Limits are what one peer, and one place, may ask of a host: the open
// federation lets anyone ask. The zero value of each field means its
// default.
type Limits struct {
	// RequestsPerSecond is the rate of requests one peer may make on each
	// cuivre protocol but the block exchange, in bursts of twice as many;
	// past it, requests are refused with CODE_RATE_LIMITED and a
	// retry-after. Default DefaultRequestsPerSecond; negative: no limit.
	RequestsPerSecond float64
	// BlockRequestsPerSecond is the same for the block exchange, whose
	// transfers make many small requests. Default
	// DefaultBlockRequestsPerSecond; negative: no limit.
	BlockRequestsPerSecond float64
	// ConnsPerIP bounds the connections from one IPv4 address, or one IPv6
	// /56 (eight times as many from one /48). Default DefaultConnsPerIP.
	ConnsPerIP int
	// OriginBitsV4 and OriginBitsV6 are the prefix lengths that group
	// peers into one origin, whose offers share one cap at a provider
	// (scheduler.MarketConfig). Default 24 and 48.
	OriginBitsV4, OriginBitsV6 int
	// Loopback applies the per-IP and per-origin limits to loopback
	// addresses too. Off by default, as in libp2p's resource manager, so
	// that a devnet's nodes on one machine are not one origin; a test of
	// the limits on loopback must turn it on.
	Loopback bool
}

// Defaults of Limits.
const (
	DefaultRequestsPerSecond      = 50
	DefaultBlockRequestsPerSecond = 500
	DefaultConnsPerIP             = 8
)

func (l Limits) withDefaults() Limits {
	if l.RequestsPerSecond == 0 {
		l.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if l.BlockRequestsPerSecond == 0 {
		l.BlockRequestsPerSecond = DefaultBlockRequestsPerSecond
	}
	if l.ConnsPerIP <= 0 {
		l.ConnsPerIP = DefaultConnsPerIP
	}
	if l.OriginBitsV4 <= 0 || l.OriginBitsV4 > 32 {
		l.OriginBitsV4 = 24
	}
	if l.OriginBitsV6 <= 0 || l.OriginBitsV6 > 128 {
		l.OriginBitsV6 = 48
	}
	return l
}

// origin returns the network a remote address belongs to, for the
// per-origin limits: "" for loopback (unless limited) or an address that
// is not IP (a relayed one names its relay, not its sender).
func (l Limits) origin(addr ma.Multiaddr) string {
	if addr == nil || isRelayed(addr) {
		return ""
	}
	ip, ok := ipOf(addr)
	if !ok || ip.IsLoopback() && !l.Loopback {
		return ""
	}
	bits := l.OriginBitsV6
	if ip.Is4() {
		bits = l.OriginBitsV4
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

func ipOf(addr ma.Multiaddr) (netip.Addr, bool) {
	if addr == nil {
		return netip.Addr{}, false
	}
	nip, err := manet.ToIP(addr)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(nip)
	return ip.Unmap(), ok
}

// rateLimiter is a token bucket per (peer, protocol).
type rateLimiter struct {
	mu      sync.Mutex
	buckets map[rateKey]*rate.Limiter
	limit   func(id string) float64 // per second; <= 0: none
}

type rateKey struct{ peer, protocol string }

// maxBuckets bounds the buckets kept; past it, the full ones (idle peers)
// are forgotten.
const maxBuckets = 1 << 16

// allow takes a token of peer's bucket for protocol id at now, or says how
// long until one is there.
func (r *rateLimiter) allow(now time.Time, peer, id string) (bool, time.Duration) {
	per := r.limit(id)
	if per <= 0 {
		return true, 0
	}
	burst := max(1, int(2*per))
	r.mu.Lock()
	defer r.mu.Unlock()
	k := rateKey{peer, id}
	b := r.buckets[k]
	if b == nil {
		if r.buckets == nil {
			r.buckets = map[rateKey]*rate.Limiter{}
		}
		if len(r.buckets) >= maxBuckets {
			for k, b := range r.buckets {
				if b.TokensAt(now) >= float64(b.Burst()) {
					delete(r.buckets, k)
				}
			}
		}
		b = rate.NewLimiter(rate.Limit(per), burst)
		r.buckets[k] = b
	}
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// rateOf is the request rate of protocol id under l.
func (l Limits) rateOf(id string) float64 {
	if id == string(protocol.BlocksID) {
		return l.BlockRequestsPerSecond
	}
	return l.RequestsPerSecond
}
