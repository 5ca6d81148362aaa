package broker

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/schemas"
)

// Publish validates an event against its schema, encodes it in binary
// content mode and publishes it to its subject, waiting for JetStream's
// durable ack. Nats-Msg-Id is the event id, so a retried publish of the
// same event inside the duplicate window is dropped by the broker
// (PubAck.Duplicate reports it).
func Publish(ctx context.Context, js jetstream.JetStream, e *event.Event) (*jetstream.PubAck, error) {
	if err := schemas.ValidateEvent(e); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return PublishValidated(ctx, js, e)
}

// PublishValidated is Publish for an event whose data the caller has just
// validated against its schema (the gateway validates each command once).
// Hazard: anything else must use Publish.
func PublishValidated(ctx context.Context, js jetstream.JetStream, e *event.Event) (*jetstream.PubAck, error) {
	return publish(ctx, js, e, cenats.NewMsg)
}

// PublishStructured is Publish in structured content mode: the body is the
// JSON event format, as a producer on version 1.0.1 of the CloudEvents
// NATS binding sends it. Tradewind publishes binary mode; its consumers
// accept both (tradewind publish --structured exercises that).
func PublishStructured(ctx context.Context, js jetstream.JetStream, e *event.Event) (*jetstream.PubAck, error) {
	if err := schemas.ValidateEvent(e); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return publish(ctx, js, e, func(subject string, e *event.Event) (*nats.Msg, error) {
		h, body, err := cenats.EncodeStructured(ctx, e)
		if err != nil {
			return nil, err
		}
		return &nats.Msg{Subject: subject, Header: h, Data: body}, nil
	})
}

// publish encodes e for its subject with encode and waits for the ack.
func publish(ctx context.Context, js jetstream.JetStream, e *event.Event, encode func(subject string, e *event.Event) (*nats.Msg, error)) (*jetstream.PubAck, error) {
	subject, err := events.NATSSubject(e)
	if err != nil {
		return nil, err
	}
	msg, err := encode(subject, e)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", e.Type(), err)
	}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish %s to %s: %w", e.ID(), subject, err)
	}
	return ack, nil
}
