package app

func init() {
	Register(Role{
		Name: "payments",
		Help: "the order's payment at the provider: authorizes, captures, voids and refunds",
		Build: func(d *Deps) ([]Service, error) {
			client, err := paymentClient(d.Cfg, d)
			if err != nil {
				return nil, err
			}
			plans, err := paymentsPlan(client)
			if err != nil {
				return nil, err
			}
			return d.runners(plans)
		},
	})
}
