package app

import "errors"

// paymentsRole is the payments role (listed in roleTable).
func paymentsRole() Role {
	return Role{
		Name: "payments",
		Help: "the order's payment at the provider: authorizes, captures, voids and refunds",
		Build: func(d *Deps) ([]Service, error) {
			client, err := paymentClient(d.Cfg, d)
			if err != nil {
				return nil, err
			}
			if d.Flags == nil {
				return nil, errors.New("payments: feature flags are required (Deps.Flags)")
			}
			plans, err := paymentsPlan(client, d.Flags)
			if err != nil {
				return nil, err
			}
			return d.runners("payments", plans)
		},
	}
}
