package broker

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tradewind/tradewind/internal/logx"
)

// Connect dials NATS with settings fit for a long-running service:
// reconnect forever, with a buffered reconnect window so short outages do
// not surface as publish errors.
func Connect(url, name string, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(5 * time.Second),
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", logx.RedactString(url), err)
	}
	return nc, nil
}
