package events

// The subject prefixes: the first token of every NATS subject, one per
// stream (internal/broker's topology binds each stream to prefix + ">").
// Every subject is built from them; none is spelled out elsewhere.
const (
	// CommandPrefix: cmd.<context>.<name>, stream COMMANDS.
	CommandPrefix = "cmd."
	// EventPrefix: evt.<context>.<name>.<aggregate id>, stream EVENTS.
	EventPrefix = "evt."
	// NotificationPrefix: ntf.<channel>, stream NOTIFICATIONS; the
	// WebSocket server subscribes to all of it.
	NotificationPrefix = "ntf."
	// DeadLetterPrefix: dlq.<consumer>.<original subject>, stream DLQ.
	DeadLetterPrefix = "dlq."
	// PartitionPrefix: prt.<partition>.<original subject>, stream
	// PARTITIONS, a copy of EVENTS that only a stream transform writes
	// (internal/broker's Topology.Partitions); nothing publishes on it.
	PartitionPrefix = "prt."
)
