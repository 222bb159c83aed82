package provider

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cuivre/cuivre/node/clock"
	"github.com/cuivre/cuivre/node/data"
	"github.com/cuivre/cuivre/node/exec"
	"github.com/cuivre/cuivre/node/store"
	"github.com/cuivre/cuivre/node/transport"
	"github.com/cuivre/cuivre/protocol"
	"github.com/cuivre/cuivre/scheduler"
)

// Config configures a Provider. The zero value of each optional field means
// its documented default.
type Config struct {
	Key    crypto.PrivKey         // required: signs offers and receipts
	Market scheduler.MarketConfig // its Provider is set to the key's peer ID
	// Store and Exec let the provider run leases; without them it quotes
	// but refuses every lease. Store also serves modules and keeps receipts.
	// The provider does not close them.
	Store *store.Store
	Exec  *exec.Executor
	// Remote, instead of Exec, runs leases elsewhere: a retailer's on the
	// site of its slices (SPEC 6.7). Nil: the provider runs on Exec.
	Remote Runner
	// Data keeps the inputs fetched and the outputs made here (SPEC 2.5);
	// without it the provider takes no job with inputs and keeps no output.
	Data *data.Store
	// Blocks serves the blocks of the DAGs the node holds to the peers
	// granted them (SPEC 6.6); nil refuses every block request. The
	// provider grants a lease's requester its output, for OutputGrant
	// after the run (default data.DefaultKeep).
	Blocks      *data.Server
	OutputGrant time.Duration
	// Transport fetches modules from requesters; required.
	Transport transport.Transport
	// ReplayCacheSize bounds the live lease nonces remembered. Default 100,000.
	ReplayCacheSize int
	// MaxLog is what is kept of each of a run's streams. Default
	// DefaultMaxLog, SPEC 7's limit.
	MaxLog int
	Clock  clock.Clock  // default clock.Real
	Log    *slog.Logger // default slog.Default()
	// Loaded, if set, is called when leases come or go (the capacity
	// record's free resources are stale); it must not block.
	Loaded func()
}

// Provider is the provider's driver (SPEC 6, the provider's side of each
// protocol): it answers offer requests from its scheduler.Market, commits
// leases to the store before acknowledging them, runs them, streams their
// status, and signs their receipts. It is a transport.Handler, and safe for
// concurrent use.
type Provider struct {
	cfg     Config
	id      string
	log     *slog.Logger
	clock   clock.Clock
	metrics *Metrics

	mu     sync.Mutex // guards market and released
	market *scheduler.Market
	// released is closed and replaced whenever a lease is released, for
	// Drain to wait on.
	released chan struct{}

	store  *store.Store
	exec   *exec.Executor
	replay *protocol.ReplayCache

	runsMu   sync.Mutex // guards runs and closed
	runs     map[runKey]*run
	closed   bool           // Close has begun: no run starts
	watching sync.WaitGroup // watch streams following a run

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // runs, and the timers that forget them
}

// New returns a provider. It reloads the replay cache and ends the leases
// that died with a previous process (recover.go) before it answers anyone;
// Serve it on a transport to answer.
func New(c Config) (*Provider, error) {
	if c.Key == nil || c.Transport == nil {
		return nil, errors.New("provider: a key and a transport are required")
	}
	if c.ReplayCacheSize <= 0 {
		c.ReplayCacheSize = 100_000
	}
	if c.OutputGrant <= 0 {
		c.OutputGrant = data.DefaultKeep
	}
	if c.MaxLog <= 0 {
		c.MaxLog = DefaultMaxLog
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Loaded == nil {
		c.Loaded = func() {}
	}
	id, err := peer.IDFromPrivateKey(c.Key)
	if err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	c.Market.Provider = string(id)
	if c.Market.Seed == ([32]byte{}) {
		// Offer nonces are drawn from the seed: a zero one would make them
		// guessable, and the same at every provider left unseeded, which a
		// requester's replay cache rightly refuses (SPEC 3.4, 6.1).
		rand.Read(c.Market.Seed[:])
	}
	market, err := scheduler.NewMarket(c.Market)
	if err != nil {
		return nil, fmt.Errorf("provider: market: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Provider{cfg: c, id: string(id), log: c.Log, clock: c.Clock, metrics: newMetrics(), market: market,
		released: make(chan struct{}), store: c.Store, exec: c.Exec, replay: protocol.NewReplayCache(c.ReplayCacheSize),
		runs: map[runKey]*run{}, ctx: ctx, cancel: cancel}
	if err := p.recover(); err != nil {
		cancel()
		return nil, err
	}
	return p, nil
}

// Metrics returns the provider's metrics, for the node to register.
func (p *Provider) Metrics() *Metrics { return p.metrics }

// MarketState returns a snapshot of the market, offers expired by now
// dropped: the market drops them lazily, at its next call.
func (p *Provider) MarketState() scheduler.MarketState {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.market.Expire(p.clock.Now())
	return p.market.State()
}

// Offering returns what the provider sells now: its market's configuration
// (capacity, labels, executors, prices).
func (p *Provider) Offering() scheduler.MarketConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.Market
}

// SetDraining stops or resumes offering: a draining provider refuses offer
// requests with CODE_DRAINING; running leases go on.
func (p *Provider) SetDraining(on bool) {
	p.mu.Lock()
	p.market.SetDraining(on)
	p.mu.Unlock()
}

// Reprice applies new prices and labels (an operator's reload): new offers
// use them.
func (p *Provider) Reprice(pol scheduler.PricePolicy, labels scheduler.Labels) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.market.Reprice(pol, labels)
	if err == nil {
		p.cfg.Market.Pricing, p.cfg.Market.Labels = pol, labels
	}
	return err
}

// Drain is a stopping provider's last duty: it stops offering at once, lets
// the running leases finish until grace has passed, then cancels the rest
// (each is recorded cancelled, billed, and its watching requester told) and
// waits, up to tell, until their watchers have their results. It returns the
// number of leases cancelled.
func (p *Provider) Drain(grace, tell time.Duration) int {
	p.SetDraining(true)
	deadline := p.clock.After(grace)
	for {
		p.mu.Lock()
		leases, released := p.market.State().Leases, p.released
		p.mu.Unlock()
		if leases == 0 {
			break
		}
		select {
		case <-released:
			continue
		case <-deadline:
		}
		break
	}
	return p.CancelRuns(tell)
}

// CancelRuns stops every run still going and waits, up to timeout, until each
// has recorded its end and its watchers have the result. It returns the
// number of runs it cancelled.
func (p *Provider) CancelRuns(timeout time.Duration) int {
	p.runsMu.Lock()
	var live []*run
	for _, r := range p.runs {
		r.mu.Lock()
		if r.result == nil {
			live = append(live, r)
		}
		r.mu.Unlock()
	}
	p.runsMu.Unlock()
	deadline := p.clock.After(timeout)
	for _, r := range live {
		r.cancel()
	}
	for _, r := range live {
		for {
			r.mu.Lock()
			done, changed := r.result != nil, r.changed
			r.mu.Unlock()
			if done {
				break
			}
			select {
			case <-changed:
				continue
			case <-deadline:
				return len(live)
			}
		}
	}
	// Let the watch streams carry the results out before the host closes.
	done := make(chan struct{})
	go func() { p.watching.Wait(); close(done) }()
	select {
	case <-done:
	case <-deadline:
	}
	return len(live)
}

// Close cancels the runs still going and waits for every goroutine the
// provider started. The store and the executor stay open: they are the
// caller's.
func (p *Provider) Close() error {
	p.runsMu.Lock()
	p.closed = true
	p.runsMu.Unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}
