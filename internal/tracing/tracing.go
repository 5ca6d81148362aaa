// Package tracing carries one OpenTelemetry trace across every hop of the
// saga: HTTP request → command → events → projections → notifications.
//
// The trace travels in the W3C traceparent: the HTTP header on the way in,
// the CloudEvent extension traceparent on every message. Each hop starts a
// span that is a child of the traceparent it received and writes its own
// span's traceparent into what it emits, so the next hop becomes its child.
//
// Tracing is on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: spans are
// then batched to that OTLP/HTTP collector. Otherwise the provider is the
// no-op one and every helper here passes traceparents through unchanged at
// no cost, which is what the runner did before tracing existed (emitted
// events inherit their cause's traceparent), so logs still correlate by
// trace id.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// InstrumentationName names Tradewind's tracer.
const InstrumentationName = "github.com/tradewind/tradewind"

// Config selects the exporter.
type Config struct {
	// Endpoint is the OTLP/HTTP collector's base URL
	// (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://collector:4318); spans go
	// to <Endpoint>/v1/traces. Empty: tracing is off.
	Endpoint string
	// ServiceName is the resource's service.name (OTEL_SERVICE_NAME).
	ServiceName string
	// Version is the resource's service.version.
	Version string
}

// Validate checks the endpoint.
func (c Config) Validate() error {
	if c.Endpoint == "" {
		return nil
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q: want http(s)://host:port", c.Endpoint)
	}
	return nil
}

// Provider is the process's tracer provider.
type Provider struct {
	tp       trace.TracerProvider
	tracer   trace.Tracer
	shutdown func(context.Context) error
}

// Setup builds the provider: an SDK provider batching to the OTLP/HTTP
// endpoint when one is configured, else the no-op provider. Other OTEL_*
// variables the SDK knows (OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_TRACES_SAMPLER, OTEL_RESOURCE_ATTRIBUTES, …) apply as usual. Call
// Shutdown to flush spans on exit.
func Setup(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Endpoint == "" {
		return NewProvider(noop.NewTracerProvider(), nil), nil
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(cfg.Endpoint, "/")+"/v1/traces"))
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter for %s: %w", cfg.Endpoint, err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	res, err := sdkresource.New(ctx, sdkresource.WithTelemetrySDK(), sdkresource.WithFromEnv(), sdkresource.WithAttributes(attrs...))
	if err != nil && !errors.Is(err, sdkresource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return NewProvider(tp, tp.Shutdown), nil
}

// NewProvider wraps a tracer provider (tests pass an SDK provider with an
// in-memory exporter). shutdown may be nil.
func NewProvider(tp trace.TracerProvider, shutdown func(context.Context) error) *Provider {
	if shutdown == nil {
		shutdown = func(context.Context) error { return nil }
	}
	return &Provider{tp: tp, tracer: tp.Tracer(InstrumentationName), shutdown: shutdown}
}

// Enabled reports whether spans are recorded and exported; false for the
// no-op provider, so callers can skip tracing work altogether.
func (p *Provider) Enabled() bool {
	_, off := p.tp.(noop.TracerProvider)
	return !off
}

// Tracer is Tradewind's tracer.
func (p *Provider) Tracer() trace.Tracer { return p.tracer }

// Shutdown flushes buffered spans, waiting at most until ctx ends.
func (p *Provider) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// propagator reads and writes W3C traceparent (and tracestate).
var propagator = propagation.TraceContext{}

// FromTraceparent returns ctx with the remote span context a traceparent
// names as the parent of spans started from it; ctx unchanged when tp is
// empty or malformed.
func FromTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

// Traceparent is the W3C traceparent of the span in ctx, "" when ctx has
// no valid span context.
func Traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}
