// Package consumers reports and repositions Tradewind's durable JetStream
// consumers for operators (`tradewind consumers`).
//
// Repositioning a consumer below its acknowledged floor re-delivers
// messages it already handled: Tradewind's inbox makes those no-ops for
// handlers that record effects in PostgreSQL, but nothing else (a
// notification already pushed, say) is undone or deduplicated.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/dlq"
)

// ErrNotFound is returned for a consumer no stream has.
var ErrNotFound = errors.New("consumer not found")

// Info is one durable consumer's position and backlog.
type Info struct {
	Stream, Name string
	// Delivered is the stream sequence of the last delivered message (the
	// position); AckFloor the highest one below which everything is acked.
	Delivered, AckFloor uint64
	// Pending is how many stream messages are not yet delivered (the lag).
	Pending uint64
	// AckPending are delivered and not acknowledged; Redelivered are out
	// for redelivery.
	AckPending, Redelivered int
	// DeadLetters are this consumer's entries in the DLQ stream.
	DeadLetters uint64
	Paused      bool
}

// List returns every durable consumer of every stream, sorted by stream
// and name.
func List(ctx context.Context, js jetstream.JetStream) ([]Info, error) {
	if js == nil {
		return nil, errors.New("consumers: JetStream is required")
	}
	var q *dlq.Queue
	if dq, err := dlq.Open(ctx, js); err == nil {
		q = dq
	}
	var out []Info
	streams := js.StreamNames(ctx)
	for name := range streams.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("consumers: stream %s: %w", name, err)
		}
		lister := st.ListConsumers(ctx)
		for ci := range lister.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral: someone's `nats sub`, not ours to report
			}
			in := Info{
				Stream: name, Name: ci.Name,
				Delivered: ci.Delivered.Stream, AckFloor: ci.AckFloor.Stream,
				Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered,
				Paused: ci.Paused,
			}
			if q != nil {
				in.DeadLetters, _ = q.Count(ctx, dlq.Filter{Consumer: ci.Name})
			}
			out = append(out, in)
		}
		if err := lister.Err(); err != nil {
			return nil, fmt.Errorf("consumers: list consumers of %s: %w", name, err)
		}
	}
	if err := streams.Err(); err != nil {
		return nil, fmt.Errorf("consumers: list streams: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stream != out[j].Stream {
			return out[i].Stream < out[j].Stream
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Find returns the consumer named name. A name on several streams is
// ambiguous: give the stream.
func Find(ctx context.Context, js jetstream.JetStream, stream, name string) (Info, error) {
	all, err := List(ctx, js)
	if err != nil {
		return Info{}, err
	}
	var found []Info
	for _, c := range all {
		if c.Name == name && (stream == "" || c.Stream == stream) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return Info{}, fmt.Errorf("consumers: %s: %w", name, ErrNotFound)
	case 1:
		return found[0], nil
	}
	return Info{}, fmt.Errorf("consumers: %s exists on several streams; name the stream", name)
}

// Reset repositions consumer name of stream so its next delivery is stream
// sequence seq (JetStream's consumer reset; nats-server 2.14 or later).
// Unacknowledged deliveries are forgotten. It returns the consumer after
// the reset.
func Reset(ctx context.Context, js jetstream.JetStream, stream, name string, seq uint64) (Info, error) {
	if seq == 0 {
		return Info{}, errors.New("consumers: reset: the sequence must be at least 1")
	}
	resp, err := js.ResetConsumerToSequence(ctx, stream, name, seq)
	if err != nil {
		return Info{}, fmt.Errorf("consumers: reset %s on %s to %d: %w", name, stream, seq, err)
	}
	in := Info{Stream: stream, Name: name}
	if ci := resp.ConsumerInfo; ci != nil {
		in.Delivered, in.AckFloor = ci.Delivered.Stream, ci.AckFloor.Stream
		in.Pending, in.AckPending, in.Redelivered = ci.NumPending, ci.NumAckPending, ci.NumRedelivered
	}
	return in, nil
}
