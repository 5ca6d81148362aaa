package projector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
)

// source reads a projection's subjects from the EVENTS stream in order,
// from a start sequence, in batches.
type source struct {
	cons jetstream.Consumer
	it   jetstream.MessagesContext
	// The last message received: which (ordered, hence re-created)
	// consumer delivered it, and its consumer sequence. caughtUpTo compares
	// them with the consumer's info to know nothing is still in flight.
	lastConsumer    string
	lastConsumerSeq uint64
}

// openSource starts an ordered consumer at stream sequence from (>= 1).
// The consumer is ephemeral: the checkpoint is the durable position.
func openSource(ctx context.Context, js jetstream.JetStream, name string, subjects []string, from uint64, prefetch int) (*source, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       max(from, 1),
		InactiveThreshold: time.Minute,
		// Unique per source: a restarted worker must not meet the previous
		// source's consumer (still alive until InactiveThreshold) by name.
		NamePrefix: "projection-" + name + "-" + randomSuffix(),
	}
	cons, err := js.OrderedConsumer(ctx, broker.StreamEvents, cfg)
	if err != nil {
		return nil, fmt.Errorf("projection %s: ordered consumer from %d: %w", name, from, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(prefetch), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("projection %s: subscribe: %w", name, err)
	}
	return &source{cons: cons, it: it}, nil
}

func (s *source) close() { s.it.Stop() }

// next returns up to n events: it waits until ctx ends for the first (or
// at most wait, when wait > 0) and then takes what arrives within linger.
// pending is how many matching messages the stream still holds after the
// last one returned (the lag).
func (s *source) next(ctx context.Context, n int, wait, linger time.Duration) (evs []Event, pending uint64, err error) {
	var first jetstream.Msg
	if wait > 0 {
		first, err = s.it.Next(jetstream.NextMaxWait(wait))
	} else {
		first, err = s.it.Next(jetstream.NextContext(ctx))
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("next message: %w", err)
	}
	evs = make([]Event, 0, n)
	add := func(m jetstream.Msg) error {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		evs = append(evs, decodeMsg(m, meta.Sequence.Stream))
		s.lastConsumer, s.lastConsumerSeq = meta.Consumer, meta.Sequence.Consumer
		pending = meta.NumPending
		return nil
	}
	if err := add(first); err != nil {
		return nil, 0, err
	}
	for len(evs) < n {
		d := linger
		if pending > 0 {
			d = time.Second // the stream holds more: it is on its way
		}
		if d <= 0 {
			break
		}
		m, err := s.it.Next(jetstream.NextMaxWait(d))
		if err != nil {
			break
		}
		if err := add(m); err != nil {
			return nil, 0, err
		}
	}
	return evs, pending, nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
