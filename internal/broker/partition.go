package broker

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
)

// StreamPartitions is EVENTS split into Topology.Partitions partitions by
// aggregate id: prt.<partition>.<original subject>. It exists only when
// Partitions > 1. JetStream writes it (a stream source with a subject
// transform), nothing publishes on it, and every message of one aggregate
// (one order) lands in one partition, in EVENTS order.
//
// Why a copy rather than a transform on EVENTS itself: the projections,
// the notifier, the checker and every tool filter EVENTS on
// evt.<context>.<event>.<aggregate id>; a partition token in those
// subjects would change them all, and a history written before the switch
// would have none. The copy changes nothing for them and costs one more
// store of each event for PartitionsMaxAge.
const StreamPartitions = "PARTITIONS"

// MaxPartitions bounds Topology.Partitions (a durable consumer per role
// and partition).
const MaxPartitions = 256

// PartitionTransform is the subject transform of StreamPartitions' source:
// the partition is JetStream's partition(n, token) (a hash of the
// aggregate id), so the mapping is the same on every server and process.
func PartitionTransform(partitions int) jetstream.SubjectTransformConfig {
	return jetstream.SubjectTransformConfig{
		Source: events.EventPrefix + "*.*.*",
		Destination: fmt.Sprintf("%s{{partition(%d,3)}}.%s{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}",
			events.PartitionPrefix, partitions, events.EventPrefix),
	}
}

// PartitionFilter is filter (an EVENTS subject filter) restricted to one
// partition of StreamPartitions.
func PartitionFilter(partition int, filter string) string {
	return events.PartitionPrefix + strconv.Itoa(partition) + "." + filter
}

// OriginalSubject is the subject a message was published on: a
// StreamPartitions subject without its partition prefix; any other
// subject as it is.
func OriginalSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, events.PartitionPrefix)
	if !ok {
		return subject
	}
	if _, orig, ok := strings.Cut(rest, "."); ok {
		return orig
	}
	return subject
}

func (t Topology) partitionStream() jetstream.StreamConfig {
	dup := min(t.DuplicateWindow, t.PartitionsMaxAge)
	if dup <= 0 {
		dup = t.DuplicateWindow
	}
	return jetstream.StreamConfig{
		Name:        StreamPartitions,
		Description: fmt.Sprintf("EVENTS in %d partitions by aggregate id, for the partitioned saga consumers", t.Partitions),
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		Duplicates:  dup,
		MaxAge:      t.PartitionsMaxAge,
		MaxMsgSize:  t.MaxMsgSize,
		Discard:     jetstream.DiscardOld,
		Sources: []*jetstream.StreamSource{{
			Name:              StreamEvents,
			SubjectTransforms: []jetstream.SubjectTransformConfig{PartitionTransform(t.Partitions)},
		}},
	}
}
