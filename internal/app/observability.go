package app

import (
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/runner"
)

// The Prometheus observer is what Deps.NewRunner gives every runner.
var _ runner.Observer = metrics.ConsumerObserver{}

// metricsPoller returns the service that polls the state behind the
// lag, ack-pending, DLQ and outbox gauges for what this process runs: its
// consumers, and the outbox when it runs the relay. Nil when there is
// nothing to poll.
func metricsPoller(d *Deps, services []Service) (Service, error) {
	cfg := metrics.PollerConfig{JS: d.JS, DLQStream: broker.StreamDLQ, Log: d.Log}
	for _, s := range services {
		if r, ok := s.(*runner.Runner); ok {
			spec := r.Spec()
			cfg.Consumers = append(cfg.Consumers, metrics.ConsumerRef{Stream: spec.Stream, Name: spec.Name})
		}
		if pr, ok := s.(*partitionedRole); ok {
			cfg.Consumers = append(cfg.Consumers, pr.consumers...)
		}
	}
	if d.Relay != nil {
		cfg.Pool = d.Pool
	}
	if len(cfg.Consumers) == 0 && cfg.Pool == nil {
		return nil, nil
	}
	return metrics.NewPoller(cfg)
}
