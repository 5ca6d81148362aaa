// Package projections holds Tradewind's read models, the tables analysts
// and the read API query: one file per model.
//
// Each model is a projector.Projection: it names its tables (shaped by the
// templates in migration 00201), the EVENTS subjects it reads, and applies
// a batch of events with set-based writes, touching only its own tables.
// The engine (internal/projector) owns the transaction, the checkpoint and
// rebuilds; the projections role runs one projector group for every model
// (All): one consumer, one transaction per batch.
// Every row keeps the stream sequence of the last event applied to it
// (last_seq), so a read can say which position it reflects.
//
// Orders can also run under the consumer runner (handler.go), for one-off
// consumers and tests; the role does not use that path.
package projections
