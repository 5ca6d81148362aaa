package app

import "github.com/tradewind/tradewind/internal/store"

// relayRole is the relay role (listed in roleTable).
func relayRole() Role {
	return Role{
		Name: "relay",
		Help: "publishes committed outbox rows to JetStream; vacuums Tradewind's tables where autovacuum lags",
		Build: func(d *Deps) ([]Service, error) {
			// Serve creates the relay before the roles so runners in this
			// process can wake it; here it only becomes a service.
			vacuum := store.Vacuumer{Pool: d.Pool, Log: d.Log.With("component", "vacuum")}
			return []Service{ServiceFunc("outbox-relay", d.Relay.Run), ServiceFunc("vacuum", vacuum.Run)}, nil
		},
	}
}
