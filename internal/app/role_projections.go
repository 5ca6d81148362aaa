package app

import (
	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/projections"
)

func init() {
	Register(Role{
		Name: "projections",
		Help: "read models in PostgreSQL",
		Build: func(d *Deps) ([]Service, error) {
			r, err := d.NewRunner(runner.Config{
				Name:           "projection-orders",
				Stream:         broker.StreamEvents,
				FilterSubjects: []string{events.MustLookup(events.OrderPlacedV1).SubjectFilter()},
			}, projections.Orders{})
			if err != nil {
				return nil, err
			}
			return []Service{r}, nil
		},
	})
}
