package projections

import (
	"context"
	"errors"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/runner"
)

// Handle lets Orders run under the consumer runner (one event per call,
// deduplicated by the runner's inbox instead of the checkpoint): it
// applies the event to the live version. The projections role uses the
// projector engine; this adapter serves one-off consumers and tests.
func (o Orders) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	d, _ := runner.DeliveryFrom(ctx)
	pe := projector.Event{Seq: d.StreamSeq, ID: ev.ID(), Type: ev.Type(), Subject: ev.Subject(), Time: ev.Time().UTC(), Data: ev.Data()}
	err := projector.ApplyOne(ctx, tx, o, pe)
	if errors.Is(err, projector.ErrRejected) {
		return nil, runner.Permanent(err)
	}
	return nil, err
}
