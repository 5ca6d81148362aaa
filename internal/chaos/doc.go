// Package chaos holds the chaos test of the order saga: while `tradewind
// load` places orders, the Tradewind process is killed with SIGKILL and
// restarted, the NATS server is restarted and PostgreSQL connections are
// terminated; afterwards `tradewind check` must find no violation and no
// order the generator got a publish ack for may be lost.
//
// Every moving part is a separate process, as in production: `tradewind
// serve` (built by the test), a NATS JetStream server (the test binary
// itself, re-executed as a helper so that it can be restarted on its own)
// and `tradewind payment-provider` (the external provider, which keeps its
// ledger and fault settings across Tradewind's crashes).
//
// The short form runs in `make test`; TRADEWIND_CHAOS=long runs the long
// form (`make chaos`: at least 20 kills over about five minutes, with a
// summary printed at the end).
package chaos
