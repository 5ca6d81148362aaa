package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/notifier/prefs"
)

// routePreferences is the signed-in user's notification preferences:
// GET reads them, PUT replaces them.
const routePreferences = "/v1/notifications/preferences"

// NotificationPreferences reads and writes users' muted notification
// kinds; prefs.Store implements it. SetMuted refuses an unknown kind with
// a *prefs.UnknownKindError and returns the kinds as stored.
type NotificationPreferences interface {
	Muted(ctx context.Context, user string) ([]string, error)
	SetMuted(ctx context.Context, user string, kinds []string) ([]string, error)
}

// Preferences is the body of the preferences routes: the kinds the user
// muted and (in answers) every kind there is.
type Preferences struct {
	MutedKinds []string `json:"muted_kinds"`
	Kinds      []string `json:"kinds,omitempty"`
}

// preferences serves GET and PUT routePreferences. Preferences belong to
// a user's access token (its subject): an API key acts for no user and is
// refused (403), so no key can read or change anyone's preferences. No
// Idempotency-Key: a PUT replaces the whole list, so repeating it is
// harmless. A muted kind is never made by the notifier (notifier/prefs).
func (s *Server) preferences(w http.ResponseWriter, r *http.Request) {
	p, ok := s.signedIn(w, r)
	if !ok {
		return
	}
	if p.Kind != auth.KindUser || p.Subject == "" {
		writeProblem(w, r, problem(http.StatusForbidden, "forbidden", "Forbidden",
			"notification preferences belong to a user: sign in with an access token (an API key acts for no user)"))
		return
	}
	if acc := r.Header.Get("Accept"); acc != "" && !acceptsJSON(acc) {
		writeProblem(w, r, problem(http.StatusNotAcceptable, "not-acceptable", "Not acceptable",
			"responses are application/json or application/problem+json").header("Accept"))
		return
	}
	if !s.allow(w, r, p, "preferences") {
		return
	}
	var (
		muted []string
		err   error
	)
	if r.Method == http.MethodPut {
		kinds, prob := s.readPreferences(w, r)
		if prob != nil {
			writeProblem(w, r, prob)
			return
		}
		muted, err = s.d.Preferences.SetMuted(r.Context(), p.Subject, kinds)
	} else {
		muted, err = s.d.Preferences.Muted(r.Context(), p.Subject)
	}
	var unknown *prefs.UnknownKindError
	switch {
	case errors.As(err, &unknown):
		writeProblem(w, r, unknownKind(unknown))
		return
	case errors.Is(err, context.Canceled):
		return // the client left
	case err != nil:
		s.log.Warn("notification preferences", "request_id", requestIDFrom(r.Context()), "err", err)
		writeProblem(w, r, unavailable("the preferences cannot be read or stored right now; retry"))
		return
	}
	b, _ := json.Marshal(Preferences{MutedKinds: muted, Kinds: events.NotificationKinds()})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// readPreferences reads a PUT body: {"muted_kinds": [kind, …]} and
// nothing else (kinds are checked against the known list here, naming the
// one at fault; the store checks again).
func (s *Server) readPreferences(w http.ResponseWriter, r *http.Request) ([]string, *Problem) {
	body, prob := readBody(w, r, s.cfg.BodyLimit, false)
	if prob != nil {
		return nil, prob
	}
	doc, prob := parseObject(body)
	if prob != nil {
		return nil, prob
	}
	for k := range doc {
		if k != "muted_kinds" {
			return nil, invalidField("/"+k, "unknown field; the body is {\"muted_kinds\": [...]}")
		}
	}
	raw, ok := doc["muted_kinds"]
	if !ok {
		return nil, invalidField("/muted_kinds", "missing: send the full list of muted kinds (empty to mute nothing)")
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, invalidField("/muted_kinds", "must be an array of notification kinds")
	}
	kinds := make([]string, len(list))
	for i, v := range list {
		k, ok := v.(string)
		if !ok {
			return nil, invalidField(fmt.Sprintf("/muted_kinds/%d", i), "must be a string")
		}
		kinds[i] = k
	}
	if _, err := prefs.Normalize(kinds); err != nil {
		var unknown *prefs.UnknownKindError
		if errors.As(err, &unknown) {
			return nil, unknownKind(unknown)
		}
		return nil, invalidField("/muted_kinds", err.Error())
	}
	return kinds, nil
}

func unknownKind(e *prefs.UnknownKindError) *Problem {
	return invalidField(fmt.Sprintf("/muted_kinds/%d", e.Index),
		fmt.Sprintf("%q is not a notification kind; known kinds: %v", e.Kind, events.NotificationKinds()))
}

func invalidField(pointer, detail string) *Problem {
	return problem(http.StatusUnprocessableEntity, "invalid-field", "Invalid request body", pointer+": "+detail).field(pointer, "body")
}
