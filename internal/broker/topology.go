package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
)

// Stream names. Subjects are documented in docs/subjects.md.
const (
	StreamCommands      = "COMMANDS"      // cmd.<context>.<verb>
	StreamEvents        = "EVENTS"        // evt.<context>.<event>.<aggregate id>
	StreamNotifications = "NOTIFICATIONS" // ntf.>
	StreamDLQ           = "DLQ"           // dlq.<consumer>.<original subject>
)

// Topology is the JetStream layout as code: every stream Tradewind needs,
// created or updated idempotently at start.
type Topology struct {
	// Replicas per stream: 1 for a single server, 3 for a cluster.
	Replicas int
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values;
	// a publish repeating an id inside it is dropped by the broker.
	DuplicateWindow time.Duration
	// Retention per stream (0 = keep forever). EVENTS is the source of
	// truth for projection rebuilds, so it keeps everything by default.
	CommandsMaxAge      time.Duration
	EventsMaxAge        time.Duration
	NotificationsMaxAge time.Duration
	DLQMaxAge           time.Duration
	// MaxMsgSize bounds a single message (bytes, 0 = server limit).
	MaxMsgSize int32
	// Partitions splits the saga's event consumers by aggregate id
	// (StreamPartitions); 0 or 1: no split, no PARTITIONS stream.
	Partitions int
	// PartitionsMaxAge is how long PARTITIONS keeps its copy of an event.
	PartitionsMaxAge time.Duration
}

// DefaultTopology is the development layout.
func DefaultTopology() Topology {
	return Topology{
		Replicas:            1,
		DuplicateWindow:     2 * time.Minute,
		CommandsMaxAge:      7 * 24 * time.Hour,
		NotificationsMaxAge: 30 * 24 * time.Hour,
		MaxMsgSize:          2 << 20,
		Partitions:          1,
		PartitionsMaxAge:    7 * 24 * time.Hour,
	}
}

// Validate lists every problem at once.
func (t Topology) Validate() error {
	var errs []error
	if t.Replicas < 1 || t.Replicas > 5 {
		errs = append(errs, fmt.Errorf("stream replicas must be 1..5, got %d", t.Replicas))
	}
	if t.DuplicateWindow < time.Second {
		errs = append(errs, fmt.Errorf("duplicate window must be at least 1s, got %s", t.DuplicateWindow))
	}
	if t.Partitions < 0 || t.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf("partitions must be 1..%d, got %d", MaxPartitions, t.Partitions))
	}
	if t.Partitions > 1 && t.PartitionsMaxAge < time.Minute {
		errs = append(errs, fmt.Errorf("partitions max age must be at least 1m, got %s", t.PartitionsMaxAge))
	}
	return errors.Join(errs...)
}

// Streams returns the stream configurations of the topology.
func (t Topology) Streams() []jetstream.StreamConfig {
	base := func(name, desc string, subjects []string, maxAge time.Duration) jetstream.StreamConfig {
		dup := t.DuplicateWindow
		if maxAge > 0 && dup > maxAge {
			dup = maxAge
		}
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    subjects,
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    t.Replicas,
			Duplicates:  dup,
			MaxAge:      maxAge,
			MaxMsgSize:  t.MaxMsgSize,
			Discard:     jetstream.DiscardOld,
		}
	}
	out := []jetstream.StreamConfig{
		base(StreamCommands, "Commands from producer services", []string{events.CommandPrefix + ">"}, t.CommandsMaxAge),
		base(StreamEvents, "Domain events: the source of truth for projections", []string{events.EventPrefix + ">"}, t.EventsMaxAge),
		base(StreamNotifications, "User-facing notifications", []string{events.NotificationPrefix + ">"}, t.NotificationsMaxAge),
		base(StreamDLQ, "Dead letters with their reasons", []string{events.DeadLetterPrefix + ">"}, t.DLQMaxAge),
	}
	if t.Partitions > 1 {
		out = append(out, t.partitionStream())
	}
	return out
}

// EnsureStreams creates or updates every stream. A change JetStream cannot
// apply in place (storage type, a subject overlap, fewer replicas on a
// single server) is returned as a startup error naming the stream.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, t Topology) error {
	if err := t.Validate(); err != nil {
		return err
	}
	for _, cfg := range t.Streams() {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("stream %s: cannot create or update to the configured layout (replicas=%d, duplicates=%s): %w",
				cfg.Name, cfg.Replicas, cfg.Duplicates, err)
		}
	}
	return nil
}

// ConsumerSpec is a durable pull consumer of one handler or projection.
type ConsumerSpec struct {
	Name           string
	Stream         string
	FilterSubjects []string
	// MaxDeliver bounds attempts: JetStream's default is unlimited, which
	// lets a poison message loop forever and block its aggregate.
	MaxDeliver int
	AckWait    time.Duration
	// MaxAckPending bounds the unacknowledged messages across instances.
	MaxAckPending int
	// DeliverAll starts from the first message (default); otherwise new only.
	DeliverNew bool
}

// EnsureConsumer creates or updates a durable pull consumer.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, s ConsumerSpec) (jetstream.Consumer, error) {
	if s.Name == "" || s.Stream == "" || len(s.FilterSubjects) == 0 {
		return nil, errors.New("consumer: name, stream and filter subjects are required")
	}
	if s.MaxDeliver <= 0 {
		return nil, fmt.Errorf("consumer %s: MaxDeliver must be positive (unlimited redelivery loops poison messages forever)", s.Name)
	}
	policy := jetstream.DeliverAllPolicy
	if s.DeliverNew {
		policy = jetstream.DeliverNewPolicy
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       s.Name,
		Description:   "tradewind " + s.Name,
		DeliverPolicy: policy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.AckWait,
		MaxDeliver:    s.MaxDeliver,
		MaxAckPending: s.MaxAckPending,
	}
	if len(s.FilterSubjects) == 1 {
		cfg.FilterSubject = s.FilterSubjects[0]
	} else {
		cfg.FilterSubjects = s.FilterSubjects
	}
	c, err := js.CreateOrUpdateConsumer(ctx, s.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", s.Name, s.Stream, err)
	}
	return c, nil
}

// ImageBucket is the Object Store bucket of product images (its stream is
// OBJ_tradewind_images): originals and thumbnails, named
// "<sha256 of the original>/<file>", so any gateway instance serves any
// image and the bytes are replicated like the streams.
const ImageBucket = "tradewind_images"

// EnsureImageStore creates or updates the image bucket with the
// topology's replicas (the api role calls it at start, beside its KV
// buckets). Objects are never replaced (content-addressed), so the
// bucket's writers need no purge right.
func EnsureImageStore(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.ObjectStore, error) {
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      ImageBucket,
		Description: "Product images and their thumbnails, content-addressed",
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: cannot create or update (replicas=%d): %w", ImageBucket, replicas, err)
	}
	return obs, nil
}
