// Package natsauth is who may do what on Tradewind's NATS: one NATS user
// per Tradewind role (and per producer context, plus ops), the subjects
// each may publish and subscribe to, and the passwords that prove it.
//
// The table in this file is the single place that grants NATS rights.
// Its invariants, checked by tests against a real server:
//   - a producer publishes only its own context's commands (cmd.<context>.*);
//   - events are published only by the participant that owns their
//     context (evt.<context>.>, straight after its commit: outbox.Publisher)
//     and by the relay, which sweeps every context's leftover outbox rows;
//     ntf.> only by the notifier and the relay;
//   - only the api role (the gateway) and ops write the KV buckets
//     tradewind_revoked and tradewind_ratelimit; only ops writes flags;
//   - only the api role and ops read or write the image Object Store
//     (tradewind_images), and only ops may purge it;
//   - only ops purges or deletes streams and their messages, and deletes
//     consumers of COMMANDS and DLQ (readers of EVENTS and of the KV
//     buckets delete their own ordered consumers);
//   - each Tradewind user receives replies on its own inbox prefix
//     (InboxPrefix), so no other user can read the responses it gets (its
//     pull consumers' messages arrive there).
package natsauth

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
)

// Users that are not a single role.
const (
	// UserOps is the operator: every right, including purges and deletes.
	// The CLI and the nats CLI use it (the state file's nats_url holds it
	// for the embedded server).
	UserOps = "ops"
	// UserAll is a process running every role (`make run`).
	UserAll = "tradewind"
	// ProducerPrefix starts the user of a producer service of one bounded
	// context: producer-orders publishes cmd.orders.* only.
	ProducerPrefix = "producer-"
)

// KV buckets and their streams (KV_<bucket>).
const (
	bucketRevoked   = "tradewind_revoked"   // auth.DefaultRevocationBucket
	bucketRateLimit = "tradewind_ratelimit" // ratelimit.DefaultKVBucket
	bucketFlags     = "TRADEWIND_FLAGS"     // flags.Bucket
	bucketLeases    = "tradewind_leases"    // lease.DefaultBucket
)

// Permissions are a user's rights: subjects it may publish to and
// subscribe to (NATS wildcards), and whether it may answer requests it
// received (the discovery endpoints every process serves).
type Permissions struct {
	Publish   []string
	Subscribe []string
	Responses bool
}

// Roles are the Tradewind roles, as config.AllRoles lists them.
var Roles = []string{"api", "ws", "orders", "inventory", "payments", "notifier", "projections", "relay"}

// roleTable is what each role needs beyond common(). Read it as the trust
// model: the right column is everything a compromised role could do.
func roleTable() map[string]Permissions {
	sagaConsumer := join(consume(broker.StreamCommands), consume(broker.StreamEvents),
		[]string{events.DeadLetterPrefix + ">"}) // runners dead-letter what they cannot handle
	// With TRADEWIND_PARTITIONS > 1 a saga role consumes its events from
	// PARTITIONS, through leases it keeps in their bucket (created at start).
	partitioned := join(consume(broker.StreamPartitions), kvWrite(bucketLeases), kvRead(bucketLeases),
		manage(kvStream(bucketLeases)))
	return map[string]Permissions{
		// The gateway publishes every context's commands, records logouts,
		// keeps the shared rate limit state, and stores and serves product
		// images (it creates their bucket at start).
		"api": {Publish: join([]string{events.CommandPrefix + ">"},
			kvWrite(bucketRevoked), kvWrite(bucketRateLimit), kvRead(bucketRateLimit),
			objManage(broker.ImageBucket), objWrite(broker.ImageBucket), objRead(broker.ImageBucket))},
		// WebSocket fan-out: core subscription on ntf.>, revocation watch.
		// No command: the demo page orders through the gateway, and its
		// development-only seed runs where the process holds every role.
		"ws": {Subscribe: []string{events.NotificationPrefix + ">"}},
		// Saga participants consume commands and events, write their
		// results to the outbox (PostgreSQL) and publish them straight
		// after commit: each only its own contexts' events (orders also
		// handles customers' commands, inventory the catalog's).
		"orders":    {Publish: join(sagaConsumer, partitioned, []string{events.EventPrefix + "orders.>", events.EventPrefix + "customers.>"})},
		"inventory": {Publish: join(sagaConsumer, partitioned, []string{events.EventPrefix + "inventory.>", events.EventPrefix + "catalog.>"})},
		"payments":  {Publish: join(sagaConsumer, partitioned, []string{events.EventPrefix + "payments.>"})},
		"notifier":  {Publish: join(sagaConsumer, []string{events.NotificationPrefix + ">"})},
		// Read models: ordered consumers on EVENTS (which delete their
		// ephemeral consumer when they reset or stop).
		"projections": {Publish: append(consume(broker.StreamEvents), deleteConsumers(broker.StreamEvents))},
		// The outbox relay publishes what writers left behind (a crash
		// between commit and publish): any context's events and
		// notifications (no saga step emits a command).
		"relay": {Publish: []string{events.EventPrefix + ">", events.NotificationPrefix + ">"}},
	}
}

// common is what every Tradewind process needs whatever its roles: it
// creates or updates the streams and the KV buckets it uses at start
// (EnsureStreams, flags.Open, auth.NewRevocations), watches flags and
// revocations, polls consumer info for metrics, and registers its roles
// for discovery (micro services on $SRV.> and tradewind.<role>.status).
func common(user string) Permissions {
	var pub []string
	pub = append(pub, "$JS.API.INFO")
	for _, s := range []string{broker.StreamCommands, broker.StreamEvents, broker.StreamNotifications, broker.StreamDLQ,
		broker.StreamPartitions, kvStream(bucketFlags), kvStream(bucketRevoked), kvStream(bucketRateLimit)} {
		pub = append(pub, manage(s)...)
	}
	pub = append(pub, "$JS.API.CONSUMER.INFO.*.*")
	pub = append(pub, kvRead(bucketFlags)...)
	pub = append(pub, kvRead(bucketRevoked)...)
	return Permissions{
		Publish:   pub,
		Subscribe: []string{InboxPrefix(user) + ".>", "$SRV.>", "tradewind.*.status"},
		Responses: true,
	}
}

// consume is reading a stream through durable or ordered pull consumers:
// create (or update) them, fetch, acknowledge, answer flow control.
func consume(stream string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>",
		"$JS.ACK." + stream + ".>",
		"$JS.FC." + stream + ".>",
	}
}

// deleteConsumers is deleting a stream's consumers: an ordered consumer
// (a KV watch, a projection's reader) deletes its own when it stops.
// JetStream cannot tell those from the durable ones, so it is granted only
// where ordered consumers are used.
func deleteConsumers(stream string) string { return "$JS.API.CONSUMER.DELETE." + stream + ".>" }

// kvRead is reading and watching a KV bucket.
func kvRead(bucket string) []string {
	return append(consume(kvStream(bucket)), deleteConsumers(kvStream(bucket)),
		"$JS.API.DIRECT.GET."+kvStream(bucket)+".>",
		"$JS.API.STREAM.MSG.GET."+kvStream(bucket))
}

// kvWrite is putting into (and so deleting from) a KV bucket: a KV delete
// is a put with a header, so writers can do both.
func kvWrite(bucket string) []string { return []string{"$KV." + bucket + ".>"} }

func kvStream(bucket string) string { return "KV_" + bucket }

// manage is creating a stream at start and updating its configuration.
func manage(stream string) []string {
	return []string{"$JS.API.STREAM.CREATE." + stream, "$JS.API.STREAM.UPDATE." + stream, "$JS.API.STREAM.INFO." + stream}
}

// objManage is creating an Object Store bucket at start (and updating its
// configuration).
func objManage(bucket string) []string {
	return manage(objStream(bucket))
}

// objWrite is putting objects (chunks and metadata) into a bucket. It
// does not include the purge that replacing an object needs: only ops
// purges (denied).
func objWrite(bucket string) []string { return []string{"$O." + bucket + ".>"} }

// objRead is reading objects: their metadata (direct or stream message
// get of the last meta message) and their chunks (an ordered push
// consumer, which deletes itself when done, with flow control).
func objRead(bucket string) []string {
	st := objStream(bucket)
	return []string{
		"$JS.API.DIRECT.GET." + st + ".>", "$JS.API.STREAM.MSG.GET." + st,
		"$JS.API.CONSUMER.CREATE." + st, "$JS.API.CONSUMER.CREATE." + st + ".>",
		"$JS.FC." + st + ".>", deleteConsumers(st),
	}
}

func objStream(bucket string) string { return "OBJ_" + bucket }

// denied are refused to everyone but ops whatever the allow lists say.
var denied = []string{
	"$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.MSG.DELETE.>",
	"$KV." + bucketFlags + ".>",
	"$JS.API.CONSUMER.DELETE." + broker.StreamCommands + ".>", "$JS.API.CONSUMER.DELETE." + broker.StreamDLQ + ".>",
}

// ForRoles is the union of the roles' rights for the user a process with
// those roles connects as. Unknown roles are an error.
func ForRoles(roles []string) (Permissions, error) {
	table := roleTable()
	user := UserFor(roles)
	p := common(user)
	for _, r := range roles {
		rp, ok := table[r]
		if !ok {
			return Permissions{}, fmt.Errorf("natsauth: unknown role %q (known: %s)", r, strings.Join(Roles, ","))
		}
		p.Publish = append(p.Publish, rp.Publish...)
		p.Subscribe = append(p.Subscribe, rp.Subscribe...)
	}
	p.Publish, p.Subscribe = dedupe(p.Publish), dedupe(p.Subscribe)
	return p, nil
}

// Producer is the right of a producer service of one bounded context:
// publish its commands and receive JetStream's acknowledgements.
func Producer(context string) Permissions {
	return Permissions{Publish: []string{events.CommandPrefix + context + ".*"}, Subscribe: []string{"_INBOX.>"}}
}

// Ops may do everything.
func Ops() Permissions { return Permissions{Publish: []string{">"}, Subscribe: []string{">"}} }

// ProducerContexts are the bounded contexts that receive commands, from
// the message catalogue.
func ProducerContexts() []string {
	var out []string
	for _, s := range events.All() {
		if s.Kind == events.Command && !slices.Contains(out, s.Context) {
			out = append(out, s.Context)
		}
	}
	sort.Strings(out)
	return out
}

// UserFor names the user of a process running roles: the role itself for
// one, UserAll for all of them, else the sorted roles joined by "_"
// (api_orders_relay: a file name, a k8s Secret key and a NATS user alike).
func UserFor(roles []string) string {
	rs := dedupe(slices.Clone(roles))
	sort.Strings(rs)
	all := slices.Clone(Roles)
	sort.Strings(all)
	switch {
	case len(rs) == 1:
		return rs[0]
	case slices.Equal(rs, all):
		return UserAll
	}
	return strings.Join(rs, "_")
}

// InboxPrefix is the reply subject prefix of a Tradewind user: replies to
// its requests (and its pull consumers' messages) go to <prefix>.<id>,
// which only it may subscribe to.
func InboxPrefix(user string) string {
	var b strings.Builder
	b.WriteString("_INBOX_")
	for _, r := range user {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Principal is one NATS user and its rights.
type Principal struct {
	User  string
	Perms Permissions
	// Ops is the unrestricted operator (no deny list).
	Ops bool
}

// Principals lists every user of a deployment: one per role, UserAll,
// ops, one producer per command context, and one per extra role set (a
// process running several roles, e.g. "orders,relay").
func Principals(extra ...[]string) ([]Principal, error) {
	var out []Principal
	seen := map[string]bool{}
	add := func(p Principal) {
		if !seen[p.User] {
			seen[p.User] = true
			out = append(out, p)
		}
	}
	add(Principal{User: UserOps, Perms: Ops(), Ops: true})
	sets := [][]string{Roles}
	for _, r := range Roles {
		sets = append(sets, []string{r})
	}
	sets = append(sets, extra...)
	for _, rs := range sets {
		p, err := ForRoles(rs)
		if err != nil {
			return nil, err
		}
		add(Principal{User: UserFor(rs), Perms: p})
	}
	for _, c := range ProducerContexts() {
		add(Principal{User: ProducerPrefix + c, Perms: Producer(c)})
	}
	return out, nil
}

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// MarkdownTable renders the rights of every kind of user as the Markdown
// table docs/security.md shows (a test keeps the two in sync).
func MarkdownTable() string {
	var b strings.Builder
	code := func(s []string) string {
		if len(s) == 0 {
			return "—"
		}
		q := summarize(s)
		for i, v := range q {
			if !strings.Contains(v, " ") {
				q[i] = "`" + v + "`"
			}
		}
		return strings.Join(q, ", ")
	}
	b.WriteString("| User | May publish | May subscribe |\n|---|---|---|\n")
	c := common("<user>")
	c.Subscribe[0] = "_INBOX_<user>.>"
	fmt.Fprintf(&b, "| every Tradewind process (each role below adds to it) | %s | %s, answers requests it received |\n",
		code(c.Publish), code(c.Subscribe))
	table := roleTable()
	for _, r := range Roles {
		p := table[r]
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r, code(p.Publish), code(p.Subscribe))
	}
	fmt.Fprintf(&b, "| `%s` (all roles), `a_b` (roles a and b) | the union of its roles' | the union of its roles' |\n", UserAll)
	p := Producer("<context>")
	fmt.Fprintf(&b, "| `%s<context>` (%s) | %s | %s |\n", ProducerPrefix, strings.Join(ProducerContexts(), ", "), code(p.Publish), code(p.Subscribe))
	fmt.Fprintf(&b, "| `%s` | everything | everything |\n", UserOps)
	fmt.Fprintf(&b, "\nRefused to every user but `%s`, whatever the lists above say: %s.\n", UserOps, code(denied))
	return b.String()
}

// summarize names the groups of JetStream API subjects the table is built
// from, so that the documentation reads as rights; the rest stays as is.
func summarize(subjects []string) []string {
	left := slices.Clone(subjects)
	var out []string
	take := func(group []string, name string) {
		for _, g := range group {
			if !slices.Contains(left, g) {
				return
			}
		}
		left = slices.DeleteFunc(left, func(v string) bool { return slices.Contains(group, v) })
		out = append(out, name)
	}
	streams := []string{broker.StreamCommands, broker.StreamEvents, broker.StreamNotifications, broker.StreamDLQ, broker.StreamPartitions}
	for _, bk := range []string{bucketFlags, bucketRevoked, bucketRateLimit} {
		streams = append(streams, kvStream(bk))
	}
	var mgmt []string
	for _, st := range streams {
		mgmt = append(mgmt, manage(st)...)
	}
	take(mgmt, "create, update and read the configuration of the streams "+strings.Join(streams, ", "))
	for _, bk := range []string{bucketFlags, bucketRevoked, bucketRateLimit, bucketLeases} {
		take(kvRead(bk), "read and watch KV "+bk)
	}
	take(manage(kvStream(bucketLeases)), "create, update and read the configuration of KV "+bucketLeases)
	for _, st := range []string{broker.StreamCommands, broker.StreamEvents, broker.StreamPartitions} {
		take(consume(st), "consume "+st+" (create consumers, fetch, ack)")
	}
	take(objManage(broker.ImageBucket), "create, update and read the configuration of Object Store "+broker.ImageBucket)
	take(objRead(broker.ImageBucket), "read objects of Object Store "+broker.ImageBucket)
	take(objWrite(broker.ImageBucket), "put objects into Object Store "+broker.ImageBucket)
	for _, v := range left {
		switch {
		case strings.HasPrefix(v, "$JS.API.CONSUMER.DELETE."):
			out = append(out, "delete consumers of "+strings.TrimSuffix(strings.TrimPrefix(v, "$JS.API.CONSUMER.DELETE."), ".>"))
		case strings.HasPrefix(v, "$KV.") && strings.HasSuffix(v, ".>"):
			out = append(out, "write (and so delete) KV "+strings.TrimSuffix(strings.TrimPrefix(v, "$KV."), ".>"))
		case v == "$JS.API.CONSUMER.INFO.*.*":
			out = append(out, "read consumer info")
		default:
			out = append(out, v)
		}
	}
	return out
}
