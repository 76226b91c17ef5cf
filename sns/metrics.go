package sns

import "github.com/prometheus/client_golang/prometheus"

var (
	descRequests  = prometheus.NewDesc("cordon_sns_requests_total", "SNS endpoint requests by outcome: accepted (2xx, handled), duplicate (2xx, MessageId already handled), refused (4xx), failed (5xx, SNS retries).", []string{"outcome"}, nil)
	descIncidents = prometheus.NewDesc("cordon_sns_incidents_total", "Alerts handed to Temporal (incident opened or evidence added).", nil, nil)
	descIgnored   = prometheus.NewDesc("cordon_sns_ignored_total", "Verified messages or alerts not understood or not actionable (answered 200, logged).", nil, nil)
	descConfirmed = prometheus.NewDesc("cordon_sns_subscriptions_confirmed_total", "Subscription confirmations visited.", nil, nil)
	descUnsub     = prometheus.NewDesc("cordon_sns_unsubscribe_confirmations_total", "UnsubscribeConfirmations received: the endpoint no longer receives the topic.", nil, nil)
	descReasons   = prometheus.NewDesc("cordon_sns_refusals_total", "Refused (4xx) and failed (5xx) requests by reason.", []string{"reason"}, nil)
)

// Describe implements prometheus.Collector: registry.MustRegister(h.Stats()).
func (s *Stats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descIncidents, descIgnored, descConfirmed, descUnsub, descReasons} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Stats) Collect(ch chan<- prometheus.Metric) {
	snap := s.Snapshot()
	c := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	c(descRequests, snap.Accepted, "accepted")
	c(descRequests, snap.Duplicate, "duplicate")
	c(descRequests, snap.Refused, "refused")
	c(descRequests, snap.Failed, "failed")
	c(descIncidents, snap.Incidents)
	c(descIgnored, snap.Ignored)
	c(descConfirmed, snap.Confirmed)
	c(descUnsub, snap.Unsubscribed)
	for r, v := range snap.ByReason {
		c(descReasons, v, r)
	}
}
