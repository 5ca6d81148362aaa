package checker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/retry"
)

// StreamEvent is one message of the EVENTS stream as the checks see it.
type StreamEvent struct {
	ID      string    `json:"id"`       // ce-id
	Subject string    `json:"subject"`  // evt.<context>.<name>.<aggregate id>
	Name    string    `json:"name"`     // <context>.<name>
	OrderID string    `json:"order_id"` // the aggregate id when it is an order's event, else ""
	Seq     uint64    `json:"seq"`
	TS      time.Time `json:"ts"` // when the stream stored it
}

// orderContexts are the contexts whose events' aggregate id is the order
// id (sagas/README.md), except inventory.restocked (the SKU).
var orderContexts = map[string]bool{"orders": true, "inventory": true, "payments": true}

// ReadStream reads every message of the EVENTS stream stored when it is
// called, headers only, with an ordered consumer (which survives a
// reconnect and resumes where it was).
func ReadStream(ctx context.Context, js jetstream.JetStream) ([]StreamEvent, error) {
	st, err := js.Stream(ctx, broker.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", broker.StreamEvents, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", broker.StreamEvents, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", broker.StreamEvents, err)
	}
	out := make([]StreamEvent, 0, info.State.Msgs)
	// In a cluster the ordered consumer is re-created for each Fetch, and
	// the pull can reach a node before the consumer does: "no responders".
	// Such a pull is retried (the consumer resumes where it stopped); a
	// batch that makes progress resets the budget.
	const noResponderRetries = 10
	retries := 0
	noResponders := func(err error) bool {
		if !errors.Is(err, nats.ErrNoResponders) || retries >= noResponderRetries {
			return false
		}
		retries++
		return retry.Sleep(ctx, time.Duration(retries)*50*time.Millisecond)
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			if noResponders(err) {
				continue
			}
			return nil, fmt.Errorf("read stream %s: %w", broker.StreamEvents, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read stream %s: %w", broker.StreamEvents, err)
			}
			e := StreamEvent{ID: m.Headers().Get("ce-id"), Subject: m.Subject(), Seq: md.Sequence.Stream, TS: md.Timestamp}
			if parts := strings.Split(e.Subject, "."); len(parts) == 4 && parts[0] == "evt" {
				e.Name = parts[1] + "." + parts[2]
				if orderContexts[parts[1]] && e.Name != "inventory.restocked" {
					e.OrderID = parts[3]
				}
			}
			out = append(out, e)
			if md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if n > 0 {
			retries = 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			if noResponders(err) {
				continue
			}
			return nil, fmt.Errorf("read stream %s: %w", broker.StreamEvents, err)
		}
		if n == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("read stream %s: no message after sequence %d of %d in 5s", broker.StreamEvents, len(out), last)
		}
	}
}
