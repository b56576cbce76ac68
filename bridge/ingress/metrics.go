package ingress

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the ingress's Prometheus series, on a registry of their own so that several
// bridges (tests, benchmarks) can run in one process.
type Metrics struct {
	Registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	verifyFailures *prometheus.CounterVec
	stale          *prometheus.CounterVec
	dedupHits      *prometheus.CounterVec
	ignored        *prometheus.CounterVec
	spooled        *prometheus.CounterVec
	produceSeconds *prometheus.HistogramVec
	reserveSeconds *prometheus.HistogramVec
	// reserveSeconds' three series, looked up once: new, duplicate, failed.
	reserveNew, reserveDup, reserveFailed prometheus.Observer
	inFlight                              prometheus.Gauge
}

// NewMetrics registers the ingress series and the Go runtime's on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_requests_total", Help: "Webhook requests answered, by source and HTTP status.",
		}, []string{"source", "code"}),
		verifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_verification_failures_total", Help: "Requests refused because their signature did not verify.",
		}, []string{"source"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_stale_deliveries_total", Help: "Authentic deliveries refused because their signed time is older than the source's max_age, or too far ahead of the bridge's clock: replays.",
		}, []string{"source"}),
		dedupHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_dedup_hits_total", Help: "Deliveries answered as duplicates of an event already accepted.",
		}, []string{"source"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_ignored_events_total", Help: "Events of authentic deliveries that map to no canonical type (or empty deliveries), acknowledged and not produced.",
		}, []string{"source"}),
		spooled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_spooled_events_total", Help: "Events answered \"spooled\": in the local spool, produced once Kafka takes them.",
		}, []string{"source"}),
		produceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bridge_produce_seconds",
			Help:    "Time from handing a record to the producer to Kafka's acknowledgement, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"outcome"}),
		// From 50 µs: a memory store answers in about a microsecond (the first bucket), a
		// Redis in one round trip, which this shows (the scale benchmark reads it).
		reserveSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bridge_dedup_reserve_seconds",
			Help:    "Time to reserve an event's id in the dedup store (a Redis round trip with dedup.store redis), by outcome: new, duplicate, failed.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bridge_requests_in_flight", Help: "Webhook requests being handled now.",
		}),
	}
	m.reserveNew = m.reserveSeconds.WithLabelValues("new")
	m.reserveDup = m.reserveSeconds.WithLabelValues("duplicate")
	m.reserveFailed = m.reserveSeconds.WithLabelValues("failed")
	m.Registry.MustRegister(m.requests, m.verifyFailures, m.stale, m.dedupHits, m.ignored, m.spooled, m.produceSeconds, m.reserveSeconds, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchAdmission exports the caps' use: body bytes reserved, requests past their body, and
// slow uploads shed.
func (m *Metrics) watchAdmission(a *admission) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bridge_body_bytes_in_flight", Help: "Bytes of request bodies reserved now, of http.max_body_bytes_in_flight.",
		}, func() float64 { b, _, _ := a.usage(); return float64(b) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bridge_uploads_shed_total", Help: "Slow request bodies cut off (503) to make room in http.max_body_bytes_in_flight for faster ones.",
		}, func() float64 { _, _, n := a.usage(); return float64(n) }),
	)
}

// dedupSizer is a dedup store that knows its size (the memory store does).
type dedupSizer interface {
	Len() int
	Evicted() uint64
}

// watchDedup exports the dedup store's size and evictions.
func (m *Metrics) watchDedup(store dedupSizer) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bridge_dedup_ids", Help: "Event ids remembered for dedup (including expired ones not yet dropped).",
		}, func() float64 { return float64(store.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bridge_dedup_evicted_total", Help: "Ids forgotten before their window ended because dedup.max_ids was reached.",
		}, func() float64 { return float64(store.Evicted()) }),
	)
}

// statusLabels avoids formatting the common status codes on every request.
var statusLabels = map[int]string{200: "200", 202: "202", 400: "400", 401: "401", 404: "404", 405: "405", 408: "408",
	413: "413", 415: "415", 431: "431", 500: "500", 503: "503"}

func (m *Metrics) answered(source string, code int) {
	label, ok := statusLabels[code]
	if !ok {
		label = strconv.Itoa(code)
	}
	m.requests.WithLabelValues(source, label).Inc()
}

// reserved observes a dedup reservation of d that ended as dup or err.
func (m *Metrics) reserved(d time.Duration, dup bool, err error) {
	o := m.reserveNew
	switch {
	case err != nil:
		o = m.reserveFailed
	case dup:
		o = m.reserveDup
	}
	o.Observe(d.Seconds())
}
