package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/api"
	"github.com/tradewind/tradewind/internal/auth"
)

const prefsPath = "/v1/notifications/preferences"

// TestAUserReadsAndSetsTheirOwnPreferences: a user token reads and
// replaces its own muted kinds (normalised: sorted, no repeats); another
// user's are untouched; API keys, even with every scope, are refused; bad
// bodies are precise client errors that change nothing.
func TestAUserReadsAndSetsTheirOwnPreferences(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway()
	a, b := "pa-"+uuid.NewString()[:8], "pb-"+uuid.NewString()[:8]
	tokA, tokB := userToken(t, a, auth.RoleCustomer), userToken(t, b, auth.RoleCustomer)
	get := func(tok string) api.Preferences {
		t.Helper()
		res := gw.do(t, tok, request{method: http.MethodGet, path: prefsPath, noKey: true})
		if res.status != http.StatusOK {
			t.Fatalf("GET: %d %s", res.status, res.body)
		}
		var p api.Preferences
		decodeJSON(t, res.body, &p)
		return p
	}
	if p := get(tokA); p.MutedKinds == nil || len(p.MutedKinds) != 0 || fmt.Sprint(p.Kinds) != fmt.Sprint(events.NotificationKinds()) {
		t.Fatalf("a new user's preferences %+v, want none muted and every kind listed", p)
	}
	res := gw.do(t, tokA, request{method: http.MethodPut, path: prefsPath, noKey: true,
		body: `{"muted_kinds":["order.placed","order.confirmed","order.placed"]}`})
	if res.status != http.StatusOK {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	var put api.Preferences
	decodeJSON(t, res.body, &put)
	if fmt.Sprint(put.MutedKinds) != "[order.confirmed order.placed]" {
		t.Fatalf("PUT answered %v", put.MutedKinds)
	}
	if p := get(tokA); fmt.Sprint(p.MutedKinds) != "[order.confirmed order.placed]" {
		t.Fatalf("GET after PUT %v", p.MutedKinds)
	}
	if p := get(tokB); len(p.MutedKinds) != 0 {
		t.Fatalf("B sees %v: another user's preferences", p.MutedKinds)
	}

	key := sys.apiKey(auth.ScopeAll)
	cases := []struct {
		name   string
		bearer string
		req    request
		status int
		slug   string
		field  string
	}{
		{"no credentials GET", "", request{method: http.MethodGet, path: prefsPath}, 401, "unauthenticated", ""},
		{"no credentials PUT", "", request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":[]}`}, 401, "unauthenticated", ""},
		{"API key GET", key, request{method: http.MethodGet, path: prefsPath}, 403, "forbidden", ""},
		{"API key PUT", key, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":[]}`}, 403, "forbidden", ""},
		{"unknown kind", tokA, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":["order.placed","order.shipped"]}`}, 422, "invalid-field", "/muted_kinds/1"},
		{"wildcard kind", tokA, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":["*"]}`}, 422, "invalid-field", "/muted_kinds/0"},
		{"not a string", tokA, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":[1]}`}, 422, "invalid-field", "/muted_kinds/0"},
		{"not an array", tokA, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":"order.placed"}`}, 422, "invalid-field", "/muted_kinds"},
		{"null list", tokA, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":null}`}, 422, "invalid-field", "/muted_kinds"},
		{"missing list", tokA, request{method: http.MethodPut, path: prefsPath, body: `{}`}, 422, "invalid-field", "/muted_kinds"},
		{"unknown field", tokA, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":[],"user_id":"` + b + `"}`}, 422, "invalid-field", "/user_id"},
		{"not an object", tokA, request{method: http.MethodPut, path: prefsPath, body: `["order.placed"]`}, 422, "invalid-field", ""},
		{"malformed JSON", tokA, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":[`}, 400, "malformed-body", ""},
		{"invalid UTF-8", tokA, request{method: http.MethodPut, path: prefsPath, body: "{\"muted_kinds\":[\"\xff\"]}"}, 400, "malformed-body", ""},
		{"empty body", tokA, request{method: http.MethodPut, path: prefsPath, header: map[string]string{"Content-Type": "application/json"}}, 400, "malformed-body", ""},
		{"wrong content type", tokA, request{method: http.MethodPut, path: prefsPath, body: `{"muted_kinds":[]}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported-media-type", ""},
		{"unacceptable response type", tokA, request{method: http.MethodGet, path: prefsPath, header: map[string]string{"Accept": "text/html"}}, 406, "not-acceptable", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := gw.do(t, tc.bearer, tc.req)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			p := res.problem(t)
			if p.Type != api.ProblemBase+tc.slug || p.Field != tc.field {
				t.Errorf("problem %s field %q, want %s %q", p.Type, p.Field, tc.slug, tc.field)
			}
		})
	}
	if p := get(tokA); fmt.Sprint(p.MutedKinds) != "[order.confirmed order.placed]" {
		t.Fatalf("refused requests changed A's preferences to %v", p.MutedKinds)
	}
	if p := get(tokB); len(p.MutedKinds) != 0 {
		t.Fatalf("refused requests changed B's preferences to %v", p.MutedKinds)
	}
}

// TestPreferencesMatchTheDocument checks a PUT and its answer against the
// served OpenAPI document with the standard validator.
func TestPreferencesMatchTheDocument(t *testing.T) {
	sys := newSystem(t)
	gw := sys.gateway()
	const body = `{"muted_kinds":["payment.refunded"]}`
	req, err := http.NewRequest(http.MethodPut, gw.http.URL+prefsPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+userToken(t, "pd-"+uuid.NewString()[:8], auth.RoleCustomer))
	req.Header.Set("Content-Type", "application/json")
	exchangeMatchesDocument(t, gw.http.Client(), req, body, http.StatusOK)
}
