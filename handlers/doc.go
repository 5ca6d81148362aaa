// Package handlers holds the saga participants' reactions: one file per
// message a participant handles. Each handler is a pure reaction: given a
// message and the runner's transaction, it reads and writes its own tables
// and returns the events it emits. It never commits, publishes or acks; the
// runner (internal/runner) owns the transaction and the exactly-once
// protocol around it.
package handlers
