package app

// relayRole is the relay role (listed in roleTable).
func relayRole() Role {
	return Role{
		Name: "relay",
		Help: "publishes committed outbox rows to JetStream",
		Build: func(d *Deps) ([]Service, error) {
			// Serve creates the relay before the roles so runners in this
			// process can wake it; here it only becomes a service.
			return []Service{ServiceFunc("outbox-relay", d.Relay.Run)}, nil
		},
	}
}
