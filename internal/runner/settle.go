// The settle phase: each message is acked, nak'ed with its delay, or
// dead-lettered with its reason.

package runner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/events"
)

// judge decides between retry and dead letter for a failed message.
func (r *Runner) judge(it *item, err error) {
	attempt := int(it.meta.NumDelivered)
	var re *retryError
	switch {
	case IsPermanent(err):
		it.outcome, it.reason = deadLetter, err
	case errors.As(err, &re):
		// The handler asked to wait (e.g. a circuit breaker is open):
		// a delayed redelivery that does not fail the message.
		it.outcome, it.delay, it.reason = nak, re.after, err
	case attempt >= r.cfg.MaxDeliver:
		it.outcome, it.reason = deadLetter, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
	default:
		it.outcome, it.delay, it.reason = nak, r.cfg.Backoff(attempt), err
	}
	if it.outcome == nak {
		r.logFor(it).Warn("message failed; will retry", "retry_in", it.delay, "err", err)
	}
}

// settle acks, naks or dead-letters every message of the batch.
func (r *Runner) settle(ctx context.Context, items []item) {
	for i := range items {
		it := &items[i]
		switch it.outcome {
		case ack:
			_ = it.msg.Ack()
		case nak:
			r.stats.Retried.Add(1)
			_ = it.msg.NakWithDelay(it.delay)
		case deadLetter:
			if err := r.deadLetter(ctx, it); err != nil {
				r.logFor(it).Error("cannot dead-letter; message will be redelivered", "err", err)
				it.outcome = nak
				_ = it.msg.NakWithDelay(time.Second)
				continue
			}
			r.stats.DeadLettered.Add(1)
			_ = it.msg.TermWithReason(truncate(it.reason.Error(), 200))
		}
	}
}

// Dead-letter headers, beside the original message's headers.
const (
	HdrDLQConsumer = "Tradewind-Dlq-Consumer"
	HdrDLQSubject  = "Tradewind-Dlq-Subject"
	HdrDLQStream   = "Tradewind-Dlq-Stream"
	HdrDLQSeq      = "Tradewind-Dlq-Stream-Seq"
	HdrDLQAttempts = "Tradewind-Dlq-Attempts"
	HdrDLQReason   = "Tradewind-Dlq-Reason"
	HdrDLQTime     = "Tradewind-Dlq-Time"
)

// DeadLetterSubject is where a consumer's dead letters go.
func DeadLetterSubject(consumer, originalSubject string) string {
	return events.DeadLetterPrefix + consumer + "." + originalSubject
}

func (r *Runner) deadLetter(ctx context.Context, it *item) error {
	m := nats.NewMsg(DeadLetterSubject(r.cfg.Name, it.subject()))
	for k, v := range it.msg.Headers() {
		if k == nats.MsgIdHdr || len(k) > 4 && k[:4] == "Nats" {
			continue
		}
		m.Header[k] = v
	}
	m.Data = it.msg.Data()
	var seq, attempts uint64
	if it.meta != nil {
		seq, attempts = it.meta.Sequence.Stream, it.meta.NumDelivered
	}
	m.Header.Set(HdrDLQConsumer, r.cfg.Name)
	m.Header.Set(HdrDLQSubject, it.subject()) // where a replay publishes it
	m.Header.Set(HdrDLQStream, r.cfg.Stream)
	m.Header.Set(HdrDLQSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(HdrDLQAttempts, strconv.FormatUint(attempts, 10))
	m.Header.Set(HdrDLQReason, truncate(it.reason.Error(), 2000))
	m.Header.Set(HdrDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	// One dead letter per (consumer, stream position), even if this is redone.
	m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq:%s:%s:%d", r.cfg.Name, r.cfg.Stream, seq))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(pctx, m); err != nil {
		return fmt.Errorf("publish dead letter of seq %d: %w", seq, err)
	}
	r.logFor(it).Error("message dead-lettered", "attempts", attempts, "reason", it.reason.Error())
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
