package app

import (
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/notifier"
)

func init() {
	Register(Role{
		Name: "notifier",
		Help: "turns domain events into user notifications (inbox + ntf.> via the outbox)",
		Build: func(d *Deps) ([]Service, error) {
			n := notifier.New()
			r, err := d.NewRunner(runner.Config{
				// Renaming this consumer re-reads EVENTS from the start; the
				// notifications' ids are derived from their sources, so no
				// user is notified twice, but the consumer replays history.
				Name:           "notifier",
				Stream:         broker.StreamEvents,
				FilterSubjects: n.Subjects(),
				Trusted:        true,
			}, n)
			if err != nil {
				return nil, err
			}
			return []Service{r}, nil
		},
	})
}
