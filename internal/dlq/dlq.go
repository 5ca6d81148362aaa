// Package dlq inspects, replays and purges dead letters: the messages a
// consumer runner gave up on, kept in the DLQ stream at
// dlq.<consumer>.<original subject> with their original headers and body
// and Tradewind-Dlq-* headers saying why (see internal/runner.deadLetter).
//
// An entry's ID is its sequence in the DLQ stream. Replaying an entry
// republishes the original message to its original subject with a new
// Nats-Msg-Id (so the broker accepts it past the duplicate window) but the
// same CloudEvent id (so consumers that applied it already skip it in
// their inbox), then deletes the entry. The replay's Nats-Msg-Id is derived
// from the entry, so a replay repeated after a crash between publish and
// delete is dropped by the broker inside the duplicate window.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/runner"
)

// HdrReplayOf marks a replayed message with the DLQ entry it came from.
const HdrReplayOf = "Tradewind-Replay-Of"

var (
	// ErrNotFound is returned for an ID that is not in the DLQ stream.
	ErrNotFound = errors.New("dead letter not found")
	// ErrNotDeadLetter is returned for a DLQ message without the
	// Tradewind-Dlq-Subject header (not written by a runner): it has no
	// original subject to be replayed to.
	ErrNotDeadLetter = errors.New("not a Tradewind dead letter (no " + runner.HdrDLQSubject + " header)")
)

// Entry is one dead letter.
type Entry struct {
	// ID is the entry's sequence in the DLQ stream.
	ID uint64
	// Consumer gave up on the message, after Attempts deliveries, for Reason.
	Consumer string
	Attempts int
	Reason   string
	// Subject, Stream and StreamSeq locate the original message.
	Subject   string
	Stream    string
	StreamSeq uint64
	// At is when the consumer gave up.
	At time.Time
	// EventID and Type are the CloudEvent's (empty when it did not decode).
	EventID, Type string
	Header        nats.Header
	Data          []byte
}

func entryFrom(m *jetstream.RawStreamMsg) Entry {
	h := m.Header
	if h == nil {
		h = nats.Header{}
	}
	e := Entry{
		ID: m.Sequence, Consumer: h.Get(runner.HdrDLQConsumer), Reason: h.Get(runner.HdrDLQReason),
		Subject: h.Get(runner.HdrDLQSubject), Stream: h.Get(runner.HdrDLQStream),
		EventID: h.Get("ce-id"), Type: h.Get("ce-type"), Header: h, Data: m.Data, At: m.Time,
	}
	e.Attempts, _ = strconv.Atoi(h.Get(runner.HdrDLQAttempts))
	e.StreamSeq, _ = strconv.ParseUint(h.Get(runner.HdrDLQSeq), 10, 64)
	if t, err := time.Parse(time.RFC3339Nano, h.Get(runner.HdrDLQTime)); err == nil {
		e.At = t
	}
	if e.Consumer == "" { // older or foreign entry: the subject still says
		if rest, ok := strings.CutPrefix(m.Subject, events.DeadLetterPrefix); ok {
			e.Consumer, _, _ = strings.Cut(rest, ".")
		}
	}
	return e
}

// Filter selects entries. The zero value selects every entry.
type Filter struct {
	// Consumer keeps the dead letters of one consumer.
	Consumer string
	// Limit bounds List (0 = no bound).
	Limit int
}

func (f Filter) subject() string {
	if f.Consumer == "" {
		return events.DeadLetterPrefix + ">"
	}
	return runner.DeadLetterSubject(f.Consumer, ">")
}

// Queue is the DLQ stream.
type Queue struct {
	js     jetstream.JetStream
	stream string
}

// Open returns the DLQ stream (broker.StreamDLQ unless stream is given).
func Open(ctx context.Context, js jetstream.JetStream, stream ...string) (*Queue, error) {
	if js == nil {
		return nil, errors.New("dlq: JetStream is required")
	}
	name := broker.StreamDLQ
	if len(stream) > 0 && stream[0] != "" {
		name = stream[0]
	}
	if _, err := js.Stream(ctx, name); err != nil {
		return nil, fmt.Errorf("dlq: stream %s: %w", name, err)
	}
	return &Queue{js: js, stream: name}, nil
}

func (q *Queue) st(ctx context.Context) (jetstream.Stream, error) {
	s, err := q.js.Stream(ctx, q.stream)
	if err != nil {
		return nil, fmt.Errorf("dlq: stream %s: %w", q.stream, err)
	}
	return s, nil
}

// List returns the entries selected by f, oldest first. It reads with
// direct gets (no consumer is created, nothing is acknowledged).
func (q *Queue) List(ctx context.Context, f Filter) ([]Entry, error) {
	s, err := q.st(ctx)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for seq := uint64(1); f.Limit <= 0 || len(out) < f.Limit; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(f.subject()))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dlq: read from seq %d: %w", seq, err)
		}
		out = append(out, entryFrom(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// Get returns entry id.
func (q *Queue) Get(ctx context.Context, id uint64) (Entry, error) {
	s, err := q.st(ctx)
	if err != nil {
		return Entry{}, err
	}
	m, err := s.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, fmt.Errorf("dlq: entry %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("dlq: entry %d: %w", id, err)
	}
	return entryFrom(m), nil
}

// Replayed reports one replay.
type Replayed struct {
	Entry Entry
	// Stream and Seq are where the replayed message landed.
	Stream string
	Seq    uint64
	// Duplicate is true when the broker already had this replay (a replay
	// repeated inside the duplicate window): nothing new was published.
	Duplicate bool
}

// ReplayMsgID is the Nats-Msg-Id of entry e's replay.
func ReplayMsgID(e Entry) string {
	return fmt.Sprintf("replay:%s:%d:%s", e.Consumer, e.ID, e.EventID)
}

// Replay republishes entry id to its original subject and deletes it.
func (q *Queue) Replay(ctx context.Context, id uint64) (Replayed, error) {
	e, err := q.Get(ctx, id)
	if err != nil {
		return Replayed{}, err
	}
	return q.replay(ctx, e)
}

func (q *Queue) replay(ctx context.Context, e Entry) (Replayed, error) {
	if e.Subject == "" {
		return Replayed{}, fmt.Errorf("dlq: entry %d: %w", e.ID, ErrNotDeadLetter)
	}
	m := nats.NewMsg(e.Subject)
	for k, v := range e.Header {
		if strings.HasPrefix(k, "Tradewind-Dlq-") || strings.HasPrefix(k, "Nats-") {
			continue
		}
		m.Header[k] = v
	}
	m.Data = e.Data
	m.Header.Set(HdrReplayOf, fmt.Sprintf("%s:%d", q.stream, e.ID))
	m.Header.Set(nats.MsgIdHdr, ReplayMsgID(e))
	ack, err := q.js.PublishMsg(ctx, m)
	if err != nil {
		return Replayed{}, fmt.Errorf("dlq: replay entry %d to %s: %w", e.ID, e.Subject, err)
	}
	s, err := q.st(ctx)
	if err != nil {
		return Replayed{}, err
	}
	if err := s.DeleteMsg(ctx, e.ID); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return Replayed{}, fmt.Errorf("dlq: entry %d replayed to %s seq %d but not deleted (replaying it again is safe): %w",
			e.ID, ack.Stream, ack.Sequence, err)
	}
	return Replayed{Entry: e, Stream: ack.Stream, Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// ReplayAll replays every entry selected by f, oldest first, and stops at
// the first failure. It returns the replays done.
func (q *Queue) ReplayAll(ctx context.Context, f Filter) ([]Replayed, error) {
	entries, err := q.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Replayed, 0, len(entries))
	for _, e := range entries {
		r, err := q.replay(ctx, e)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Count returns how many entries f selects.
func (q *Queue) Count(ctx context.Context, f Filter) (uint64, error) {
	s, err := q.st(ctx)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(f.subject()))
	if err != nil {
		return 0, fmt.Errorf("dlq: count: %w", err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// Purge deletes every entry f selects (f.Limit is ignored) and returns how
// many there were.
func (q *Queue) Purge(ctx context.Context, f Filter) (uint64, error) {
	n, err := q.Count(ctx, f)
	if err != nil {
		return 0, err
	}
	s, err := q.st(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(f.subject())); err != nil {
		return 0, fmt.Errorf("dlq: purge %s: %w", f.subject(), err)
	}
	return n, nil
}

// View is a dead letter as people and tools see it: `tradewind dlq list
// --json` and `show`, and the operators' HTTP endpoints, print these
// fields. Data is the body as JSON when it is JSON, else DataText.
type View struct {
	ID        uint64              `json:"id"`
	Consumer  string              `json:"consumer"`
	Subject   string              `json:"subject"`
	Stream    string              `json:"stream"`
	StreamSeq uint64              `json:"stream_seq"`
	Attempts  int                 `json:"attempts"`
	Reason    string              `json:"reason"`
	At        time.Time           `json:"dead_lettered_at"`
	EventID   string              `json:"event_id"`
	Type      string              `json:"type"`
	Headers   map[string][]string `json:"headers,omitempty"`
	Data      json.RawMessage     `json:"data,omitempty"`
	DataText  string              `json:"data_text,omitempty"`
}

// View is the entry's view; full adds its headers and body.
func (e Entry) View(full bool) View {
	v := View{ID: e.ID, Consumer: e.Consumer, Subject: e.Subject, Stream: e.Stream, StreamSeq: e.StreamSeq,
		Attempts: e.Attempts, Reason: e.Reason, At: e.At, EventID: e.EventID, Type: e.Type}
	if full {
		v.Headers = e.Header
		if json.Valid(e.Data) {
			v.Data = e.Data
		} else {
			v.DataText = string(e.Data)
		}
	}
	return v
}
