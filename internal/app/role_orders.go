package app

// ordersRole is the orders role (listed in roleTable).
func ordersRole() Role {
	return Role{
		Name: "orders",
		Help: "the order aggregate: places, confirms and cancels orders, enforces deadlines; customers",
		Build: func(d *Deps) ([]Service, error) {
			plans, deadlines, err := ordersPlan(d.Cfg)
			if err != nil {
				return nil, err
			}
			services, err := d.runners("orders", plans)
			if err != nil {
				return nil, err
			}
			return append(services, d.deadlineSweeper(deadlines, d.Cfg.DeadlineSweep)), nil
		},
	}
}
