// Package handlers holds what the saga participants share: the Reaction
// a handler declares, the Router that hands a consumer's messages to its
// reactors (refusing an emission a Reaction does not declare), the
// set-based BatchReactor path, and the saga log steps (Step, LogStep,
// EmitAndLog, Ignore).
//
// The participants are packages of their own, one file per message they
// handle, each owning its tables in PostgreSQL: handlers/orders,
// handlers/inventory (the stock and the catalog) and handlers/payments.
// A participant reads and writes only its own tables and learns about
// the others from the events it handles. Which reactions each role runs
// is wired in one place, internal/app (saga.go), and checked against the
// saga table in sagas/.
//
// Each reaction is a pure reaction: given a message and the runner's
// transaction, it reads and writes its participant's tables and returns
// the events it emits. It never commits, publishes or acks; the runner
// (internal/runner) owns the transaction and the exactly-once protocol
// around it.
package handlers
