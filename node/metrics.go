package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's Prometheus metrics, on a registry of its own so that
// several nodes can live in one process (a devnet, a test).
type metrics struct {
	reg       *prometheus.Registry
	offers    *prometheus.CounterVec // result: offered, refused
	refusals  *prometheus.CounterVec // reason: the refusal code
	leases    *prometheus.CounterVec // event: committed, succeeded, failed, cancelled, lost
	execTime  prometheus.Histogram
	earnings  *prometheus.CounterVec // currency, in nano-units
	streamErr *prometheus.CounterVec // protocol
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_offer_requests_total", Help: "Offer requests answered, by result.",
		}, []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_refusals_total", Help: "Requests refused, by protocol and reason code.",
		}, []string{"protocol", "reason"}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_lease_events_total", Help: "Lease events: committed, succeeded, failed, cancelled.",
		}, []string{"event"}),
		execTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cuivre_exec_duration_seconds", Help: "Wall time of WebAssembly runs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		earnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_earnings_nanos_total", Help: "Billed by usage receipts, in nano-units of the currency.",
		}, []string{"currency"}),
		streamErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_stream_errors_total", Help: "Streams that failed or were refused, by protocol.",
		}, []string{"protocol"}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		m.offers, m.refusals, m.leases, m.execTime, m.earnings, m.streamErr,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("cuivre_peers", "Connected peers.", func() float64 { return float64(len(n.host.Network().Peers())) }),
		gauge("cuivre_dht_routing_table_peers", "Peers in the DHT routing table.", func() float64 { return float64(n.RoutingTableSize()) }),
		gauge("cuivre_leases_live", "Leases committed and not yet released.", func() float64 { return float64(n.MarketState().Leases) }),
		gauge("cuivre_reservations_live", "Offers out, holding a reservation.", func() float64 { return float64(n.MarketState().Reservations) }),
		gauge("cuivre_load_permille", "Committed and reserved share of capacity, in permille.", func() float64 { return float64(n.MarketState().LoadPermille) }),
	)
	return m
}
