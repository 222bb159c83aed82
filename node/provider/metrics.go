package provider

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the provider's Prometheus metrics; the node registers them on
// a registry of its own, so that several nodes can live in one process.
type Metrics struct {
	offers   *prometheus.CounterVec // result: offered, refused
	refusals *prometheus.CounterVec // protocol, reason: the refusal code
	leases   *prometheus.CounterVec // event: committed, succeeded, failed, cancelled, expired
	execTime prometheus.Histogram
	earnings *prometheus.CounterVec // currency, in nano-units
}

func newMetrics() *Metrics {
	return &Metrics{
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_offer_requests_total", Help: "Offer requests answered, by result.",
		}, []string{"result"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_refusals_total", Help: "Requests refused, by protocol and reason code.",
		}, []string{"protocol", "reason"}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_lease_events_total", Help: "Lease events: committed, succeeded, failed, cancelled, expired.",
		}, []string{"event"}),
		execTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cuivre_exec_duration_seconds", Help: "Wall time of WebAssembly runs.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		earnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cuivre_earnings_nanos_total", Help: "Billed by usage receipts, in nano-units of the currency.",
		}, []string{"currency"}),
	}
}

// Collectors returns the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.offers, m.refusals, m.leases, m.execTime, m.earnings}
}

// Refusals returns the count of refusals on protocol (offer, lease, ...)
// with reason (a code, lower case), for tests and status pages.
func (m *Metrics) Refusals(protocol, reason string) prometheus.Counter {
	return m.refusals.WithLabelValues(protocol, reason)
}
