package app

// inventoryRole is the inventory role (listed in roleTable).
func inventoryRole() Role {
	return Role{
		Name: "inventory",
		Help: "stock per SKU: reserves, commits, releases and returns stock for orders; restocks; the catalog",
		Build: func(d *Deps) ([]Service, error) {
			plans, err := inventoryPlan()
			if err != nil {
				return nil, err
			}
			return d.runners("inventory", plans)
		},
	}
}
