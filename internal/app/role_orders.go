package app

import (
	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/runner"
)

func init() {
	Register(Role{
		Name: "orders",
		Help: "the order aggregate: places orders",
		Build: func(d *Deps) ([]Service, error) {
			place, err := handlers.NewPlaceOrder(d.Cfg.OrderDeadline)
			if err != nil {
				return nil, err
			}
			r, err := d.NewRunner(runner.Config{
				Name:           "orders-commands",
				Stream:         broker.StreamCommands,
				FilterSubjects: []string{events.MustLookup(events.PlaceOrderV1).SubjectFilter()},
				Upcast:         events.Upcast, // v1 commands reach the handler as v2
			}, place)
			if err != nil {
				return nil, err
			}
			return []Service{r}, nil
		},
	})
}
