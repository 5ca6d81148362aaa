// Package projections builds the read models analysts and the HTTP API
// query: one file per read model. A projection is a runner handler on the
// EVENTS stream that writes only its own tables in schema public; the
// stream sequence of the last event applied is kept on each row (last_seq)
// so a read can say which position it reflects.
package projections
