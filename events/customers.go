package events

// Customers context, fed by a CRM. The aggregate id (subject) is the
// customer id, restricted by the schemas to [A-Za-z0-9_-]. Each upsert is
// an event, so the read side can keep a customer's history.
var (
	// UpsertCustomerV1 is the command a CRM sends when a customer is
	// created or changes.
	UpsertCustomerV1 = register("customers", "upsert", 1, Command)
	// CustomerUpsertedV1 records a customer's attributes as of the event time.
	CustomerUpsertedV1 = register("customers", "upserted", 1, Event)
)

// Customer is the data of UpsertCustomerV1 and CustomerUpsertedV1.
type Customer struct {
	CustomerID string `json:"customer_id"`
	Email      string `json:"email"`
	Name       string `json:"name"`
	Segment    string `json:"segment,omitempty"`
	Country    string `json:"country,omitempty"` // ISO 3166-1 alpha-2
}
