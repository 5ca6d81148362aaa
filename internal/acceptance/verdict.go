package acceptance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/checker"
	"github.com/tradewind/tradewind/internal/retry"
)

// quietRounds is how many consecutive observations must find the system
// at rest: one round could fall between a relay's publish and the
// stream's delivery bookkeeping.
const quietRounds = 3

// WaitQuiescent waits until the system is at rest: the outbox is empty
// and every durable consumer on COMMANDS, EVENTS and PARTITIONS (when
// partitioned; its copy of EVENTS caught up) has neither pending nor
// unacknowledged messages, in quietRounds consecutive observations.
//
// Why that is "at rest": the outbox is read first. A message published
// after that read comes from an outbox row committed after it, by a
// consumer that acknowledges only after committing — so at the consumer
// read that consumer is still ack-pending, or its row has been relayed
// and the new message is pending somewhere. (Ordered consumers, which
// projections use, are not durable and are not waited for.)
func WaitQuiescent(ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool) error {
	quiet := 0
	var why string
	for {
		why = Busy(ctx, js, pool)
		if why == "" {
			quiet++
		} else {
			quiet = 0
		}
		if quiet == quietRounds {
			return nil
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) {
			return fmt.Errorf("waiting for the system to be at rest: %w (%s)", ctx.Err(), why)
		}
	}
}

// Busy says what is still moving: outbox rows, or durable consumers with
// pending or unacknowledged messages ("" when nothing is).
func Busy(ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool) string {
	var outbox int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM core.outbox`).Scan(&outbox); err != nil {
		return "outbox: " + err.Error()
	}
	if outbox > 0 {
		return fmt.Sprintf("%d outbox rows", outbox)
	}
	var moving []string
	for _, name := range []string{broker.StreamCommands, broker.StreamEvents, broker.StreamPartitions} {
		st, err := js.Stream(ctx, name)
		if name == broker.StreamPartitions && errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // not partitioned (TRADEWIND_PARTITIONS=1)
		}
		if err != nil {
			return name + ": " + err.Error()
		}
		if name == broker.StreamPartitions {
			// An event not yet copied from EVENTS is pending nowhere.
			info, err := st.Info(ctx)
			if err != nil {
				return name + ": " + err.Error()
			}
			for _, src := range info.Sources {
				if src.Lag > 0 || src.Error != nil {
					moving = append(moving, fmt.Sprintf("%s copy of %s (lag %d)", name, src.Name, src.Lag))
				}
			}
		}
		list := st.ListConsumers(ctx)
		for ci := range list.Info() {
			if ci.Config.Durable == "" {
				continue
			}
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				moving = append(moving, fmt.Sprintf("%s (pending %d, ack pending %d)", ci.Name, ci.NumPending, ci.NumAckPending))
			}
		}
		if err := list.Err(); err != nil {
			return name + " consumers: " + err.Error()
		}
	}
	return strings.Join(moving, ", ")
}

// Check runs every invariant check once, on a system at rest (call
// WaitQuiescent first): no settle window, so an order still moving would
// be reported, not skipped. ledgerURL is the payment provider's base URL.
func Check(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, ledgerURL string) (*checker.Report, error) {
	c, err := checker.New(checker.Options{
		Pool:   pool,
		JS:     js,
		Ledger: checker.HTTPLedger{URL: ledgerURL},
		Slack:  checker.DefaultSlack,
		Settle: 0,
	})
	if err != nil {
		return nil, err
	}
	return c.Run(ctx)
}
