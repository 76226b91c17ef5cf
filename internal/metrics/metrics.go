// Package metrics exposes Temporal SDK metrics — and Cordon's own, emitted
// through the SDK's replay-safe workflow metrics handler — as Prometheus
// metrics.
package metrics

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// New returns a client.MetricsHandler that registers its metrics in reg.
// Each metric's label names are fixed by its first use; later uses with
// other tags fill missing labels with "" and drop unknown ones, so a
// metric never fails to register.
func New(reg prometheus.Registerer) client.MetricsHandler {
	return &handler{m: &vecs{reg: reg, counters: map[string]*vec[*prometheus.CounterVec]{},
		gauges: map[string]*vec[*prometheus.GaugeVec]{}, timers: map[string]*vec[*prometheus.HistogramVec]{}}}
}

type vec[T any] struct {
	labels []string
	v      T
}

type vecs struct {
	reg      prometheus.Registerer
	mu       sync.Mutex
	counters map[string]*vec[*prometheus.CounterVec]
	gauges   map[string]*vec[*prometheus.GaugeVec]
	timers   map[string]*vec[*prometheus.HistogramVec]
}

type handler struct {
	m    *vecs
	tags map[string]string
}

func (h *handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[sanitize(k)] = v
	}
	for k, v := range tags {
		merged[sanitize(k)] = v
	}
	return &handler{m: h.m, tags: merged}
}

func (h *handler) labelNames() []string {
	names := make([]string, 0, len(h.tags))
	for k := range h.tags {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func (h *handler) values(labels []string) []string {
	vals := make([]string, len(labels))
	for i, l := range labels {
		vals[i] = h.tags[l]
	}
	return vals
}

func (h *handler) Counter(name string) client.MetricsCounter {
	name = sanitize(name)
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	c, ok := h.m.counters[name]
	if !ok {
		labels := h.labelNames()
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: name}, labels)
		if err := h.m.reg.Register(cv); err != nil {
			return nop{}
		}
		c = &vec[*prometheus.CounterVec]{labels, cv}
		h.m.counters[name] = c
	}
	return counter{c.v.WithLabelValues(h.values(c.labels)...)}
}

func (h *handler) Gauge(name string) client.MetricsGauge {
	name = sanitize(name)
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	g, ok := h.m.gauges[name]
	if !ok {
		labels := h.labelNames()
		gv := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name}, labels)
		if err := h.m.reg.Register(gv); err != nil {
			return nop{}
		}
		g = &vec[*prometheus.GaugeVec]{labels, gv}
		h.m.gauges[name] = g
	}
	return gauge{g.v.WithLabelValues(h.values(g.labels)...)}
}

func (h *handler) Timer(name string) client.MetricsTimer {
	name = sanitize(name) + "_seconds"
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	t, ok := h.m.timers[name]
	if !ok {
		labels := h.labelNames()
		hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: name,
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600}}, labels)
		if err := h.m.reg.Register(hv); err != nil {
			return nop{}
		}
		t = &vec[*prometheus.HistogramVec]{labels, hv}
		h.m.timers[name] = t
	}
	return timer{t.v.WithLabelValues(h.values(t.labels)...)}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

type counter struct{ c prometheus.Counter }

func (c counter) Inc(n int64) { c.c.Add(float64(n)) }

type gauge struct{ g prometheus.Gauge }

func (g gauge) Update(v float64) { g.g.Set(v) }

type timer struct{ o prometheus.Observer }

func (t timer) Record(d time.Duration) { t.o.Observe(d.Seconds()) }

type nop struct{}

func (nop) Inc(int64)            {}
func (nop) Update(float64)       {}
func (nop) Record(time.Duration) {}
