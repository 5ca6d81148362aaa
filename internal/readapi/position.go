package readapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/events"
)

// A position token is either an EVENTS stream sequence ("1234", what
// Tradewind-Position answers carry) or a command's token from the gateway
// ("COMMANDS:<seq>", what a 202 carries).
type position struct {
	events   uint64 // EVENTS sequence to wait for, when known
	commands uint64 // COMMANDS sequence to resolve first, else 0
}

func parsePosition(s string) (position, error) {
	if rest, ok := strings.CutPrefix(s, "COMMANDS:"); ok {
		n, err := strconv.ParseUint(rest, 10, 64)
		if err != nil || n == 0 {
			return position{}, errors.New("must be COMMANDS:<sequence> or an EVENTS stream position")
		}
		return position{commands: n}, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return position{}, errors.New("must be a stream position (a non-negative integer) or COMMANDS:<sequence>")
	}
	return position{events: n}, nil
}

// errCommandPending: the command has not been applied (or its events not
// published) within the wait.
var errCommandPending = errors.New("the command has not been applied yet")

// commandTypes are the CloudEvent types of commands: an inbox row of one of
// them at a COMMANDS sequence is that command's consumer having applied it.
var commandTypes = func() []string {
	var out []string
	for _, s := range events.All() {
		if s.Kind == events.Command {
			out = append(out, s.Type())
		}
	}
	return out
}()

// resolveCommand turns COMMANDS:<seq> into the EVENTS position that holds
// the events its transaction emitted, waiting (until ctx ends) for:
//  1. the command's consumer to commit it (its inbox row at that sequence);
//  2. the outbox rows of that transaction, and all before, to be published
//     (rows of one transaction share created_at = now());
//
// then the EVENTS head is a position at or past those events.
func resolveCommand(ctx context.Context, pool *pgxpool.Pool, head func(context.Context) (uint64, error), seq uint64) (uint64, error) {
	delay := 5 * time.Millisecond
	for {
		var appliedAt time.Time
		err := pool.QueryRow(ctx, `
			SELECT received_at FROM core.inbox
			WHERE stream_seq = $1 AND event_type = ANY($2)
			LIMIT 1`, int64(seq), commandTypes).Scan(&appliedAt)
		if err == nil {
			var pending bool
			err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM core.outbox WHERE created_at <= $1)`, appliedAt).Scan(&pending)
			if err != nil {
				return 0, fmt.Errorf("read-your-writes: outbox: %w", err)
			}
			if !pending {
				h, err := head(ctx)
				if err != nil {
					return 0, fmt.Errorf("read-your-writes: EVENTS head: %w", err)
				}
				return h, nil
			}
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("read-your-writes: inbox: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return 0, errCommandPending
			}
			return 0, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}
