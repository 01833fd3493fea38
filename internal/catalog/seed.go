package catalog

// seeded holds the cancel methods Google documents but google.golang.org/api
// ships no discovery document for; they are kept by hand.
var seeded = []Method{
	// Google Ad Manager Dynamic Ad Insertion, from its REST reference page
	// for operations.cancel: POST, empty request body. Google publishes no
	// OAuth scopes for it, so any verified token is accepted, nor a batch
	// path: IsBatchPath's generic ones cover it.
	{
		ID:         "dai.operations.cancel",
		Service:    "dai.googleapis.com",
		Hosts:      []string{"dai.googleapis.com"},
		HTTPMethod: "POST",
		Template:   "/v1/{name=operations/**}:cancel",
		Body:       BodyEmpty,
		API:        "dai/v1",
	},
}
