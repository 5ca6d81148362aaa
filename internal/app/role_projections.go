package app

import (
	"context"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/readapi"
	"github.com/tradewind/tradewind/projections"
)

// The projections role keeps every read model's live version up to date
// with one projector group: one ordered consumer on EVENTS for every
// model's subjects and one transaction per batch that applies each model's
// share and advances its checkpoint in public.projection_checkpoints (each
// event is delivered once and committed once, not once per model).
// /readyz still reports each model as consumer:projection-<name>. Running
// the role in several processes is safe (the checkpoint rows serialise
// them) but only wastes work. The role also serves the read API.
func projectionsRole() Role {
	return Role{
		Name: "projections",
		Help: "read models in PostgreSQL",
		Build: func(d *Deps) ([]Service, error) {
			// The read API (GET /v1/...) is served where the read models are
			// maintained, behind the same credentials as the gateway: a
			// user reads their own orders, API keys and operators read all.
			creds, err := d.Credentials()
			if err != nil {
				return nil, err
			}
			// One guard for every model: one loud log line when the read
			// models turn stale, and the read API refuses what is stale.
			guard := projector.NewStaleGuard(d.Log)
			api, err := readapi.New(readapi.Config{Pool: d.Pool, Log: d.Log, CallerFrom: creds.ReadCaller,
				EventsHead: d.eventsHead, Stale: guard.Err})
			if err != nil {
				return nil, err
			}
			if d.Mux != nil {
				api.Register(d.Mux)
			}
			gcfg := projector.GroupConfig{BatchSize: d.Cfg.BatchSize, Guard: guard}
			if d.Tracing != nil && d.Tracing.Enabled() {
				gcfg.Tracer = d.Tracing.Tracer()
			}
			g, err := projector.NewGroup(projections.All(), d.JS, d.Pool, gcfg, d.Log)
			if err != nil {
				return nil, err
			}
			return []Service{g}, nil
		},
	}
}

// eventsHead is the EVENTS stream's last sequence (read-your-writes
// resolves the gateway's COMMANDS:<seq> tokens against it).
func (d *Deps) eventsHead(ctx context.Context) (uint64, error) {
	st, err := d.JS.Stream(ctx, broker.StreamEvents)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}
