package app

import (
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/notifier"
)

// notifierRole is the notifier role (listed in roleTable).
func notifierRole() Role {
	return Role{
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
				// A notification's id derives from its cause's and is
				// unique in public.notifications, which appendAll checks:
				// the inbox would record every event a second time.
				Idempotent: true,
			}, n)
			if err != nil {
				return nil, err
			}
			return []Service{r}, nil
		},
	}
}
